"""The proxying handler: resolve the site, start the upstream transfer, relay both ways.

The handler is the client's side: it checks the request, makes one ``Relay``
(handlers/relay/relay.py) for the exchange with the backend, and is that relay's ``Sink``. The
request body streams to the backend as it arrives, and the client is read no faster
than the backend takes it; a text body that may hold the proxy's URLs (a form, JSON) is
held whole instead, mapped back (handlers/relay/upload.py), and sent when it is complete.
"""

from __future__ import annotations

import asyncio
import logging
from asyncio import Future
from collections.abc import Iterable

from tornado.web import stream_request_body

from handlers.door import http1
from handlers.door.pages import PageHandler
from handlers.door.target import Answer, Target, backend_headers, decide
from handlers.mapping.headers import header
from handlers.ops.record import AccessRecord
from handlers.relay.bodywatch import BodyWatch
from handlers.relay.heads import METHODS, site_cookies
from handlers.relay.relay import Relay
from handlers.relay.upload import (
    BodyResult,
    HeldBody,
    drop_digests,
    is_mappable,
    log_unheld,
    map_held,
    why_not_held,
)

log = logging.getLogger(__name__)


@stream_request_body
class ProxyHandler(PageHandler):
    """Proxies one request; the ``Sink`` of its relay. Its own state is the relay, the
    body's idle watch and whether the client is still there; all of it is here."""

    SUPPORTED_METHODS = METHODS
    relay: Relay | None = None
    target: Target | None = None
    held: HeldBody | None = None  # a body read whole before the relay starts
    body_result: BodyResult | None = None  # what became of it (handlers/relay/upload.py)
    ended = False  # finish() has run (our own flag: Tornado's is private)
    client_gone = False
    relaying = False  # the body is whole and the relay is completing
    request_task: asyncio.Task | None = None  # the task Tornado runs this request in
    watch: BodyWatch | None = None  # the body's idle watch, while it is read

    # Never invent a validator or answer a condition ourselves: only the backend's own
    # ETag describes its body, and the backend has seen the request's If-None-Match.
    def compute_etag(self) -> None:
        return None

    def set_etag_header(self) -> None:
        pass

    def check_etag_header(self) -> bool:
        return False

    def access_record(self, full: bool = True) -> AccessRecord:
        record = super().access_record(full)  # its upstream part is the relay's to fill
        record.request_body = self.body_result.value if self.body_result else None
        return record

    def on_finish(self) -> None:
        super().on_finish()
        self.ended = True
        # The relay holds this handler (its sink), its body holds the relay, and the
        # client's transfer holds the relay's methods: letting go here frees them all
        # now, by reference counting, rather than by a later garbage collection.
        if self.relay is not None:
            self.relay.release()
            self.relay = None
        if self.held is not None:
            self.held.release()
            self.held = None
        self.request_task = None
        if self.watch is not None:
            self.watch.stop()
            self.watch = None

    def on_connection_close(self) -> None:
        self.client_gone = True
        if not self.relaying and not self.ended:
            self._end_before_the_body()
        elif self.relay is not None:
            self.relay.client_left()  # the backend sees its connection closed

    # --- the Sink of the relay ----------------------------------------------------------

    def respond(self, status: int, reason: str, fields: Iterable[tuple[str, str]]) -> None:
        for default in ("Content-Type", "Server", "Date"):
            self.clear_header(default)  # Tornado's defaults; the backend's own replace them
        self.set_status(status, reason or "Unknown")
        for name, value in fields:
            self.add_header(name, value)

    def error_page(self, status: int, title: str, detail: str) -> None:
        self.send_error_page(status, title, detail)

    def close(self) -> None:
        """Close the client connection and end the handler without sending more."""
        if self.ended:
            return
        http1.close(self.request.connection)
        try:
            self.finish()
        except Exception:  # the connection is gone; nothing left to tell anyone
            log.debug("finishing an abandoned response", exc_info=True)

    # --- the request ---------------------------------------------------------------------

    def prepare(self) -> None:
        self.request_task = asyncio.current_task()
        target = decide(self.request, self.context)
        if isinstance(target, Answer):
            self.answer(target)
            return
        request, options = self.request, self.context.options
        length_text = header(request.headers, "Content-Length")
        length = int(length_text) if length_text else None  # Tornado checked it is a number
        if length is not None and length > options.max_body_size:
            self._refuse_body(length)
            return
        # Tornado's own limit, above ours: data_received sees a body cross our limit and
        # answers 413 (Tornado would answer 400); past this one, Tornado stops reading.
        limit = options.max_body_size
        http1.set_max_body_size(request.connection, limit + max(limit, 16 << 20))
        has_body = bool(length) or "Transfer-Encoding" in request.headers
        self.target = target
        if self._busy():
            return
        if has_body and request.method not in ("GET", "HEAD"):
            if is_mappable(target.mapper, request.headers):
                limit = options.request_map_max_bytes
                self.body_result = why_not_held(request.headers, length, limit)
                if self.body_result is None:
                    self.held = HeldBody(limit, self.context.held_bytes)
                else:
                    log_unheld(self.body_result, self._where(), limit)
        if self.held is None:
            # Started now, so that the body streams upstream as it is read; completed by
            # _finish_relay, which Tornado calls once the body is in. (Awaiting the relay
            # here would also keep Tornado from noticing that the client has gone.)
            self._start_relay(has_body, length)
        if has_body and (self.relay is not None or self.held is not None):
            self.watch = BodyWatch(options.client_body_timeout, self._stalled)

    def _where(self) -> str:
        site = self.target.site.name if self.target is not None else "-"
        return f"{site}: {self.request.method} {self.request.uri}"

    def _refuse_body(self, length: int) -> None:
        limit, uri = self.context.options.max_body_size, self.request.uri
        log.warning("%s: request body of %d bytes refused (max_body_size %d)", uri, length, limit)
        detail = f"This proxy accepts request bodies of up to {limit:,} bytes."
        self.send_error_page(413, "Request too large", detail)

    def _busy(self) -> bool:
        """Every connection to the backends is busy and the queue is full: a clear answer
        now (503) beats an unbounded queue (and memory) and a late timeout."""
        active, options = self.context.client.active, self.context.options
        if active < options.max_clients + options.upstream_queue:
            return False
        log.warning("%s -> 503 (%d upstream requests in flight or waiting)", self._where(), active)
        detail = "The proxy is handling as many requests as it can. Try again soon."
        self.send_error_page(503, "Busy", detail, {"Retry-After": "5"})
        return True

    def _start_relay(
        self, has_body: bool, length: int | None, body: bytes | None = None, whole: bool = False
    ) -> Future | None:
        """Make the relay and send the request upstream. ``body``: the request body read
        so far; ``whole``: it is all of it (a held body, mapped). Returns the wait for
        room, as ``data_received`` does."""
        target = self.target
        assert target is not None
        context, request = self.context, self.request
        method = request.method or "GET"
        cookie_header = header(request.headers, "Cookie")
        own_cookies = site_cookies(target, cookie_header, context.options.clear_old_cookies)
        # libcurl cannot send a GET or HEAD with a body (in its upload mode it would send
        # a PUT: a read turned into a write), and no server may act on one (RFC 9110
        # sections 9.3.1-2): it is read and dropped.
        upload = has_body and method not in ("GET", "HEAD")
        headers = backend_headers(request, context, target)
        if self.body_result is BodyResult.MAPPED:
            drop_digests(headers)
        self.relay = relay = Relay(self, context, request, target, own_cookies, self.record)
        if whole:
            relay.start(headers, upload, None, body)
            return None
        relay.start(headers, upload, length)
        if body is None:
            return None
        waiting = relay.feed(body)
        return waiting if self.watch is None else self.watch.fed(waiting)

    def data_received(self, chunk: bytes) -> Future | None:
        held = self.held
        if held is not None and not self.ended:
            return self._hold(held, chunk)
        relay = self.relay
        if relay is None or self.ended:
            return None  # already answered (413, 404, ...): the rest is read and dropped
        self.record.received += len(chunk)
        if self.record.received > self.context.options.max_body_size:
            relay.abort()
            if not relay.head_sent:
                self._refuse_body(self.record.received)
            return None
        waiting = relay.feed(chunk)
        return waiting if self.watch is None else self.watch.fed(waiting)

    def _hold(self, held: HeldBody, chunk: bytes) -> Future | None:
        """A piece of a body held for mapping. One that cannot be held any more (sent
        without Content-Length, it outgrew the limit; or the process holds too much) is
        passed on unchanged after all: the relay starts, and what was held goes first."""
        self.record.received += len(chunk)
        if self.watch is not None:
            self.watch.fed(None)
        if self.record.received > self.context.options.max_body_size:
            self.held = None
            held.release()
            self._refuse_body(self.record.received)
            return None
        result = held.add(chunk)
        if result is None:
            return None
        self.held, self.body_result = None, result
        log_unheld(result, self._where(), held.limit)
        return self._start_relay(True, None, held.release() + chunk)

    async def _finish_relay(self) -> None:
        """Completes the relay; Tornado's handler method for every request method."""
        self.relaying = True
        if self.watch is not None:
            self.watch.stop()  # the body is whole
        held, target = self.held, self.target
        if held is not None and target is not None and target.mapper is not None:
            # The held body is whole: map it, and only now ask the backend.
            self.held = None
            content_type = self.request.headers.get("Content-Type")
            body, self.body_result = await map_held(
                held.release(), target.mapper, content_type, self._where()
            )
            if self.ended or self.client_gone or self._busy():
                return
            self._start_relay(True, None, body, whole=True)
        relay = self.relay
        if relay is not None and not self.ended:
            await relay.complete()

    # --- a body that does not arrive ----------------------------------------------------

    def _end_before_the_body(self, status: int | None = None) -> None:
        """End this request before its body was whole (the client left, or stalled):
        answer ``status`` if the response has not started, else close the connection.

        Tornado's _execute waits for the rest of a streamed body for ever (nothing
        resolves that wait when the connection closes), so each aborted upload kept its
        task, handler, request and connection alive: about 17 KiB for good. The handler
        ends itself, then cancels its task, which Tornado handles as "this handler's
        own task was cancelled"."""
        task, relay = self.request_task, self.relay
        head_sent = relay is not None and relay.head_sent
        if relay is not None:
            relay.client_left()  # it may write nothing more: the client is gone or ours
        if status == 408 and not self.client_gone and not head_sent:
            self.send_error_page(
                408, "Request Timeout", "The request body stopped arriving before it was whole."
            )
        else:
            self.close()
        if task is not None:
            task.cancel()

    def _stalled(self, waited: float) -> None:
        """The body brought nothing for client_body_timeout seconds (handlers/relay/
        bodywatch.py): 408."""
        if self.relaying or self.ended:
            return
        log.warning(
            "%s %s: no body bytes for %.0f s: 408", self.request.method, self.request.uri, waited
        )
        self._end_before_the_body(408)


# Tornado calls the handler method named after the request method, once the body is in.
for _method in METHODS:
    setattr(ProxyHandler, _method.lower(), ProxyHandler._finish_relay)
