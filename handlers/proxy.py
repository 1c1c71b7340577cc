"""The proxying handler: resolve the site, start the upstream transfer, relay both ways.

The request body streams to the backend as it arrives, and the client is read no faster
than the backend takes it. The response half lives in handlers/response.py.
"""

from __future__ import annotations

import asyncio
import logging
import time
from asyncio import Future

import pycurl
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.ioloop import IOLoop
from tornado.web import stream_request_body

from filters.pipeline import BodyRewriter
from handlers.cookies import expire_fallback_copies
from handlers.pages import PageHandler
from handlers.request import Target, backend_headers, resolve_target
from handlers.response import ResponseRelay
from handlers.sites import SITE_COOKIE
from handlers.transfer import Transfer
from handlers.upstream import Fields, HeaderParser

log = logging.getLogger(__name__)

# Every method is relayed but CONNECT (a tunnel to anywhere: never) and TRACE (it echoes
# credentials back to scripts). WebDAV and CalDAV methods are listed so that file and
# calendar servers work behind the proxy.
METHODS = (
    *("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"),
    *("PROPFIND", "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK", "SEARCH"),
    *("REPORT", "MKCALENDAR", "MKACTIVITY", "CHECKOUT", "MERGE", "ACL", "PURGE"),
)
# libcurl's receive buffer: larger chunks mean fewer Python calls per MiB relayed.
CURL_BUFFER_SIZE = 256 * 1024


def _ascii_target(target: str) -> str:
    """The request target as libcurl will accept it. Tornado hands us the request line
    decoded as latin-1, so each character is one byte as sent; bytes outside ASCII are
    percent-encoded (as browsers do), everything else passes untouched."""
    if target.isascii():
        return target
    return "".join(c if ord(c) < 128 else f"%{ord(c):02X}" for c in target)


