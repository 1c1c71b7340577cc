"""One proxied request's exchange with its backend: the ``Relay``.

A ``Relay`` owns the upstream transfer. It starts it, feeds it the request body, and
receives what the backend answers in the shape of Tornado's ``HTTPMessageDelegate``:
``headers_received``, ``data_received``, then ``finish`` or ``fail``. What the client
is sent goes through a ``Sink``, a small interface the handler implements, so the relay
can be driven and checked without a network (tests/test_relay.py).

How the body travels is one named ``Mode`` (handlers/relay/modes.py), chosen once, when the
header block is in:

- HEADERS_ONLY, REWRITE and SMALL hold the body and send the response in one go when the
  backend is done (REWRITE rewrites it first; a body without a length that outgrows
  ``rewrite_max_bytes`` switches to STREAM, unchanged);
- STREAM sends the head at once, then writes each chunk as it comes, one flush at a
  time, and pauses the backend while the client has DOWNLOAD_HIGH_WATER bytes or more
  still to take.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from tornado.concurrent import Future
from tornado.httputil import HTTPServerRequest

from filters.pipeline import BodyRewriter
from handlers.mapping.headers import downstream_headers, field
from handlers.mapping.urlmap import is_proxy_origin
from handlers.ops.metrics import error_kind
from handlers.relay.modes import (
    NO_BODY_STATUSES,
    Mode,
    head_fields,
    response_mode,
    rewritten_fields,
)
from handlers.relay.sink import Sink
from handlers.upstream.client import TransferHandle, UpstreamRequest
from handlers.upstream.curlopts import ascii_target
from handlers.upstream.errors import UpstreamError
from handlers.upstream.transfer import Fields

if TYPE_CHECKING:
    from handlers.context import ProxyContext
    from handlers.door.target import Target

log = logging.getLogger(__name__)

DOWNLOAD_HIGH_WATER = 1 << 20


def _consume(future: Future) -> None:
    future.exception()  # a fetch nobody awaits any more: its failure is expected


class Relay:
    """Relays one request (see the module's docstring). All its state is here."""

    def __init__(
        self,
        sink: Sink,
        context: ProxyContext,
        request: HTTPServerRequest,
        target: Target,
        own_cookies: list[str],
    ) -> None:
        self.sink = sink
        self.context = context
        self.site = target.site
        self.target = target
        self.method = request.method or "GET"
        self.uri = request.uri or ""
        self.request_headers = request.headers
        self.own_cookies = own_cookies  # Set-Cookie fields of the proxy's own
        # The upstream side.
        self.transfer: TransferHandle | None = None
        self.fetch: Future | None = None
        self.body_done: Future[None] | None = None  # resolved when the upload is whole
        self.write_body: object | None = None  # the client's write function, for uploads
        # The response, as it is relayed.
        self.mode: Mode | None = None  # None until the header block is in
        self.status = 0
        self.reason = ""
        self.fields: Fields = []  # the header fields the client will be sent
        self.rewriter: BodyRewriter | None = None
        self.held: list[bytes] = []  # the body, in the modes that hold it
        self.held_bytes = 0
        self.pending: list[bytes] = []  # STREAM: received, not yet written
        self.pending_bytes = 0
        self.flushing: Future[None] | None = None  # STREAM: the flush in progress
        self.head_sent = False
        self.failure: str | None = None  # why the response cannot be relayed
        self.client_gone = False
        self.done = False  # finish or fail has run: nothing more is written
        # For the access log and the metrics (handlers/ops/metrics.py).
        self.upstream_started = 0.0
        self.upstream_seconds: float | None = None
        self.rewrite_seconds: float | None = None
        self.upstream_error: str | None = None

    # --- the upstream transfer ------------------------------------------------------

    def start(
        self, headers: dict[str, str], upload: bool, length: int | None, body: bytes | None = None
    ) -> None:
        """Send the request upstream. With ``upload``, the body is ``body`` when it is
        whole already, else it follows through ``feed`` (``length`` bytes, or chunked
        when None) and ends with ``complete``."""
        site, target = self.site, self.target
        producer = None
        if body is not None:
            headers["Content-Length"] = str(len(body))
        elif upload:
            self.body_done = Future()
            producer = self._produce
            if length is not None:
                headers["Content-Length"] = str(length)
        request_target = ascii_target(target.path)
        upstream = UpstreamRequest(
            site.base_url + request_target,
            request_target=request_target,
            idle_timeout=site.timeout,
            on_response=self.headers_received,
            streaming_callback=self.data_received,
            body_producer=producer,
            body=body,
            method=self.method,
            headers=headers,
            follow_redirects=False,
            decompress_response=False,
            allow_nonstandard_methods=True,
            connect_timeout=site.connect_timeout,
            request_timeout=0,  # no total limit: idle_timeout instead
            validate_cert=site.validate_cert,
            ca_certs=site.ca_certs,
        )
        self.transfer = upstream.handle
        self.upstream_started = time.monotonic()
        self.fetch = self.context.client.fetch(upstream, raise_error=False)

    def _produce(self, write: object) -> Future[None]:
        self.write_body = write
        assert self.body_done is not None
        return self.body_done

    def feed(self, chunk: bytes) -> Future[None] | None:
        """A piece of the request body; a Future when the caller should wait for room."""
        if self.write_body is None or self.done:
            return None
        waiting: Future[None] = self.write_body(chunk)  # type: ignore[operator]
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
            self.upstream_seconds = time.monotonic() - self.upstream_started
            if not self.client_gone:
                self.upstream_error = error_kind(exc.errno)
            self.fail(exc)
            return
        except Exception:
            log.exception("%s: proxying %s failed", self.site.name, self.uri)
            self.fail(None)
            return
        self.upstream_seconds = time.monotonic() - self.upstream_started
        await self._caught_up()
        self.finish()

    async def _caught_up(self) -> None:
        """Wait until no flush is in progress, so that ``finish`` writes the end alone.

        Tornado's HTTP1Connection keeps one write Future: a write made while another is
        in progress has its Future resolved when the earlier one completes. The last
        write, made by ``sink.finish()`` behind a flush to a slow client, would then say
        "sent" with up to a MiB still in the connection's buffer, and closing on it
        (``Connection: close``) would drop those bytes (issue 17)."""
        while self.flushing is not None and not self.done:
            await asyncio.wait([self.flushing])  # _flushed runs first: it sends the rest

    def abort(self) -> None:
        """End the upstream transfer now (the client has gone or stalled)."""
        if self.transfer is not None:
            self.transfer.abort()
        if self.fetch is not None:
            self.fetch.add_done_callback(_consume)

    def client_left(self) -> None:
        self.client_gone = True
        self.abort()

    # --- what the backend answers ---------------------------------------------------------

    def headers_received(self, status: int, reason: str, fields: Fields) -> None:
        self.status, self.reason = status, reason
        if self.done or self.client_gone:
            return
        try:
            self._plan(fields)
        except ValueError as exc:  # a field that may not be sent (control characters)
            log.warning("%s: invalid response header from the backend: %s", self.site.name, exc)
            self.failure = f"The site {self.site.name!r} sent an invalid response."
        except Exception:
            log.exception("%s: cannot relay the response headers", self.site.name)
            self.failure = f"The site {self.site.name!r} sent a response the proxy could not relay."

    def _plan(self, fields: Fields) -> None:
        site, context, target = self.site, self.context, self.target
        # The shim's tag for an HTML page, and any CSP amended to admit it.
        tag, fields = context.shim.plan(site, self.request_headers, fields)
        out = list(
            downstream_headers(
                fields,
                context.table,
                site,
                target.path,
                target.secure_client,
                context.plans[site.name].backend_links,
                self._proxy_origin(),
            )
        )
        out.extend(("Set-Cookie", cookie) for cookie in self.own_cookies)
        self.fields = out
        status, method, options = self.status, self.method, context.options
        length_text = field(fields, "content-length")
        length = int(length_text) if length_text and length_text.isdigit() else None
        rewriter = None
        if status not in NO_BODY_STATUSES and status != 206:
            rewriter = context.plans[site.name].for_response(
                self.uri, field(fields, "content-type"), field(fields, "content-encoding"), tag
            )
        sizes = (options.rewrite_max_bytes, options.small_body_bytes)
        mode = response_mode(method, status, length, rewriter is not None, *sizes)
        self.mode = mode
        if mode is Mode.REWRITE:
            self.rewriter = rewriter
        elif method == "HEAD":
            if response_mode("GET", status, length, rewriter is not None, *sizes) is Mode.REWRITE:
                # The GET's body would be rewritten: the backend's length would
                # contradict it. A HEAD may omit what only the content determines (RFC
                # 9110 section 9.3.2), as nginx's sub_filter does.
                self.fields = head_fields(out)
        elif rewriter is not None:
            self._log_too_large()
        if mode is Mode.STREAM:
            self.sink.respond(status, self.reason, out)
            self._send_pending()  # the head now: an event stream's client is waiting

    def _proxy_origin(self) -> str | None:
        """The request's Origin when it is the proxy's own, which the backend was sent as
        its own origin (handlers/mapping/headers.py: map_request_urls)."""
        origin = self.request_headers.get("Origin")
        host = self.request_headers.get("Host")
        if self.site.knows_proxy or not is_proxy_origin(origin, host):
            return None
        return origin

    def data_received(self, chunk: bytes) -> Future[None] | None:
        """A piece of the response body. Returns a Future to pause the backend until
        it resolves (the client is behind)."""
        if self.failure is not None or self.client_gone or self.done:
            return None
        if self.mode is not Mode.STREAM:
            self.held.append(chunk)
            if self.rewriter is not None:
                self.held_bytes += len(chunk)
                if self.held_bytes > self.context.options.rewrite_max_bytes:
                    self._give_up_rewriting()
            return None
        self.pending.append(chunk)
        self.pending_bytes += len(chunk)
        if self.flushing is None:
            self._send_pending()
            return None
        return self.flushing if self.pending_bytes >= DOWNLOAD_HIGH_WATER else None

    def _send_pending(self) -> None:
        """Write what is waiting; one flush at a time, so that its completion says the
        client has taken everything so far."""
        sink = self.sink
        for chunk in self.pending:
            sink.write(chunk)
        self.pending = []
        self.pending_bytes = 0
        self.head_sent = True
        flushing = sink.flush()
        self.flushing = flushing
        flushing.add_done_callback(self._flushed)

    def _flushed(self, flushing: Future[None]) -> None:
        self.flushing = None
        if flushing.exception() is not None:
            return  # the client has gone: the handler hears of it and ends the transfer
        if self.pending and not self.done:
            self._send_pending()

    def _give_up_rewriting(self) -> None:
        """A body without Content-Length grew past the rewrite cap: send what we have
        unchanged and stream the rest."""
        self._log_too_large()
        self.mode, self.rewriter = Mode.STREAM, None
        self.pending, self.held = self.held, []
        self.pending_bytes, self.held_bytes = self.held_bytes, 0
        self.sink.respond(self.status, self.reason, self.fields)
        self._send_pending()

    def _log_too_large(self) -> None:
        log.warning(
            "%s: %s is larger than rewrite_max_bytes (%d): sent unchanged",
            self.site.name,
            self.uri,
            self.context.options.rewrite_max_bytes,
        )

    def finish(self) -> None:
        """The backend's response is complete: complete the client's."""
        if self.done:
            return
        mode = self.mode
        if self.client_gone:
            self.done = True
            self.sink.close()
            return
        if self.failure is not None or mode is None:
            self.fail(None)
            return
        sink = self.sink
        if mode is Mode.STREAM:
            if self.flushing is not None:  # see _caught_up: the end goes once it is done
                self.flushing.add_done_callback(lambda _: self.finish())
                return
            self.done = True
            for chunk in self.pending:
                sink.write(chunk)
            self.pending = []
            sink.finish()
            return
        self.done = True
        fields = self.fields
        body = b"".join(self.held)
        self.held = []
        if mode is Mode.HEADERS_ONLY:
            if self.status in NO_BODY_STATUSES:
                fields = [(k, v) for k, v in fields if k.lower() != "content-length"]
            body = b""
        elif mode is Mode.REWRITE:
            new = self._rewritten(body)
            if new is not None:
                # The body changed: its length and the validators of the backend's
                # bytes no longer describe it.
                fields = rewritten_fields(fields)
                fields.append(("Content-Length", str(len(new))))
                body = new
        try:
            sink.respond(self.status, self.reason, fields)
        except ValueError as exc:
            log.warning("%s: invalid response header from the backend: %s", self.site.name, exc)
            self.done = False
            self.failure = f"The site {self.site.name!r} sent an invalid response."
            self.fail(None)
            return
        self.head_sent = True
        if mode is Mode.HEADERS_ONLY:
            sink.flush()  # the head alone: no Content-Length may be made up for it
        else:
            sink.write(body)
        sink.finish()

    def _rewritten(self, body: bytes) -> bytes | None:
        """The rewritten body; None when unchanged (or when rewriting failed)."""
        assert self.rewriter is not None
        started = time.perf_counter()
        try:
            return self.rewriter.rewrite(body, self.context.options.rewrite_max_bytes)
        except Exception:
            log.exception("%s: rewriting %s failed; sent as is", self.site.name, self.uri)
            return None
        finally:
            self.rewrite_seconds = time.perf_counter() - started

    def fail(self, exc: Exception | None) -> None:
        """No complete response can come: a 502/504 page if nothing was sent yet, else
        the connection is closed before the body is complete."""
        if self.done:
            return
        self.done = True
        site, sink = self.site, self.sink
        if self.client_gone:
            sink.close()
            return
        if self.head_sent:
            # Part of the response is already with the client: the only honest signal
            # left is to end the connection before the body is complete.
            log.warning("%s: response to %s broke off: %s", site.name, self.uri, exc)
            sink.close()
            return
        # A backend that was too slow is a 504; any other failure before a response, 502.
        if isinstance(exc, UpstreamError) and error_kind(exc.errno) == "timeout":
            status, title = 504, "Site timed out"
            detail = f"The site {site.name!r} did not answer in time."
        else:
            status, title = 502, "Site unreachable"
            detail = self.failure or (
                f"The proxy could not get a response from the site {site.name!r}."
            )
        log.warning("%s: %s %s -> %d (%s)", site.name, self.method, self.uri, status, exc)
        sink.error_page(status, title, detail)
