"""Backends that misbehave on the wire: the client must see a clear error or a visibly
broken response, never a silently truncated one marked complete, never a hang."""

import http.client

import pytest

from handlers.config.sites import BackendSite
from tests.support import serve_raw, start_proxy


def _raw_backend(loop_thread, response: bytes, close: bool = True):
    """A backend that answers every connection with ``response`` bytes, then closes."""

    async def handle(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(response)
        await writer.drain()
        if close:
            writer.close()

    return serve_raw(loop_thread, handle)


@pytest.fixture(scope="module")
def broken(loop_thread):
    ports = {
        "short_small": _raw_backend(
            loop_thread, b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nonly a little"
        ),
        "short_big": _raw_backend(
            loop_thread,
            b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
            b"Content-Length: 1000000\r\n\r\n" + b"x" * 200_000,
        ),
        "garbage": _raw_backend(loop_thread, b"this is not HTTP at all\r\n\r\n"),
        "silent_close": _raw_backend(loop_thread, b""),
        "bad_header": _raw_backend(
            loop_thread, b"HTTP/1.1 200 OK\r\nX-Evil: a\x01b\r\nContent-Length: 2\r\n\r\nok"
        ),
    }
    sites = {
        name: BackendSite(name, f"http://127.0.0.1:{port}", None, [], timeout=2)
        for name, port in ports.items()
    }
    return start_proxy(loop_thread, sites)


@pytest.mark.parametrize("site", ["short_small", "garbage", "silent_close", "bad_header"])
def test_broken_before_headers_sent_is_502(broken, site):
    resp, data = broken.request("GET", f"/.site.{site}/")
    assert resp.status == 502
    assert site.encode() in data and b"Traceback" not in data


def test_broken_mid_stream_is_visibly_cut(broken):
    conn = http.client.HTTPConnection("127.0.0.1", broken.port, timeout=10)
    conn.request("GET", "/.site.short_big/")
    resp = conn.getresponse()
    assert resp.status == 200 and resp.headers["Content-Length"] == "1000000"
    with pytest.raises(http.client.IncompleteRead):
        resp.read()
    conn.close()
    # The proxy itself is fine afterwards.
    resp, _ = broken.request("GET", "/.proxy/health")
    assert resp.status == 200
