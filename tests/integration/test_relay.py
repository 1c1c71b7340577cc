"""The relay on its own: a fake sink, no network. Each test starts one Relay with a client
that never answers, drives it through headers_received / data_received / finish / fail as
the upstream client would, and checks what the client side (the sink) was asked to do,
in order."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import pycurl
import pytest
from tornado.concurrent import Future
from tornado.httputil import HTTPHeaders, HTTPServerRequest, RequestStartLine

from handlers.config.options import Options
from handlers.config.sites import BackendSite, build_site_table
from handlers.context import ProxyContext
from handlers.door.target import Target
from handlers.ops.record import AccessRecord
from handlers.relay.bodies import DOWNLOAD_HIGH_WATER
from handlers.relay.modes import Mode
from handlers.relay.relay import Relay
from handlers.relay.state import RelayState
from handlers.upstream.errors import UpstreamError

HTML = "text/html; charset=utf-8"
PNG = "image/png"


class FakeSink:
    """Records every call; flushes resolve only when the test says so. Records, too,
    each breach of the one-flush-at-a-time rule (handlers/relay/sink.py), which ``run``
    fails on: bytes flushed or finished while an earlier flush is still in progress."""

    def __init__(self, refuse_controls: bool = False) -> None:
        self.calls: list[tuple] = []
        self.flushes: list[Future[None]] = []
        self.refuse_controls = refuse_controls
        self.unflushed = False  # written since the last flush
        self.breaches: list[str] = []
        SINKS.append(self)

    def _one_flush_at_a_time(self, call: str) -> None:
        if self.unflushed and any(not f.done() for f in self.flushes):
            self.breaches.append(f"{call} of new bytes with a flush in progress")
        self.unflushed = False

    def respond(self, status: int, reason: str, fields: Iterable[tuple[str, str]]) -> None:
        fields = list(fields)
        if self.refuse_controls and any("\x01" in v for _, v in fields):
            raise ValueError("control character in a header value")
        self.calls.append(("respond", status, reason, fields))

    def write(self, chunk: bytes) -> None:
        self.calls.append(("write", chunk))
        self.unflushed = self.unflushed or bool(chunk)

    def flush(self) -> Future[None]:
        self._one_flush_at_a_time("flush")
        future: Future[None] = Future()
        self.flushes.append(future)
        self.calls.append(("flush",))
        return future

    def finish(self) -> None:
        self._one_flush_at_a_time("finish")
        self.calls.append(("finish",))

    def error_page(self, status: int, title: str, detail: str) -> None:
        self.calls.append(("error", status))

    def close(self) -> None:
        self.calls.append(("close",))

    def kinds(self) -> list[str]:
        return [c[0] for c in self.calls]

    def body(self) -> bytes:
        return b"".join(c[1] for c in self.calls if c[0] == "write")

    def head(self) -> tuple[int, dict[str, str]]:
        (call,) = [c for c in self.calls if c[0] == "respond"]
        return call[1], {k.lower(): v for k, v in call[3]}


SINKS: list[FakeSink] = []


class SilentClient:
    """Takes each request and never answers it: the test plays the backend."""

    def fetch(self, request: object, raise_error: bool = True) -> Future[None]:
        return Future()


def run(test):
    """Run ``test(make_relay)`` inside an event loop (Futures need one); then check
    that no sink was flushed out of turn."""

    async def main():
        table = build_site_table(
            {
                "app": BackendSite("app", "http://10.1.2.3:8080", None, [], shim=False),
            }
        )
        options = Options(rewrite_max_bytes=64 * 1024, small_body_bytes=16 * 1024)
        context = ProxyContext(table=table, options=options, client=SilentClient())  # type: ignore[arg-type]

        def make_relay(method="GET", sink=None, uri="/.site.app/page"):
            sink = sink or FakeSink()
            request = HTTPServerRequest(
                start_line=RequestStartLine(method, uri, "HTTP/1.1"),
                headers=HTTPHeaders({"Host": "proxy"}),
            )
            target = Target(table.get("app"), uri.removeprefix("/.site.app"), "prefix",
                            "app", False, False)  # fmt: skip
            relay = Relay(sink, context, request, target, [], AccessRecord(method))
            relay.start({}, upload=False, length=None)
            assert relay.state is RelayState.AWAITING_HEAD
            return relay, sink

        result = test(make_relay)
        if asyncio.iscoroutine(result):
            await result

    SINKS.clear()
    asyncio.run(main())
    assert [b for sink in SINKS for b in sink.breaches] == []


def test_head_and_bodyless_statuses_send_the_head_alone():
    def check(make_relay):
        relay, sink = make_relay("HEAD")
        relay.headers_received(200, "OK", [("Content-Length", "1234"), ("Content-Type", PNG)])
        assert relay.body.mode is Mode.HEADERS_ONLY and sink.calls == []
        relay.finish()
        assert sink.kinds() == ["respond", "flush", "finish"]
        assert sink.head()[1]["content-length"] == "1234"  # HEAD keeps the GET's length

        relay, sink = make_relay("GET")
        relay.headers_received(304, "Not Modified", [("Content-Length", "99"), ("ETag", '"x"')])
        relay.finish()
        status, head = sink.head()
        assert status == 304 and "content-length" not in head and head["etag"] == '"x"'
        assert sink.kinds() == ["respond", "flush", "finish"]

    run(check)


PAGE = b'<p><a href="http://10.1.2.3:8080/docs/x">x</a></p>'
PLAIN = b"<p>nothing to rewrite</p>"


@pytest.mark.parametrize(
    "content_type, body, length, head_has_length",
    [
        (HTML, PAGE, len(PAGE), False),  # rewritten: the GET's length is not the backend's
        (HTML, PLAIN, len(PLAIN), False),  # rewritable: its HEAD cannot know it is unchanged
        (HTML, PAGE, None, False),
        (PNG, PAGE, len(PAGE), True),  # never rewritten: the backend's length is the GET's
        (HTML, PAGE, 99_999_999, True),  # above the rewrite cap: the GET streams it as is
    ],
)
def test_head_never_contradicts_the_get(content_type, body, length, head_has_length):
    """Issue 17: HEAD of a page the proxy rewrites answered the backend's Content-Length
    (103) while the GET's body was 175 bytes. The HEAD takes the GET's decision: where
    the GET would rewrite, the fields computed from the backend's bytes go (RFC 9110
    section 9.3.2 lets a HEAD omit them; nginx's sub_filter does the same); elsewhere
    they stay. The ETag stays either way: conditions are the backend's to judge."""

    def check(make_relay):
        fields = [("Content-Type", content_type), ("ETag", '"v1"'), ("Accept-Ranges", "bytes")]
        if length is not None:
            fields.append(("Content-Length", str(length)))
        relay, sink = make_relay("GET")
        relay.headers_received(200, "OK", fields)
        if relay.body.mode is not Mode.STREAM:  # (a stream's head is out at once)
            relay.data_received(body)
            relay.finish()
        get = sink.head()[1]
        relay, sink = make_relay("HEAD")
        relay.headers_received(200, "OK", fields)
        relay.finish()
        head = sink.head()[1]
        assert ("content-length" in head) is head_has_length
        # Whatever length the HEAD gives, the GET's body has it.
        assert "content-length" not in head or head["content-length"] == get["content-length"]
        assert head["etag"] == '"v1"' and head["content-type"] == content_type

    run(check)


