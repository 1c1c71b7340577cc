"""How a response's body travels to the client: one small object per ``Mode``
(handlers/relay/modes.py), made by the relay (handlers/relay/relay.py) when the backend's
head is in.

The relay calls a body in this order, and only while it is RELAYING
(handlers/relay/state.py):

1. ``begin()`` once, as soon as the body is made;
2. ``received(chunk)`` for each piece of the backend's body; a Future it returns pauses the
   backend until it resolves;
3. when the backend is done and ``flushing`` is None: ``fields()``, the head to send, or
   None when it is already out; the relay sends it, and if the sink refuses it, nothing of
   the body is written and the relay fails instead;
4. ``end()``, which writes the rest and ends the response.

A body writes only to the relay's sink; what a failure means is the relay's to decide.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, ClassVar, Protocol

from tornado.concurrent import Future

from filters.pipeline import BodyRewriter
from handlers.relay.modes import NO_BODY_STATUSES, Mode, rewritten_fields
from handlers.relay.state import RELAYING, RelayState
from handlers.upstream.exchange import Fields

if TYPE_CHECKING:
    from handlers.config.table import Site
    from handlers.context import ProxyContext
    from handlers.ops.record import AccessRecord
    from handlers.relay.heads import ClientRequest
    from handlers.relay.sink import Sink

log = logging.getLogger(__name__)

# A streamed body pauses the backend while the client has this much or more still to take.
DOWNLOAD_HIGH_WATER = 1 << 20


class Relay(Protocol):
    """What a body reads of its relay (handlers/relay/relay.py ``Relay``)."""

    sink: Sink
    context: ProxyContext
    site: Site
    request: ClientRequest
    state: RelayState
    status: int
    reason: str
    fields: Fields
    record: AccessRecord

    def stream_instead(self, held: list[bytes], size: int) -> None: ...


class Body:
    """A body the relay holds until the backend is done, then sends with its head."""

    __slots__ = ("chunks", "flushing", "relay")
    mode: ClassVar[Mode]
    head_first: ClassVar[bool] = False  # the head goes out before the body is whole

    def __init__(self, relay: Relay) -> None:
        self.relay = relay
        self.chunks: list[bytes] = []  # the body as received, in the modes that hold it
        self.flushing: Future[None] | None = None  # a flush to the client in progress

    def begin(self) -> None:
        pass

    def received(self, chunk: bytes) -> Future[None] | None:
        self.chunks.append(chunk)
        return None

    def fields(self) -> Fields | None:
        return self.relay.fields

    def end(self) -> None:
        sink = self.relay.sink
        body = b"".join(self.chunks)
        self.chunks = []
        sink.write(body)
        sink.finish()


class Small(Body):
    """Small, of known length: it leaves in one write with its head."""

    __slots__ = ()
    mode = Mode.SMALL


class HeadersOnly(Body):
    """No body may follow the head (a HEAD, a 204 or a 304): whatever comes is dropped."""

    __slots__ = ()
    mode = Mode.HEADERS_ONLY

    def received(self, chunk: bytes) -> None:
        return None

    def fields(self) -> Fields:
        relay = self.relay
        if relay.status in NO_BODY_STATUSES:
            return [(k, v) for k, v in relay.fields if k.lower() != "content-length"]
        return relay.fields

    def end(self) -> None:
        sink = self.relay.sink
        sink.flush()  # the head alone: no Content-Length may be made up for it
        sink.finish()


class Rewrite(Body):
    """Held whole, rewritten, sent with its new length. One without a length that outgrows
    ``rewrite_max_bytes`` is streamed instead, unchanged."""

    __slots__ = ("held_bytes", "limit", "rewriter")
    mode = Mode.REWRITE

    def __init__(self, relay: Relay, rewriter: BodyRewriter) -> None:
        super().__init__(relay)
        self.rewriter = rewriter
        self.limit = relay.context.options.rewrite_max_bytes
        self.held_bytes = 0

    def received(self, chunk: bytes) -> None:
        self.chunks.append(chunk)
        self.held_bytes += len(chunk)
        if self.held_bytes > self.limit:
            self.relay.stream_instead(self.chunks, self.held_bytes)
        return None

    def fields(self) -> Fields:
        relay = self.relay
        body = b"".join(self.chunks)
        self.chunks = [body]
        new = self._rewritten(body)
        if new is None:
            return relay.fields
        # The body changed: its length and the validators of the backend's bytes no longer
        # describe it.
        self.chunks = [new]
        fields = rewritten_fields(relay.fields)
        fields.append(("Content-Length", str(len(new))))
        return fields

    def _rewritten(self, body: bytes) -> bytes | None:
        """The rewritten body; None when unchanged (or when rewriting failed)."""
        relay = self.relay
        started = time.perf_counter()
        try:
            return self.rewriter.rewrite(body, self.limit)
        except Exception:
            log.exception("%s: rewriting %s failed; sent as is", relay.site.name, relay.request.uri)
            return None
        finally:
            relay.record.rewrite_seconds = time.perf_counter() - started


class Stream(Body):
    """Written as it comes, one flush at a time, so that a flush's completion says the
    client has taken everything so far; the backend is paused while the client has
    DOWNLOAD_HIGH_WATER bytes or more still to take."""

    __slots__ = ("pending_bytes",)
    mode = Mode.STREAM
    head_first = True

    def __init__(self, relay: Relay, pending: list[bytes] | None = None, size: int = 0) -> None:
        super().__init__(relay)
        self.chunks = pending or []  # received, not yet written
        self.pending_bytes = size

    def begin(self) -> None:
        relay = self.relay
        relay.sink.respond(relay.status, relay.reason, relay.fields)
        self._send_pending()  # the head now: an event stream's client is waiting

    def received(self, chunk: bytes) -> Future[None] | None:
        self.chunks.append(chunk)
        self.pending_bytes += len(chunk)
        if self.flushing is None:
            self._send_pending()
            return None
        return self.flushing if self.pending_bytes >= DOWNLOAD_HIGH_WATER else None

    def _write_pending(self) -> Sink:
        """Hand what was received to the sink; the sink, for what follows."""
        sink = self.relay.sink
        for chunk in self.chunks:
            sink.write(chunk)
        self.chunks = []
        self.pending_bytes = 0
        return sink

    def _send_pending(self) -> None:
        flushing = self._write_pending().flush()
        self.flushing = flushing
        flushing.add_done_callback(self._flushed)

    def _flushed(self, flushing: Future[None]) -> None:
        self.flushing = None
        if flushing.exception() is not None:
            return  # the client has gone: the handler hears of it and ends the transfer
        if self.chunks and self.relay.state is RELAYING:
            self._send_pending()

    def fields(self) -> None:
        return None  # sent by begin()

    def end(self) -> None:
        self._write_pending().finish()


def make_body(mode: Mode, relay: Relay, rewriter: BodyRewriter | None) -> Body:
    """The body for a response of ``mode``; ``rewriter`` is needed for REWRITE only."""
    if mode is Mode.REWRITE:
        assert rewriter is not None
        return Rewrite(relay, rewriter)
    return _BODIES[mode](relay)


_BODIES: dict[Mode, type[Body]] = {
    Mode.HEADERS_ONLY: HeadersOnly,
    Mode.SMALL: Small,
    Mode.STREAM: Stream,
}

__all__ = ["DOWNLOAD_HIGH_WATER", "Body", "HeadersOnly", "Rewrite", "Small", "Stream", "make_body"]
