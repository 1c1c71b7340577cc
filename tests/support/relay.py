"""A relay (handlers/relay/relay.py) on its own: a sink that records what the relay asks
of the client's side, and a client that never answers, so that a test plays the backend
by calling headers_received / data_received / finish / fail itself."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

from tornado.concurrent import Future
from tornado.httputil import HTTPHeaders, HTTPServerRequest, RequestStartLine

from handlers.config.options import Options
from handlers.config.sites import BackendSite, build_site_table
from handlers.context import ProxyContext
from handlers.door.target import Target
from handlers.ops.record import AccessRecord
from handlers.relay.relay import Relay
from handlers.relay.state import RelayState


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

    def start(self, spec: object) -> Future[None]:
        return Future()


def run(test: Callable[[Callable[..., tuple[Relay, FakeSink]]], Any]) -> None:
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

        def make_relay(method="GET", sink=None, uri="/.site.app/page", start=True):
            sink = sink or FakeSink()
            request = HTTPServerRequest(
                start_line=RequestStartLine(method, uri, "HTTP/1.1"),
                headers=HTTPHeaders({"Host": "proxy"}),
            )
            target = Target(table.get("app"), uri.removeprefix("/.site.app"), "prefix",
                            "app", False, False)  # fmt: skip
            relay = Relay(sink, context, request, target, [], AccessRecord(method))
            if start:
                relay.start({}, upload=False, length=None)
                assert relay.state is RelayState.AWAITING_HEAD
            return relay, sink

        result = test(make_relay)
        if asyncio.iscoroutine(result):
            await result

    SINKS.clear()
    asyncio.run(main())
    assert [b for sink in SINKS for b in sink.breaches] == []


__all__ = ["SINKS", "FakeSink", "SilentClient", "run"]
