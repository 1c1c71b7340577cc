"""One proxied request's exchange with its backend: the ``Relay``.

A ``Relay`` owns the upstream transfer: it starts it, feeds it the request body, and
receives the answer in callbacks named as Tornado's ``HTTPMessageDelegate``'s are
(``headers_received``, ``data_received``, then ``finish`` or ``fail``). It writes to the
client through a ``Sink`` the handler implements: tests drive it without a network.

Where the exchange stands is one ``RelayState`` (handlers/relay/state.py), changed only by
``_step``, which checks the table of allowed steps. How the body travels is one ``Mode``
(handlers/relay/modes.py), chosen when the header block is in (handlers/relay/heads.py),
and carried out by a ``Body`` of that mode (handlers/relay/bodies.py).

The contract with the handler: ``start`` once, ``feed`` for each piece of the request
body, ``complete`` once it is whole; ``client_left`` when the client's connection is
closed or the handler answers it itself (the relay then writes nothing but a close);
``release`` when it is done. ``finish`` or ``fail`` ends the relay, once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from tornado.concurrent import Future
from tornado.httputil import HTTPServerRequest

from handlers.ops.record import AccessRecord
from handlers.relay import heads
from handlers.relay.bodies import Body, Stream, make_body
from handlers.relay.sink import Sink
from handlers.relay.state import (
    AWAITING_HEAD,
    CLIENT_GONE,
    DONE,
    FAILED,
    RELAYING,
    STARTING,
    UNRELAYABLE,
    RelayState,
    checked_step,
    may_step,
)
from handlers.upstream.errors import UpstreamError
from handlers.upstream.exchange import Fields, TransferHandle

if TYPE_CHECKING:
    from collections.abc import Callable

    from handlers.config.table import Site
    from handlers.context import ProxyContext
    from handlers.door.target import Target

log = logging.getLogger(__name__)


class Relay:
    """Relays one request (see the module's docstring). All its state is declared here."""

    # What it relays, for whom.
    sink: Sink
    context: ProxyContext
    site: Site
    target: Target
    request: heads.ClientRequest
    state: RelayState
    # The upstream side.
    transfer: TransferHandle | None
    fetch: Future | None
    body_done: Future[None] | None  # resolved when the upload is whole
    write_body: Callable[[bytes], Future[None]] | None  # the transfer's, for uploads
    # The response, as it is relayed.
    status: int
    reason: str
    fields: Fields  # the header fields the client will be sent
    body: Body | None  # how the body travels; None until the header block is in
    failure: str | None  # why the response cannot be relayed (UNRELAYABLE)
    # The upstream part of the access record (handlers/ops/record.py) is the relay's to fill.
    record: AccessRecord
    upstream_started: float
    __slots__ = tuple(__annotations__)  # the attributes annotated above, and no others

    def __init__(
        self,
        sink: Sink,
        context: ProxyContext,
        request: HTTPServerRequest,
        target: Target,
        own_cookies: list[str],
        record: AccessRecord,
    ) -> None:
        self.sink = sink
        self.context = context
        self.site = target.site
        self.target = target
        method, uri = request.method or "GET", request.uri or ""
        self.request = heads.ClientRequest(method, uri, request.headers, own_cookies)
        self.state = STARTING
        self.transfer = self.fetch = self.body_done = self.write_body = None
        self.status, self.reason, self.fields = 0, "", []
        self.body = self.failure = None
        self.record = record
        record.site = self.site.name
        self.upstream_started = 0.0

    def __repr__(self) -> str:
        mode = self.body.mode.name if self.body is not None else "-"
        method, uri = self.request.method, self.request.uri
        return f"<Relay {self.site.name} {method} {uri} {self.state.name} {mode}>"

    def _step(self, new: RelayState) -> None:
        self.state = checked_step(self.state, new)

    def release(self) -> None:
        """The handler is done with this relay: let go of the body, which refers back."""
        self.body = None

    @property
    def head_sent(self) -> bool:
        """The response's head has gone to the client (the handler may not answer now)."""
        state = self.state
        if state is RELAYING:
            return self.body is not None and self.body.head_first
        return state is DONE

    # --- the upstream transfer ------------------------------------------------------

    def start(
        self, headers: dict[str, str], upload: bool, length: int | None, body: bytes | None = None
    ) -> None:
        """Send the request upstream. With ``upload``, the body is ``body`` when it is
        whole already, else it follows through ``feed`` (``length`` bytes, or chunked
        when None) and ends with ``complete``."""
        self._step(AWAITING_HEAD)
        producer = None
        if body is None and upload:
            self.body_done = Future()
            producer = self._produce
        upstream = heads.upstream_request(
            self.target, self.request.method, headers, body, producer, length,
            self.headers_received, self.data_received,
        )  # fmt: skip
        self.transfer = upstream.handle
        self.upstream_started = time.monotonic()
        self.fetch = self.context.client.start(upstream)

    def _produce(self, write: Callable[[bytes], Future[None]]) -> Future[None]:
        self.write_body = write
        assert self.body_done is not None
        return self.body_done

    def feed(self, chunk: bytes) -> Future[None] | None:
        """A piece of the request body; a Future when the caller should wait for room."""
        state = self.state
        if self.write_body is None or state is DONE or state is FAILED:
            return None
        waiting = self.write_body(chunk)
        return None if waiting.done() else waiting

    async def complete(self) -> None:
        """The request body is whole: wait for the backend, then end the response."""
        if self.body_done is not None and not self.body_done.done():
            self.body_done.set_result(None)
        fetch, self.fetch = self.fetch, None  # its response refers back to this relay
        if fetch is None:
            return
        try:
            await fetch
        except UpstreamError as exc:
            self.record.upstream_seconds = time.monotonic() - self.upstream_started
            if self.state is not CLIENT_GONE:
                self.record.upstream_error = exc.kind
            self.fail(exc)
            return
        except Exception:
            log.exception("%s: proxying %s failed", self.site.name, self.request.uri)
            self.fail(None)
            return
        self.record.upstream_seconds = time.monotonic() - self.upstream_started
        await self._caught_up()
        self.finish()

    async def _caught_up(self) -> None:
        """Wait until no flush is in progress, so that ``finish`` writes the end alone: an
        end written behind a flush would be reported sent with it (handlers/relay/sink.py),
        and a connection closed on it would lose up to a MiB of the body."""
        while self.body is not None and self.body.flushing is not None:
            if self.state is DONE or self.state is FAILED:
                return
            await asyncio.wait([self.body.flushing])  # _flushed runs first: it sends the rest

    def abort(self) -> None:
        """End the upstream transfer now (the client has gone, stalled or sent too much)."""
        if self.transfer is not None:
            self.transfer.abort()
        if self.fetch is not None:
            # A fetch nobody awaits any more: its failure is expected.
            self.fetch.add_done_callback(lambda fetch: fetch.exception())

    def client_left(self) -> None:
        """The handler's one word about the client: its connection is closed, or the
        handler answers it itself. The transfer ends; nothing more is written but a close."""
        if may_step(self.state, CLIENT_GONE):  # (not once the relay has ended)
            self._step(CLIENT_GONE)
        self.abort()

    # --- what the backend answers ---------------------------------------------------------

    def headers_received(self, status: int, reason: str, fields: Fields) -> None:
        self.status, self.reason = status, reason
        if self.state is not AWAITING_HEAD:
            return  # the client has gone, or the relay has ended
        try:
            self._plan(fields)
        except ValueError as exc:
            self._invalid(exc)
        except Exception:
            log.exception("%s: cannot relay the response headers", self.site.name)
            self._refuse(f"The site {self.site.name!r} sent a response the proxy could not relay.")

    def _refuse(self, why: str) -> None:
        self.failure = why
        self._step(UNRELAYABLE)

    def _invalid(self, exc: ValueError) -> None:
        """A field the sink may not send (control characters): a 502 instead."""
        log.warning("%s: invalid response header from the backend: %s", self.site.name, exc)
        self._refuse(f"The site {self.site.name!r} sent an invalid response.")

    def _plan(self, fields: Fields) -> None:
        plan = heads.plan_response(self.context, self.target, self.request, self.status, fields)
        self.fields = plan.fields
        self.body = make_body(plan.mode, self, plan.rewriter)
        self._step(RELAYING)
        self.body.begin()

    def data_received(self, chunk: bytes) -> Future[None] | None:
        """A piece of the response body. Returns a Future to pause the backend until
        it resolves (the client is behind)."""
        if self.state is not RELAYING:
            return None
        return self.body.received(chunk)  # type: ignore[union-attr]

    def stream_instead(self, held: list[bytes], size: int) -> None:
        """A body to rewrite, without Content-Length, grew past the rewrite cap: send what
        was held unchanged and stream the rest (``Rewrite`` calls this)."""
        heads.log_too_large(self.site.name, self.request.uri, self.context.options)
        self.body = Stream(self, held, size)
        self.body.begin()

    def finish(self) -> None:
        """The backend's response is complete: complete the client's."""
        state, body = self.state, self.body
        if state is DONE or state is FAILED:
            return
        if state is not RELAYING or body is None:
            self.fail(None)  # the client has gone, or no head could be relayed
            return
        if body.flushing is not None:  # see _caught_up: the end goes once it is done
            body.flushing.add_done_callback(lambda _: self.finish())
            return
        fields = body.fields()
        if fields is not None:
            try:
                self.sink.respond(self.status, self.reason, fields)
            except ValueError as exc:
                self._invalid(exc)
                self.fail(None)
                return
        self._step(DONE)
        body.end()

    def fail(self, exc: Exception | None) -> None:
        """No complete response can come: a 502/504 page if nothing was sent yet, else
        the connection is closed before the body is complete."""
        state = self.state
        if not may_step(state, FAILED):
            return  # it has ended already
        head_sent = self.head_sent
        self._step(FAILED)
        site, sink = self.site, self.sink
        if state is CLIENT_GONE:
            sink.close()
            return
        if head_sent:
            # Part of the response is already with the client: the only honest signal
            # left is to end the connection before the body is complete.
            log.warning("%s: response to %s broke off: %s", site.name, self.request.uri, exc)
            sink.close()
            return
        status, title, detail = heads.failure_page(exc, site.name, self.failure)
        method, uri = self.request.method, self.request.uri
        log.warning("%s: %s %s -> %d (%s)", site.name, method, uri, status, exc)
        sink.error_page(status, title, detail)


__all__ = ["Relay"]
