"""A streamed body through the relay on its own (tests/support/relay.py): one flush in
progress at a time, a slow client pausing the backend, and the end written only once the
last flush is done (issue 17)."""

from __future__ import annotations

import asyncio

from tornado.concurrent import Future

from handlers.relay.bodies import DOWNLOAD_HIGH_WATER
from handlers.relay.modes import Mode
from tests.support.relay import run

HTML = "text/html; charset=utf-8"


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
