"""Streaming through a real proxy process: big downloads and uploads with flat memory,
slow clients, server-sent events, ranges, disconnects and the upload limit."""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import socket
import time

import pytest
from tornado.web import stream_request_body

from tests.support import RssSampler, run_proxy_process, serve_app, start_backend

MiB = 1024 * 1024
BLOCK = bytes(range(256)) * 4096  # 1 MiB, a recognisable pattern
BIG = 300 * MiB
# Python, Tornado and pycurl take ~40 MiB before any request: what streaming adds on
# top must stay small. bench/streaming.py reports the measured peaks.
RSS_LIMIT_MIB = 100


def expected_sha256(size: int) -> str:
    digest = hashlib.sha256()
    for offset in range(0, size, MiB):
        digest.update(BLOCK[: min(MiB, size - offset)])
    return digest.hexdigest()


class Progress:
    sent = 0
    finished_at = 0.0
    closed_early = False
    upload_sha = ""
    upload_size = 0


def make_routes(progress: Progress):
    async def download(h):
        size = int(h.get_argument("size"))
        h.set_header("Content-Type", "application/octet-stream")
        h.set_header("Content-Length", str(size))
        progress.sent = 0
        while progress.sent < size:
            n = min(MiB, size - progress.sent)
            h.write(BLOCK[:n])
            try:
                await h.flush()
            except Exception:
                progress.closed_early = True
                return
            progress.sent += n
        progress.finished_at = time.monotonic()
        h.finish()

    async def endless(h):
        h.set_header("Content-Type", "application/octet-stream")
        progress.closed_early = False
        try:
            while True:
                h.write(BLOCK[:65536])
                await h.flush()
                await asyncio.sleep(0.01)
        except Exception:
            progress.closed_early = True

    async def events(h):
        h.set_header("Content-Type", "text/event-stream")
        h.set_header("Cache-Control", "no-cache")
        for i in range(3):
            h.write(f"data: tick {i}\n\n")
            await h.flush()
            await asyncio.sleep(1.0)
        h.finish()

    def ranged(h):
        h.set_header("Content-Type", "application/octet-stream")
        if h.request.headers.get("Range") == "bytes=100-199":
            h.set_status(206)
            h.set_header("Content-Range", f"bytes 100-199/{len(BLOCK)}")
            h.finish(BLOCK[100:200])
        else:
            h.finish(BLOCK)

    return {"/download": download, "/endless": endless, "/events": events, "/ranged": ranged}


def _upload_backend(loop_thread, progress: Progress):
    from tornado.web import Application, RequestHandler

    @stream_request_body
    class Sink(RequestHandler):
        def prepare(self):
            self.digest = hashlib.sha256()
            self.size = 0
            self.request.connection.set_max_body_size(1 << 40)

        def data_received(self, chunk):
            self.digest.update(chunk)
            self.size += len(chunk)

        def put(self):
            progress.upload_sha = self.digest.hexdigest()
            progress.upload_size = self.size
            self.finish({"sha256": progress.upload_sha, "size": self.size})

        post = put

    return serve_app(loop_thread, Application([(r".*", Sink)]), max_body_size=1 << 40)


@pytest.fixture(scope="module")
def streaming(loop_thread, tmp_path_factory):
    progress = Progress()
    backend = start_backend(loop_thread, "files", make_routes(progress))
    upload_port = _upload_backend(loop_thread, progress)
    config = f"""
from settings import *
config.max_body_size = {BIG + MiB}
forward_list = {{
    "files": BackendSite("files", "{backend.url}", None, []),
    "sink": BackendSite("sink", "http://127.0.0.1:{upload_port}", None, []),
}}
"""
    proc, port = run_proxy_process(config, tmp_path_factory.mktemp("streaming"))
    yield {"port": port, "pid": proc.pid, "progress": progress, "backend": backend}
    proc.terminate()
    proc.wait(10)


