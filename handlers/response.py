"""The response half of the relay: what the backend answers, on its way to the client.

Status and headers go out as soon as the backend's header block is complete, then the
body. Bodies that are rewritten are held whole (they must be, to be rewritten), and so
are small bodies of known length, which then leave in one write with their headers;
everything else is written as it comes, one flush at a time, and the backend is paused
while the client has more than DOWNLOAD_HIGH_WATER bytes still to take.
"""

from __future__ import annotations

import logging
from asyncio import Future
from typing import Any

import pycurl
from tornado.httpclient import HTTPClientError

from handlers.headers import downstream_headers, field
from handlers.modes import NO_BODY_STATUSES, Mode, response_mode
from handlers.upstream import Fields

log = logging.getLogger(__name__)

DOWNLOAD_HIGH_WATER = 1 << 20
# libcurl's error numbers that mean "the backend was too slow" (504); every other
# failure before a response means "could not get a response" (502).
_CURL_TIMEOUTS = frozenset({pycurl.E_OPERATION_TIMEDOUT})


class ResponseRelay:
    """Mixed into ProxyHandler (a RequestHandler), which sets the state it reads:
    _site, _transfer, _own_cookies, _client_gone and the _up_*/_buffer fields."""

    _site: Any
    _target: Any
    _mode: Mode = Mode.STREAM
    _buffer: list[bytes] | None
    _failure: str | None
    _transfer: Any
    _own_cookies: list[str]
    _client_gone: bool

    def _on_headers(self, code: int, reason: str, fields: Fields) -> None:
        self._up_status, self._up_reason, self._up_fields = code, reason, fields
        self._started = True
        if self._finished or self._client_gone:
            return
        try:
            self._start_response()
        except ValueError as exc:  # a field Tornado refuses to send (control characters)
            log.warning("%s: invalid response header from the backend: %s", self._site.name, exc)
            self._failure = f"The site {self._site.name!r} sent an invalid response."
        except Exception:
            log.exception("%s: cannot relay the response headers", self._site.name)
            self._failure = (
                f"The site {self._site.name!r} sent a response the proxy could not relay."
            )

    def _start_response(self) -> None:
        site, options = self._site, self.context.options
        # The shim's tag for an HTML page, and any CSP amended to admit it.
        tag, fields = self.context.shim.plan(site, self.request.headers, self._up_fields)
        for default in ("Content-Type", "Server", "Date"):
            self.clear_header(default)  # Tornado's defaults; the backend's own replace them
        self.set_status(self._up_status, self._up_reason or "Unknown")
        target = self._target
        for name, value in downstream_headers(
            fields, self.context.table, site, target.path, target.secure_client
        ):
            self.add_header(name, value)
        for cookie in self._own_cookies:
            self.add_header("Set-Cookie", cookie)
        status, method = self._up_status, self.request.method or "GET"
        length_text = field(fields, "content-length")
        length = int(length_text) if length_text and length_text.isdigit() else None
        rewriter = None
        if method != "HEAD" and status not in NO_BODY_STATUSES and status != 206:
            rewriter = self.context.plans[site.name].for_response(
                self.request.uri or "",
                field(fields, "content-type"),
                field(fields, "content-encoding"),
                tag,
            )
        mode = response_mode(
            method,
            status,
            length,
            rewriter is not None,
            options.rewrite_max_bytes,
            options.small_body_bytes,
        )
        self._mode = mode
        if mode is Mode.HEADERS_ONLY:
            if status in NO_BODY_STATUSES:
                self.clear_header("Content-Length")
            self._buffer = []
        elif mode is Mode.REWRITE:
            self._rewriter = rewriter
            self._buffer = []
            self._buffered = 0
        elif mode is Mode.SMALL:
            if rewriter is not None:
                self._log_too_large()
            self._buffer = []
        else:
            if rewriter is not None:
                self._log_too_large()
            self._send_pending()  # headers now: an event stream's client is waiting

    def _on_chunk(self, chunk: bytes) -> None:
        if self._failure is not None or self._client_gone or self._finished:
            return
        if self._buffer is not None:
            self._buffer.append(chunk)
            if self._rewriter is not None:
                self._buffered += len(chunk)
                if self._buffered > self.context.options.rewrite_max_bytes:
                    self._give_up_rewriting()
            return
        self._pending.append(chunk)
        self._pending_bytes += len(chunk)
        if self._flushing is None:
            self._send_pending()
        elif self._pending_bytes >= DOWNLOAD_HIGH_WATER and self._transfer is not None:
            self._transfer.hold()

    def _send_pending(self) -> None:
        """Write what is waiting; one flush at a time, so its completion says that the
        client has taken everything so far."""
        for chunk in self._pending:
            self.write(chunk)
        self._pending.clear()
        self._pending_bytes = 0
        flushing = self.flush()
        self._flushing = flushing
        flushing.add_done_callback(self._flushed)

    def _flushed(self, flushing: Future) -> None:
        self._flushing = None
        if flushing.exception() is not None:
            return  # the client has gone: on_connection_close ends the transfer
        if self._pending and not self._finished:
            self._send_pending()
        if self._transfer is not None:
            self._transfer.release()

    def _log_too_large(self) -> None:
        log.warning(
            "%s: %s is larger than rewrite_max_bytes (%d): sent unchanged",
            self._site.name,
            self.request.uri,
            self.context.options.rewrite_max_bytes,
        )

    def _give_up_rewriting(self) -> None:
        """A body without Content-Length grew past the rewrite cap: send what we have
        unchanged and stream the rest."""
        self._log_too_large()
        self._pending, self._buffer, self._rewriter = self._buffer or [], None, None
        self._send_pending()

    def _finish_response(self) -> None:
        if self._client_gone or self._finished:
            self._abandon()
            return
        if self._failure is not None or not self._started:
            self._on_failure(None)
            return
        if self._buffer is not None:
            body = b"".join(self._buffer)
            if self._rewriter is not None:
                body = self._rewritten(body)
            if self._mode is Mode.HEADERS_ONLY:
                self.flush()  # headers only; Tornado must not add a Content-Length
            else:
                self.write(body)
        for chunk in self._pending:
            self.write(chunk)
        self._pending.clear()
        self.finish()

    def _rewritten(self, body: bytes) -> bytes:
        assert self._rewriter is not None
        try:
            new = self._rewriter.rewrite(body, self.context.options.rewrite_max_bytes)
        except Exception:
            log.exception("%s: rewriting %s failed; sent as is", self._site.name, self.request.uri)
            return body
        if new is None:
            return body  # unchanged: the backend's length and validators still hold
        # The body changed: its length and the validators of the backend's bytes no
        # longer describe it.
        for stale in ("Etag", "Content-Md5", "Accept-Ranges"):
            self.clear_header(stale)
        self.set_header("Content-Length", str(len(new)))
        return new

    def _on_failure(self, exc: HTTPClientError | None) -> None:
        site = self._site
        if self._client_gone or self._finished:
            self._abandon()
            return
        if self._started and self._headers_written:
            # Part of the response is already with the client: the only honest signal
            # left is to end the connection before the body is complete.
            log.warning("%s: response to %s broke off: %s", site.name, self.request.uri, exc)
            self._abandon()
            return
        errno = getattr(exc, "errno", None)
        if errno in _CURL_TIMEOUTS:
            status, title = 504, "Site timed out"
            detail = f"The site {site.name!r} did not answer in time."
        else:
            status, title = 502, "Site unreachable"
            detail = (
                self._failure or f"The proxy could not get a response from the site {site.name!r}."
            )
        log.warning(
            "%s: %s %s -> %d (%s)", site.name, self.request.method, self.request.uri, status, exc
        )
        self.send_error_page(status, title, detail)

    def _abandon(self) -> None:
        """Close the client connection and end the handler without sending more."""
        if self._finished:
            return
        connection = self.request.connection
        if connection is not None:
            connection.close()  # type: ignore[attr-defined]
        try:
            self.finish()
        except Exception:  # the connection is gone; nothing left to tell anyone
            log.debug("finishing an abandoned response", exc_info=True)
