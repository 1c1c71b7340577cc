"""RelayClient, the AsyncHTTPClient over CurlMulti, against real servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
import tornado.curl_httpclient
import tornado.escape
import tornado.httpclient
import tornado.web
from tornado.httpclient import HTTPRequest
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.web import Application, RequestHandler

from handlers.upstream.client import Exchange, TransferHandle, make_client
from handlers.upstream.errors import UpstreamError
from handlers.upstream.transfer import UPLOAD_HIGH_WATER

ROOT = Path(__file__).resolve().parent.parent.parent


class Echo(RequestHandler):
    SUPPORTED_METHODS = ("GET", "HEAD", "POST", "PUT", "PROPFIND", "DELETE")

    def get(self) -> None:
        self.set_header("X-Uri", self.request.uri)
        self.write({"method": self.request.method, "headers": list(self.request.headers.get_all()),
                    "body": len(self.request.body), "peer": self.request.connection.stream.socket.getpeername()[1]})  # fmt: skip

    head = post = put = propfind = delete = get


class Big(RequestHandler):
    async def get(self) -> None:
        piece = b"b" * (256 * 1024)
        for _ in range(32):  # 8 MiB
            self.write(piece)
            await self.flush()


class Moved(RequestHandler):
    def get(self) -> None:
        self.redirect("/a")


class Slow(RequestHandler):
    async def get(self) -> None:
        self.application.settings["started"].append(1)
        await asyncio.sleep(float(self.get_argument("s", "0.3")))
        self.write("slow")


def run(test, **client_kw):
    async def main():
        settings = {"started": []}
        routes = [(r"/big", Big), (r"/slow", Slow), (r"/moved", Moved), (r".*", Echo)]
        app = Application(routes, **settings)
        sockets = bind_sockets(0, "127.0.0.1")
        port = sockets[0].getsockname()[1]
        server = HTTPServer(app)
        server.add_sockets(sockets)
        client = make_client(client_kw.pop("max_clients", 8), **client_kw)
        try:
            await test(client, f"http://127.0.0.1:{port}", settings)
        finally:
            client.close()
            server.stop()

    asyncio.run(main())


def body_json(response):
    return tornado.escape.json_decode(response.body)


def test_methods_bodies_and_exactly_the_headers_given():
    async def check(client, base, _):
        r = await client.fetch(
            f"{base}/a", headers={"X-One": "1", "X-Empty": ""}, decompress_response=False
        )
        got = body_json(r)
        names = {k for k, _ in got["headers"]}
        # Nothing of libcurl's own: no Accept, no User-Agent, no Expect.
        assert names == {"Host", "X-One", "X-Empty"}
        assert ["X-Empty", ""] in got["headers"]
        assert r.headers["X-Uri"] == "/a"
        r = await client.fetch(f"{base}/a", method="POST", body=b"x" * 3000)
        assert body_json(r)["body"] == 3000 and body_json(r)["method"] == "POST"
        # A POST without Content-Type gets none made up (libcurl would say it is a form).
        assert "Content-Type" not in {k for k, _ in body_json(r)["headers"]}
        r = await client.fetch(f"{base}/a", method="PUT", body=b"")
        assert body_json(r) == {**body_json(r), "method": "PUT", "body": 0}
        r = await client.fetch(
            f"{base}/a", method="PROPFIND", body=b"<x/>", allow_nonstandard_methods=True
        )
        assert body_json(r)["method"] == "PROPFIND" and body_json(r)["body"] == 4
        r = await client.fetch(f"{base}/a", method="HEAD")
        assert r.code == 200 and r.body == b""
        with pytest.raises(ValueError):
            await client.fetch(HTTPRequest(f"{base}/a", proxy_host="127.0.0.1", proxy_port=1))

    run(check)


@pytest.mark.parametrize(
    "field",
    [
        {"follow_redirects": True},
        {"decompress_response": True},
        {"use_gzip": True},
        {"user_agent": "agent/1"},
        {"header_callback": print},
        {"prepare_curl_callback": print},
        {"expect_100_continue": True},
        {"auth_username": "u", "auth_password": "p"},
        {"client_cert": "cert.pem", "client_key": "key.pem"},
        {"network_interface": "lo"},
        {"ssl_options": {"cert_reqs": 0}},
        {"allow_ipv6": False},
    ],
)
def test_features_the_proxy_does_not_use_are_refused(field):
    """Refused with ValueError before anything is sent, rather than half-implemented."""

    async def check(client, base, settings):
        with pytest.raises(ValueError, match=next(iter(field)).replace("use_gzip", "decomp")):
            await client.fetch(HTTPRequest(f"{base}/slow", **field))
        assert settings["started"] == [] and client.active == 0
        # What the proxy does say is accepted: no redirects followed, nothing decompressed.
        r = await client.fetch(f"{base}/a", follow_redirects=False, decompress_response=False)
        assert r.code == 200

    run(check)


def test_redirects_are_passed_on_and_bodies_left_as_sent():
    """The client's defaults are a relay's: a redirect is the response, not followed;
    no Accept-Encoding is asked for, so nothing is decoded."""

    async def check(client, base, _):
        r = await client.fetch(f"{base}/moved", raise_error=False)
        assert r.code == 302 and r.headers["Location"] == "/a"
        got = body_json(await client.fetch(f"{base}/a"))
        assert "Accept-Encoding" not in {k for k, _ in got["headers"]}

    run(check)


def test_the_request_target_goes_byte_for_byte():
    async def check(client, base, _):
        target = "/x/../y/%2e%2E/./z?q=%2f"
        heads = []

        def on_response(code: int, reason: str, fields: list[tuple[str, str]]) -> None:
            heads.append(dict(fields))

        await client.start(Exchange(base + target, request_target=target, on_response=on_response))
        assert heads[0]["X-Uri"] == target

    run(check)


def test_keep_alive_connections_are_reused():
    async def check(client, base, _):
        peers = set()
        for _ in range(20):
            peers.add(body_json(await client.fetch(f"{base}/k"))["peer"])
        assert len(peers) == 1

    run(check)


def test_on_response_once_then_chunks_then_completion():
    async def check(client, base, _):
        order: list[str] = []
        received = 0

        def take(chunk: bytes) -> None:
            nonlocal received
            received += len(chunk)
            order.append("chunk")

        exchange = Exchange(
            f"{base}/big",
            on_response=lambda code, reason, fields: order.append(f"head {code}"),
            on_chunk=take,
        )
        await client.start(exchange)
        order.append("done")
        assert order[0] == "head 200" and order[-1] == "done"
        assert set(order[1:-1]) == {"chunk"} and received == 8 << 20

    run(check)


def test_a_pending_future_from_on_chunk_pauses_the_transfer():
    async def check(client, base, _):
        received = 0
        gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def take(chunk: bytes):
            nonlocal received
            received += len(chunk)
            return gate if received >= 1 << 20 else None

        fetch = asyncio.ensure_future(client.start(Exchange(f"{base}/big", on_chunk=take)))
        await asyncio.sleep(0.5)
        paused_at = received
        assert (1 << 20) <= paused_at < (3 << 20), paused_at  # held, far short of 8 MiB
        await asyncio.sleep(0.3)
        assert received == paused_at  # nothing more while the future is pending
        gate.set_result(None)
        await fetch
        assert received == 8 << 20

    run(check)


def test_an_upload_streams_with_flow_control():
    async def check(client, base, _):
        waits = []

        async def produce(write):
            for _ in range(8):
                waiting = write(b"u" * (512 * 1024))
                waits.append(not waiting.done())
                await waiting

        for headers in ({"Content-Length": str(4 << 20)}, {}):  # framed, then chunked
            waits.clear()
            r = await client.fetch(
                HTTPRequest(f"{base}/up", method="POST", body_producer=produce, headers=headers)
            )
            assert body_json(r)["body"] == 4 << 20
            # The producer was made to wait once a high-water mark was queued.
            assert any(waits) and 512 * 1024 * 2 >= UPLOAD_HIGH_WATER

    run(check)


def test_abort_ends_a_transfer_at_once():
    async def check(client, base, _):
        handle = TransferHandle()
        fetch = asyncio.ensure_future(client.start(Exchange(f"{base}/slow?s=5", handle=handle)))
        await asyncio.sleep(0.2)
        started = asyncio.get_running_loop().time()
        handle.abort()
        with pytest.raises(UpstreamError):
            await fetch
        assert asyncio.get_running_loop().time() - started < 0.5
        assert client.active == 0

    run(check)


def test_requests_beyond_max_clients_wait_for_a_handle():
    async def check(client, base, settings):
        tasks = [client.fetch(f"{base}/slow?s=0.3") for _ in range(6)]
        await asyncio.sleep(0.15)
        assert len(settings["started"]) == 2 and client.active == 6
        responses = await asyncio.gather(*tasks)
        assert [r.body for r in responses] == [b"slow"] * 6

    run(check, max_clients=2)


def test_connection_failures_and_idle_timeouts_are_upstream_errors():
    async def check(client, base, _):
        with pytest.raises(UpstreamError) as refused:
            await client.fetch("http://127.0.0.1:1/")
        assert refused.value.code == 599 and refused.value.errno == 7  # couldn't connect
        with pytest.raises(UpstreamError) as slow:
            await client.start(Exchange(f"{base}/slow?s=3", idle_timeout=1))
        assert slow.value.errno == 28  # operation timed out

    run(check)


def test_no_private_tornado_name_is_used():
    """handlers/ reaches Tornado only through public names: none of the underscore
    attributes of the Tornado classes it builds on appears there."""
    private = set()
    for cls in (
        tornado.web.RequestHandler,
        tornado.httpclient.AsyncHTTPClient,
        tornado.curl_httpclient.CurlAsyncHTTPClient,
        tornado.httpclient.HTTPResponse,
    ):
        private |= {n for n in dir(cls) if n.startswith("_") and not n.startswith("__")}
    private |= {"_finished", "_headers_written", "_reason", "_status_code", "_write_buffer",
                "_headers", "_set_timeout", "_curl_setup_request", "_error_is_response_code"}  # fmt: skip
    used = set()
    for path in (ROOT / "handlers").rglob("*.py"):
        used |= set(re.findall(r"\.(_[a-z]\w*)\b", path.read_text()))
        if "curl.info" in path.read_text():
            used.add("curl.info")
    assert used & (private | {"curl.info"}) == set()