def test_a_small_body_leaves_in_one_write_with_its_head():
    def check(make_relay):
        relay, sink = make_relay()
        relay.headers_received(200, "OK", [("Content-Length", "10"), ("Content-Type", "image/png")])
        assert relay.body.mode is Mode.SMALL
        assert relay.data_received(b"01234") is None
        assert relay.data_received(b"56789") is None
        assert sink.calls == []  # nothing before the body is whole
        relay.finish()
        assert sink.kinds() == ["respond", "write", "finish"]
        assert sink.body() == b"0123456789"

    run(check)


def test_a_large_body_streams_and_a_slow_client_pauses_the_backend():
    async def check(make_relay):
        relay, sink = make_relay()
        relay.headers_received(200, "OK", [("Content-Type", "application/octet-stream")])
        assert relay.body.mode is Mode.STREAM
        assert sink.kinds() == ["respond", "flush"]  # the head goes at once
        piece = b"x" * (256 * 1024)
        waits = [relay.data_received(piece) for _ in range(DOWNLOAD_HIGH_WATER // len(piece))]
        # The first flush is still with the client: chunks wait, and once a high-water
        # mark of them waits, the backend is asked to pause until that flush is done.
        assert waits[:-1] == [None] * (len(waits) - 1)
        assert waits[-1] is sink.flushes[0] and not waits[-1].done()
        assert sink.kinds() == ["respond", "flush"]
        sink.flushes[0].set_result(None)
        await asyncio.sleep(0)
        # Everything that waited went out in one more flush.
        assert sink.kinds() == ["respond", "flush"] + ["write"] * len(waits) + ["flush"]
        assert relay.data_received(b"tail") is None  # below the mark: no pause
        relay.finish()  # with a flush in progress: the end waits for it
        assert sink.kinds()[-1] == "flush"
        sink.flushes[1].set_result(None)
        await asyncio.sleep(0)  # the tail goes in a flush of its own
        assert sink.kinds()[-2:] == ["write", "flush"]
        sink.flushes[2].set_result(None)
        await asyncio.sleep(0)
        assert sink.kinds()[-2:] == ["flush", "finish"]
        assert sink.body() == piece * len(waits) + b"tail"

    run(check)


def test_the_end_of_a_stream_waits_for_the_flush_in_progress():
    """Issue 17: the response's last write made while a flush to a slow client was in
    progress was reported sent with that flush (Tornado keeps one write Future), and
    a connection closed on it lost the last bytes. complete() sends the rest and ends
    the response only once no flush is in progress."""

    async def check(make_relay):
        relay, sink = make_relay()
        relay.headers_received(200, "OK", [("Content-Type", "application/octet-stream")])
        assert relay.data_received(b"a" * 1000) is None  # waits behind the head's flush
        fetch: Future[None] = Future()
        fetch.set_result(None)
        relay.fetch = fetch  # the backend is done
        completing = asyncio.ensure_future(relay.complete())
        for _ in range(3):
            await asyncio.sleep(0)
        assert sink.kinds() == ["respond", "flush"] and not completing.done()
        sink.flushes[0].set_result(None)  # the client took the head: the rest goes
        for _ in range(3):
            await asyncio.sleep(0)
        assert sink.kinds() == ["respond", "flush", "write", "flush"]
        assert not completing.done()
        sink.flushes[1].set_result(None)
        await completing
        assert sink.kinds() == ["respond", "flush", "write", "flush", "finish"]
        assert sink.body() == b"a" * 1000

        relay, sink = make_relay()  # the client leaves meanwhile: no end, a close
        relay.headers_received(200, "OK", [("Content-Type", "application/octet-stream")])
        relay.data_received(b"b" * 10)
        relay.fetch = fetch
        completing = asyncio.ensure_future(relay.complete())
        await asyncio.sleep(0)
        relay.client_left()
        sink.flushes[0].set_exception(OSError("gone"))
        await completing
        assert sink.kinds() == ["respond", "flush", "close"]

    run(check)


def test_a_page_is_rewritten_whole_and_its_stale_fields_go():
    def check(make_relay):
        relay, sink = make_relay()
        page = b'<a href="http://10.1.2.3:8080/docs/x">x</a>'
        relay.headers_received(
            200,
            "OK",
            [
                ("Content-Type", HTML),
                ("Content-Length", str(len(page))),
                ("ETag", '"abc"'),
                ("Accept-Ranges", "bytes"),
            ],
        )
        assert relay.body.mode is Mode.REWRITE
        relay.data_received(page[:10])
        relay.data_received(page[10:])
        relay.finish()
        status, head = sink.head()
        body = sink.body()
        assert b'href="/.site.app/docs/x"' in body
        assert head["content-length"] == str(len(body))
        assert "etag" not in head and "accept-ranges" not in head
        assert sink.kinds() == ["respond", "write", "finish"]

    run(check)


def test_a_page_without_length_that_outgrows_the_cap_streams_unchanged():
    async def check(make_relay):
        relay, sink = make_relay()
        relay.headers_received(200, "OK", [("Content-Type", HTML)])
        assert relay.body.mode is Mode.REWRITE
        link = b'<a href="http://10.1.2.3:8080/x">x</a>'
        chunk = link * (16 * 1024 // len(link))
        for _ in range(5):  # 80 KiB > rewrite_max_bytes (64 KiB)
            relay.data_received(chunk)
        assert relay.body.mode is Mode.STREAM
        sink.flushes[0].set_result(None)
        relay.finish()
        await asyncio.sleep(0)
        assert sink.body() == chunk * 5  # unchanged: the rewriting was given up

    run(check)


def test_failures_before_and_after_the_head():
    def check(make_relay):
        relay, sink = make_relay()
        relay.fail(UpstreamError(pycurl.E_COULDNT_CONNECT, "refused"))
        assert sink.calls == [("error", 502)]

        relay, sink = make_relay()
        relay.fail(UpstreamError(pycurl.E_OPERATION_TIMEDOUT, "slow"))
        assert sink.calls == [("error", 504)]

        relay, sink = make_relay()  # a held body: nothing was sent, so still a page
        relay.headers_received(200, "OK", [("Content-Type", "image/png"), ("Content-Length", "3")])
        relay.fail(UpstreamError(pycurl.E_RECV_ERROR, "reset"))
        assert sink.calls[-1] == ("error", 502)

        relay, sink = make_relay()  # streamed: the head is out, so the connection ends
        relay.headers_received(200, "OK", [("Content-Type", "application/octet-stream")])
        relay.fail(UpstreamError(pycurl.E_RECV_ERROR, "reset"))
        assert sink.kinds() == ["respond", "flush", "close"]
        relay.finish()  # a late finish changes nothing
        assert sink.kinds() == ["respond", "flush", "close"]

    run(check)


def test_a_client_that_left_gets_nothing_more():
    def check(make_relay):
        relay, sink = make_relay()
        relay.client_left()
        relay.headers_received(200, "OK", [("Content-Length", "3")])
        assert relay.data_received(b"abc") is None
        relay.finish()
        assert sink.calls == [("close",)]

    run(check)


def test_a_header_the_client_side_refuses_becomes_a_502():
    def check(make_relay):
        relay, sink = make_relay(sink=FakeSink(refuse_controls=True))
        relay.headers_received(200, "OK", [("Content-Length", "2"), ("X-Bad", "a\x01b")])
        relay.data_received(b"ok")
        relay.finish()
        assert sink.calls == [("error", 502)]

    run(check)


@pytest.mark.parametrize(
    "method,status,fields,mode",
    [
        ("GET", 200, [("Content-Type", HTML)], Mode.REWRITE),
        ("GET", 206, [("Content-Type", HTML), ("Content-Length", "5")], Mode.SMALL),
        ("GET", 200, [("Content-Type", HTML), ("Content-Length", "99999999")], Mode.STREAM),
        ("GET", 200, [("Content-Type", "text/html"), ("Content-Encoding", "zstd-x")], Mode.STREAM),
        ("HEAD", 200, [("Content-Type", HTML)], Mode.HEADERS_ONLY),
        ("POST", 204, [], Mode.HEADERS_ONLY),
    ],
)
def test_the_mode_follows_the_response(method, status, fields, mode):
    def check(make_relay):
        relay, _ = make_relay(method)
        relay.headers_received(status, "", fields)
        assert relay.body.mode is mode

    run(check)