@stream_request_body
class ProxyHandler(ResponseRelay, PageHandler):
    SUPPORTED_METHODS = METHODS
    _client_gone = False
    _relaying = False  # _finish_relay has started: the request body was complete
    _counted = False  # counted in context.upstream_requests
    _task: asyncio.Task | None = None  # the task Tornado runs this request in
    # The body's idle timer: when it last brought bytes, and whether the backend is
    # holding it back (the upload queue is full).
    _body_timer: object | None = None
    _last_body = 0.0
    _feeding: Future | None = None
    _transfer: Transfer | None = None
    _fetch: Future | None = None
    _headers_parser: HeaderParser | None = None

    # Never invent a validator or answer a condition ourselves: only the backend's own
    # ETag describes its body, and the backend has seen the request's If-None-Match.
    def compute_etag(self) -> None:
        return None

    def set_etag_header(self) -> None:
        pass

    def check_etag_header(self) -> bool:
        return False

    def on_finish(self) -> None:
        if self._counted:
            self._counted = False
            self.context.upstream_requests -= 1
        # The transfer and the header parser hold bound methods of this handler: drop
        # them so that the handler is freed now, by reference counting, rather than by
        # a later garbage collection pass (which showed up as latency spikes).
        self._transfer = None
        self._headers_parser = None
        self._fetch = None
        self._task = None
        self._feeding = None
        if self._body_timer is not None:
            IOLoop.current().remove_timeout(self._body_timer)
            self._body_timer = None

    def on_connection_close(self) -> None:
        self._client_gone = True
        if self._transfer is not None:
            self._transfer.abort()  # the backend sees its connection closed
        if not self._relaying and not self._finished:
            self._end_before_the_body()

    def _end_before_the_body(self, status: int | None = None) -> None:
        """End this request before its body was whole (the client left, or stalled):
        answer ``status`` if the response has not started, else close the connection.

        Tornado's _execute waits for the rest of a streamed body for ever (nothing
        resolves that wait when the connection closes), so each aborted upload kept its
        task, handler, request and connection alive: about 17 KiB for good. The handler
        ends itself, then cancels its task, which Tornado handles as "this handler's
        own task was cancelled"."""
        fetch, task = self._fetch, self._task
        if self._transfer is not None:
            self._transfer.abort()
        if fetch is not None:
            fetch.add_done_callback(_consume)  # its failure is expected, not news
        if status == 408 and not self._client_gone and not self._started:
            self.send_error_page(
                408, "Request Timeout", "The request body stopped arriving before it was whole."
            )
        else:
            self._abandon()
        if task is not None:
            task.cancel()

    def _watch_body(self) -> None:
        """While the body is being read: a client silent for client_body_timeout seconds
        (not counting the time the backend holds it back) is answered 408."""
        if self._relaying or self._finished:
            return
        timeout = self.context.options.client_body_timeout
        waited = time.monotonic() - self._last_body
        held = self._feeding is not None and not self._feeding.done()
        if waited < timeout or held:
            delay = timeout - waited if not held else timeout
            self._body_timer = IOLoop.current().call_later(max(delay, 0.05), self._watch_body)
            return
        log.warning(
            "%s %s: no body bytes for %.0f s: 408", self.request.method, self.request.uri, waited
        )
        self._end_before_the_body(408)

    # --- the request ----------------------------------------------------------------

    def prepare(self) -> None:
        self._task = asyncio.current_task()
        target = resolve_target(self, self.context)
        if target is None:
            return
        request, options = self.request, self.context.options
        length_text = request.headers.get("Content-Length")
        length = int(length_text) if length_text else None  # Tornado checked it is a number
        if length is not None and length > options.max_body_size:
            self._refuse_body(length)
            return
        # Tornado's own limit, above ours: data_received sees a body cross our limit and
        # answers 413 (Tornado would answer 400); past this one, Tornado stops reading.
        limit = options.max_body_size
        request.connection.set_max_body_size(limit + max(limit, 16 << 20))  # type: ignore[union-attr]
        self._received = 0
        has_body = bool(length) or "Transfer-Encoding" in request.headers
        # Started now, so that the body streams upstream as it is read; completed by
        # _finish_relay, which Tornado calls once the body is in. (Awaiting the relay here
        # would also keep Tornado from noticing that the client has gone.)
        self._start_transfer(target, has_body, length)
        if has_body and self._transfer is not None:
            self._last_body = time.monotonic()
            self._watch_body()

    def _refuse_body(self, length: int) -> None:
        limit = self.context.options.max_body_size
        log.warning(
            "%s: request body of %d bytes refused (max_body_size %d)",
            self.request.uri,
            length,
            limit,
        )
        self.send_error_page(
            413, "Request too large", f"This proxy accepts request bodies of up to {limit:,} bytes."
        )

    def _start_transfer(self, target: Target, has_body: bool, length: int | None) -> None:
        site, context, request = target.site, self.context, self.request
        method = request.method or "GET"
        options = context.options
        if context.upstream_requests >= options.max_clients + options.upstream_queue:
            # Every connection to the backends is busy and the queue is full: a clear
            # answer now beats an unbounded queue (and memory) and a late timeout.
            log.warning(
                "%s: %s %s -> 503 (%d upstream requests in flight or waiting)",
                site.name,
                method,
                request.uri,
                context.upstream_requests,
            )
            self.send_error_page(
                503,
                "Busy",
                "The proxy is handling as many requests as it can. Try again soon.",
                {"Retry-After": "5"},
            )
            return
        context.upstream_requests += 1
        self._counted = True
        # Only the user opening a page switches sites: a page's images, scripts and
        # fetches (a favicon from a background tab, say) must not move the other tabs.
        switching = target.via_prefix and target.navigation and target.cookie_site != site.name
        self._own_cookies: list[str] = []
        if switching:
            self._own_cookies.append(f"{SITE_COOKIE}={site.name}; Path=/; HttpOnly; SameSite=Lax")
            if context.options.clear_old_cookies and target.cookie_site is not None:
                # The old site's session must not ride on the cookie fallback any more;
                # its scoped cookies (under /.site.<old>/) stay for its own tabs.
                self._own_cookies.extend(
                    expire_fallback_copies(request.headers.get("Cookie"), target.cookie_site)
                )
        headers = backend_headers(self, context, target)
        # libcurl adds these when absent; an empty value tells it not to.
        for name in ("Accept", "User-Agent"):
            if name not in headers:
                headers[name] = ""
        # libcurl cannot send a GET or HEAD with a body (in its upload mode it would send
        # a PUT: a read turned into a write), and no server may act on one (RFC 9110
        # sections 9.3.1-2): it is read and dropped.
        upload = has_body and method not in ("GET", "HEAD")
        self._site = site
        self._target = target
        # The request target as it goes upstream, byte for byte (see _prepare_curl).
        self._upstream_target = _ascii_target(target.path)
        self._up_status = 0
        self._up_reason = ""
        self._up_fields: Fields = []
        self._started = False
        self._rewriter: BodyRewriter | None = None
        self._buffer: list[bytes] | None = None
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._flushing: Future | None = None
        self._failure: str | None = None
        self._transfer = Transfer(context.client, self._on_chunk, upload, length)
        self._headers_parser = HeaderParser(self._on_headers)
        upstream = HTTPRequest(
            site.base_url + self._upstream_target,
            method=method,
            headers=headers,
            # A body is streamed in by Transfer; b"" only tells Tornado there is one.
            body=b"" if upload or method in ("POST", "PUT", "PATCH") else None,
            follow_redirects=False,
            decompress_response=False,
            allow_nonstandard_methods=True,
            connect_timeout=site.connect_timeout,
            request_timeout=0,  # no total limit: _prepare_curl sets an idle timeout
            validate_cert=site.validate_cert,
            ca_certs=site.ca_certs,
            header_callback=self._headers_parser,
            prepare_curl_callback=self._prepare_curl,
        )
        self._fetch = context.client.fetch(upstream, raise_error=False)

    def data_received(self, chunk: bytes) -> Future | None:
        transfer = self._transfer
        if transfer is None or self._finished:
            return None  # already answered (413, 404, ...): the rest is read and dropped
        self._received += len(chunk)
        if self._received > self.context.options.max_body_size:
            transfer.abort()
            if not self._started:
                self._refuse_body(self._received)
            return None
        self._last_body = time.monotonic()
        if not transfer.upload:
            return None
        self._feeding = transfer.feed(chunk)
        return self._feeding

    def _prepare_curl(self, curl: pycurl.Curl) -> None:
        # Tornado resets each pooled handle after use, so these apply per request.
        site = self._site
        assert self._transfer is not None
        self._transfer.attach(curl, self.request.method or "GET")
        # Send the target exactly as given: libcurl would otherwise squash "/../" and
        # "/./" and upper-case percent-escapes ("%2e" -> "%2E"), which breaks signed URLs.
        # (resolve_target refused targets with a "#" or control bytes.)
        curl.setopt(pycurl.PATH_AS_IS, 1)
        curl.setopt(pycurl.REQUEST_TARGET, self._upstream_target)
        curl.setopt(pycurl.PROTOCOLS, pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS)
        curl.setopt(pycurl.BUFFERSIZE, CURL_BUFFER_SIZE)
        # An idle timeout rather than a total one: a long download or event stream
        # that keeps delivering is fine; a backend silent for `timeout` seconds is not
        # (libcurl: under 1 byte/s for LOW_SPEED_TIME seconds; not counted while paused).
        curl.setopt(pycurl.LOW_SPEED_LIMIT, 1)
        curl.setopt(pycurl.LOW_SPEED_TIME, max(1, round(site.timeout)))
        if site.scheme == "https":
            # The site's own CA file, else the system's bundle (not the one libcurl was
            # built with, which in a wheel may not be where this system keeps it).
            cafile = site.ca_certs or self.context.default_ca_file
            if cafile:
                curl.setopt(pycurl.CAINFO, cafile)

    async def _finish_relay(self) -> None:
        """Completes the relay; Tornado's handler method for every request method."""
        self._relaying = True
        transfer, fetch, parser = self._transfer, self._fetch, self._headers_parser
        if transfer is None or fetch is None or parser is None or self._finished:
            return
        transfer.end()
        try:
            await fetch
        except HTTPClientError as exc:
            self._on_failure(exc)
            return
        except Exception:
            log.exception("%s: proxying %s failed", self._site.name, self.request.uri)
            self._on_failure(None)
            return
        finally:
            transfer.detach()
        # The fetch may complete before the IOLoop has run the callbacks that carry its
        # headers and last chunks: run them now, in order.
        parser.deliver()
        transfer.deliver()
        self._finish_response()


def _consume(fetch: Future) -> None:
    fetch.exception()


# Tornado calls the handler method named after the request method, once the body is in.
for _method in METHODS:
    setattr(ProxyHandler, _method.lower(), ProxyHandler._finish_relay)