def _get(port, path, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", path, headers=headers or {})
    return conn, conn.getresponse()


def test_big_download_is_exact_and_memory_stays_flat(streaming):
    with RssSampler(streaming["pid"]) as rss:
        conn, resp = _get(streaming["port"], f"/.site.files/download?size={BIG}")
        assert resp.status == 200 and resp.headers["Content-Length"] == str(BIG)
        digest, size = hashlib.sha256(), 0
        while chunk := resp.read(MiB):
            digest.update(chunk)
            size += len(chunk)
        conn.close()
    assert size == BIG and digest.hexdigest() == expected_sha256(BIG)
    assert rss.peak < RSS_LIMIT_MIB, f"peak RSS {rss.peak:.0f} MiB"


def test_slow_client_holds_the_backend_back(streaming):
    """A client reading at ~20 MiB/s: the backend is paused instead of the proxy
    buffering what the client has not taken."""
    progress = streaming["progress"]
    rate = 20 * MiB
    ahead = []
    with RssSampler(streaming["pid"]) as rss:
        conn, resp = _get(streaming["port"], f"/.site.files/download?size={BIG}")
        digest, size, start = hashlib.sha256(), 0, time.monotonic()
        while chunk := resp.read(256 * 1024):
            digest.update(chunk)
            size += len(chunk)
            ahead.append(progress.sent - size)
            delay = size / rate - (time.monotonic() - start)
            if delay > 0:
                time.sleep(delay)
        conn.close()
    end = time.monotonic()
    assert size == BIG and digest.hexdigest() == expected_sha256(BIG)
    assert rss.peak < RSS_LIMIT_MIB, f"peak RSS {rss.peak:.0f} MiB"
    # What the backend has sent beyond what the client has read sits in the kernel's
    # socket buffers (Linux lets a loopback receive buffer grow to 32 MiB) and in the
    # proxy's bounded queue; without backpressure it would be the whole file.
    assert max(ahead) < 128 * MiB, f"backend ran {max(ahead) / MiB:.0f} MiB ahead"
    # And the backend was slowed to the client's pace: unchecked, it would have sent
    # 300 MiB in about a second; held back, it finishes near the end of the read.
    assert progress.finished_at - start > 0.6 * (end - start), (
        f"backend done after {progress.finished_at - start:.1f} s of a {end - start:.1f} s read"
    )


def test_big_upload_arrives_exact_with_flat_memory(streaming):
    progress = streaming["progress"]

    def body():
        for offset in range(0, BIG, MiB):
            yield BLOCK[: min(MiB, BIG - offset)]

    with RssSampler(streaming["pid"]) as rss:
        conn = http.client.HTTPConnection("127.0.0.1", streaming["port"], timeout=60)
        conn.request("PUT", "/.site.sink/upload", body=body(), headers={"Content-Length": str(BIG)})
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
    assert resp.status == 200, data
    assert progress.upload_size == BIG and progress.upload_sha == expected_sha256(BIG)
    assert rss.peak < RSS_LIMIT_MIB, f"peak RSS {rss.peak:.0f} MiB"


def test_chunked_upload(streaming):
    progress = streaming["progress"]
    conn = http.client.HTTPConnection("127.0.0.1", streaming["port"], timeout=30)
    conn.request("POST", "/.site.sink/u", body=iter([BLOCK, BLOCK[:5]]), encode_chunked=True)
    resp = conn.getresponse()
    resp.read()
    assert resp.status == 200
    assert progress.upload_size == MiB + 5


@pytest.mark.parametrize("how", ["prefix", "cookie"])
def test_server_sent_events_arrive_as_sent(streaming, how):
    path, headers = (
        ("/.site.files/events", {}) if how == "prefix" else ("/events", {"Cookie": ".site=files"})
    )
    start = time.monotonic()
    conn, resp = _get(streaming["port"], path, headers)
    assert resp.headers["Content-Type"] == "text/event-stream"
    first = resp.readline()
    elapsed = time.monotonic() - start
    assert first == b"data: tick 0\n"
    # The backend sends the next event a second later: the first one came on its own.
    assert elapsed < 0.8, f"first event after {elapsed:.2f} s"
    rest = resp.read()
    assert rest.count(b"data: tick") == 2
    conn.close()


def test_range_requests_pass_through(streaming):
    conn, resp = _get(streaming["port"], "/.site.files/ranged", {"Range": "bytes=100-199"})
    assert resp.status == 206
    assert resp.headers["Content-Range"] == f"bytes 100-199/{MiB}"
    assert resp.read() == BLOCK[100:200]
    conn.close()


def test_client_disconnect_closes_the_backend_connection(streaming):
    progress = streaming["progress"]
    sock = socket.create_connection(("127.0.0.1", streaming["port"]))
    sock.sendall(b"GET /.site.files/endless HTTP/1.1\r\nHost: p\r\n\r\n")
    got = 0
    while got < 2 * MiB:
        got += len(sock.recv(65536))
    sock.close()
    deadline = time.monotonic() + 5
    while not progress.closed_early and time.monotonic() < deadline:
        time.sleep(0.05)
    assert progress.closed_early, "the backend kept sending to a client that had gone"


def test_upload_over_the_limit_is_413(tmp_path, loop_thread):
    backend = start_backend(loop_thread, "small")
    config = f"""
from settings import *
config.max_body_size = 1000
forward_list = {{"small": BackendSite("small", "{backend.url}", None, [])}}
"""
    proc, port = run_proxy_process(config, tmp_path)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("POST", "/.site.small/x", body=b"x" * 2000)
        resp = conn.getresponse()
        assert resp.status == 413 and b"1,000 bytes" in resp.read()
        conn.close()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request(
            "POST", "/.site.small/x", body=iter([b"y" * 600, b"y" * 600]), encode_chunked=True
        )
        resp = conn.getresponse()
        assert resp.status == 413
        conn.close()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("POST", "/.site.small/x", body=b"z" * 1000)
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 200
        conn.close()
        assert [s.body for s in backend.seen] == [b"z" * 1000]
    finally:
        proc.terminate()
        proc.wait(10)
