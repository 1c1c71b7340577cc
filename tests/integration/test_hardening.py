"""Malformed and hostile requests over raw sockets: each finding of the fuzz run (issue 10)
with its minimal reproducer, and the limits, answered with a clear 4xx and nothing
surprising upstream."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import pytest
from tornado.web import Application, RequestHandler, stream_request_body

from handlers.config.sites import BackendSite
from tests.support import (
    LoopThread,
    rss_mib,
    run_proxy_process,
    serve_app,
    serve_raw,
    start_backend,
    start_proxy,
)


@stream_request_body
class Counting(RequestHandler):
    """Counts requests that started, and those whose body arrived whole."""

    def initialize(self, counts: dict[str, int]) -> None:
        self.counts = counts

    def prepare(self) -> None:
        self.counts["started"] += 1

    def data_received(self, chunk: bytes) -> None:
        self.counts["bytes"] += len(chunk)

    def post(self) -> None:
        self.counts["complete"] += 1
        self.finish("ok")


def start_counting(loop_thread) -> tuple[int, dict[str, int]]:
    """A backend of Counting handlers: (its port, its counts)."""
    counts = {"started": 0, "complete": 0, "bytes": 0}

    app = Application([(r".*", Counting, {"counts": counts})])
    return serve_app(loop_thread, app), counts


@pytest.fixture(scope="module")
def stack(loop_thread):
    backend = start_backend(loop_thread, "a")
    counting_port, counts = start_counting(loop_thread)
    sites = {
        "a": BackendSite("a", backend.url),
        "count": BackendSite("count", f"http://127.0.0.1:{counting_port}"),
    }
    return {"proxy": start_proxy(loop_thread, sites), "a": backend, "counts": counts}


def status(answer: bytes) -> int:
    assert answer.startswith(b"HTTP/1.1 "), answer[:80]
    return int(answer[9:12])


def test_head_with_a_body_keeps_its_method(stack):
    before = len(stack["a"].seen)
    answer = stack["proxy"].raw(
        b"HEAD /.site.a/ HTTP/1.1\r\nHost: p\r\nContent-Length: 5\r\n\r\nhello",
        timeout=2,  # the answer's Content-Length announces a body a HEAD answer never has
    )
    assert status(answer) == 200
    seen = stack["a"].seen[before:]
    assert [(s.method, s.body) for s in seen] == [("HEAD", b"")]


@pytest.mark.parametrize(
    "lengths",
    [
        b"Content-Length: 74\r\nContent-Length: 0\r\n",
        b"Content-Length: 5, 5\r\n",
        b"Content-Length: 5 5\r\n",
        "Content-Length: ٥\r\n".encode(),
        b"Content-Length: +5\r\n",
        b"Content-Length: -1\r\n",
        b"Content-Length: 0x5\r\n",
        b"Content-Length: 1_0\r\n",
        b"Content-Length: \r\n",
    ],
)
def test_malformed_content_length_is_a_400(stack, lengths, caplog):
    before = len(stack["a"].seen)
    answer = stack["proxy"].raw(b"POST /.site.a/ HTTP/1.1\r\nHost: p\r\n" + lengths + b"\r\nhello")
    assert status(answer) == 400
    assert b"Content-Length" in answer or lengths.count(b"Content-Length") == 1
    assert len(stack["a"].seen) == before
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"


def test_nothing_after_a_connection_close_is_forwarded(stack):
    """Pipelined behind a request that ends the connection: never forwarded (20
    connections, since whether Tornado would parse it depends on timing)."""
    for version, connection in ((b"HTTP/1.1", b"Connection: close\r\n"), (b"HTTP/1.0", b"")):
        for _ in range(10):
            before = len(stack["a"].seen)
            stack["proxy"].raw(
                b"GET /.site.a/first " + version + b"\r\nHost: p\r\n" + connection + b"\r\n"
                b"GET /.site.a/second HTTP/1.1\r\nHost: p\r\n\r\n",
                timeout=3,
            )
            assert [s.uri for s in stack["a"].seen[before:]] == ["/first"]


def test_bad_chunk_framing_never_completes_upstream(stack):
    """The upload was already on its way to the backend when its framing broke: the
    backend must see it cut off, never a complete (truncated) request."""
    counts = stack["counts"]
    started, complete = counts["started"], counts["complete"]
    with socket.create_connection(("127.0.0.1", stack["proxy"].port), timeout=5) as sock:
        sock.sendall(
            b"POST /.site.count/up HTTP/1.1\r\nHost: p\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n"
        )
        deadline = time.monotonic() + 5
        while counts["started"] == started and time.monotonic() < deadline:
            time.sleep(0.02)
        assert counts["started"] == started + 1, "the upload did not start upstream"
        sock.sendall(b"ZZ\r\nnot a chunk\r\n0\r\n\r\n")
        answer = sock.recv(65536)
    assert answer == b"" or status(answer) == 400
    time.sleep(0.5)
    assert counts["complete"] == complete


@pytest.mark.parametrize(
    "request_bytes, expected",
    [
        (b"GET /.site.a/" + b"a" * 9000 + b" HTTP/1.1\r\nHost: p\r\n\r\n", 414),
        (b"GET /.site.a/ HTTP/1.1\r\nHost: p\r\nX-Big: " + b"b" * 40000 + b"\r\n\r\n", 431),
        (b"GET /.site.a/ HTTP/1.1\r\nHost: p\r\n" + b"X-F: 1\r\n" * 120 + b"\r\n", 431),
        # Framing that Tornado's parser refuses, before anything is forwarded.
        (b"POST /.site.a/ HTTP/1.1\r\nHost: p\r\nContent-Length: 5\r\n"
         b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        (b"POST /.site.a/ HTTP/1.1\r\nHost: p\r\nTransfer-Encoding: chunked\r\n"
         b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        (b"POST /.site.a/ HTTP/1.1\r\nHost: p\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 400),
        (b"GET /.site.a/ HTTP/1.1\r\nHost: p\r\nX-A: 1\r\n  folded\r\n\r\n", 400),
        (b"GET /.site.a/ HTTP/1.1\r\nHost: p\r\nX-A: 1\rX-B: 2\r\n\r\n", 400),
    ],
)  # fmt: skip
def test_limits_and_framing_answered_nothing_forwarded(stack, request_bytes, expected):
    before = len(stack["a"].seen)
    assert status(stack["proxy"].raw(request_bytes)) == expected
    assert len(stack["a"].seen) == before


def test_a_backend_header_with_cr_lf_cannot_split_the_response(loop_thread):
    def evil(h):
        h.set_header("Content-Type", "text/plain")
        h.finish("body")

    backend = start_backend(loop_thread, "evil", {"/": evil})

    # A backend that writes a header value holding CR LF itself.
    async def answer(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Evil: a\rSet-Cookie: pwned=1\r\n\r\nok"
        )
        await writer.drain()
        writer.close()

    port = serve_raw(loop_thread, answer)
    proxy = start_proxy(loop_thread, {"evil": BackendSite("evil", f"http://127.0.0.1:{port}")})
    answer = proxy.raw(b"GET /.site.evil/ HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n")
    head = answer.split(b"\r\n\r\n")[0]
    assert b"pwned" not in head.split(b"X-Evil")[0]
    assert not any(line.startswith(b"Set-Cookie: pwned") for line in head.split(b"\r\n"))
    assert backend.seen == []


def test_aborted_uploads_leave_memory_flat(tmp_path):
    """2,000 uploads abandoned mid-body, against a proxy process: its resident memory
    stays within a few MiB (an upload that kept its ~17 KiB for good would show)."""
    lt = LoopThread()
    try:
        backend = start_backend(lt, "a")
        proc, port = run_proxy_process(
            "from settings import *\n"
            'config.LOGGING_LEVEL = "ERROR"\n'
            f'forward_list = {{"a": BackendSite("a", "{backend.url}")}}\n',
            tmp_path,
        )
        try:

            def abort_upload() -> None:
                with socket.create_connection(("127.0.0.1", port)) as sock:
                    sock.sendall(
                        b"POST /.site.a/up HTTP/1.1\r\nHost: p\r\nContent-Length: 100000\r\n\r\n"
                        + b"x" * 20000
                    )
                    time.sleep(0.002)

            for _ in range(200):  # warm up: pools, caches, allocator arenas
                abort_upload()
            time.sleep(1)
            before = rss_mib(proc.pid)
            for _ in range(2000):
                abort_upload()
            time.sleep(2)
            after = rss_mib(proc.pid)
            assert proc.poll() is None
            assert after - before < 5, f"RSS {before:.1f} -> {after:.1f} MiB"
        finally:
            proc.terminate()
            proc.wait(10)
        assert "Traceback" not in (tmp_path / "proxy.log").read_text()
    finally:
        lt.stop()


def test_upstream_requests_beyond_the_queue_get_503_with_retry_after(loop_thread):
    async def slow(h):
        await asyncio.sleep(1.5)
        h.finish("late")

    backend = start_backend(loop_thread, "slow", {"/slow": slow})
    proxy = start_proxy(
        loop_thread, {"s": BackendSite("s", backend.url)}, max_clients=1, upstream_queue=1
    )
    results: list[tuple[int, str | None]] = []

    def fetch() -> None:
        resp, _ = proxy.request("GET", "/.site.s/slow")
        results.append((resp.status, resp.getheader("Retry-After")))

    threads = [threading.Thread(target=fetch) for _ in range(2)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)  # one in flight, one waiting for it
    fetch()  # the third: the queue is full
    for thread in threads:
        thread.join(10)
    assert sorted(results) == [(200, None), (200, None), (503, "5")]
    # The count goes back down: the next request goes through.
    resp, data = proxy.request("GET", "/.site.s/slow")
    assert (resp.status, data) == (200, b"late")


@pytest.mark.parametrize(
    "connection",
    [b"Connection: Upgrade\r\nConnection: close\r\n", b"Connection: keep-alive, close\r\n"],
)
def test_close_among_other_connection_tokens_closes_after_the_answer(stack, connection):
    """Found by tests/integration/test_fuzz.py: Tornado closes only for the exact value "close", so
    these kept the connection open after the answer, until the idle timeout."""
    with socket.create_connection(("127.0.0.1", stack["proxy"].port), timeout=3) as sock:
        sock.sendall(b"GET /.site.a/ HTTP/1.1\r\nHost: p\r\n" + connection + b"\r\n")
        data = b""
        while chunk := sock.recv(65536):  # a TimeoutError here: the connection stayed open
            data += chunk
    assert status(data) == 200


def test_a_stalled_body_is_answered_408_and_a_slow_one_is_not(loop_thread):
    port, counts = start_counting(loop_thread)
    proxy = start_proxy(
        loop_thread, {"c": BackendSite("c", f"http://127.0.0.1:{port}")}, client_body_timeout=1
    )
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
        sock.sendall(
            b"POST /.site.c/ HTTP/1.1\r\nHost: p\r\nContent-Length: 100\r\n\r\n" + b"x" * 10
        )
        started = time.monotonic()
        answer = sock.recv(65536)
        assert status(answer) == 408
        assert 0.9 < time.monotonic() - started < 4
        assert sock.recv(65536) == b""  # and the connection is closed
    time.sleep(0.3)
    assert counts["complete"] == 0  # the backend never saw it whole
    # A body that keeps coming, slowly, is not cut off.
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
        sock.sendall(b"POST /.site.c/ HTTP/1.1\r\nHost: p\r\nContent-Length: 6\r\n\r\n")
        for _ in range(6):
            time.sleep(0.5)
            sock.sendall(b"x")
        assert status(sock.recv(65536)) == 200
    assert counts["complete"] == 1


def test_a_client_that_never_finishes_its_head_is_cut_off(loop_thread):
    backend = start_backend(loop_thread, "h")
    proxy = start_proxy(loop_thread, {"h": BackendSite("h", backend.url)}, client_header_timeout=1)
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
        sock.sendall(b"GET /.site.h/ HTTP/1.1\r\nHost: p\r\nX-Slow: ")  # and nothing more
        started = time.monotonic()
        assert sock.recv(65536) == b""  # closed (a TimeoutError: it was not)
        assert time.monotonic() - started < 3
    assert backend.seen == []
