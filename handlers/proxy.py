"""The proxying handler: resolve the site, build the upstream request, relay the answer.

Responses are relayed as they arrive: the status and headers when the backend's
header block is complete, then the body. Bodies that a rule rewrites are buffered
(they must be whole to be rewritten); small bodies of known length go out in one
write together with their headers; everything else is written chunk by chunk.
"""

from __future__ import annotations

import logging
from collections.abc import Container

import pycurl
from tornado.httpclient import HTTPClientError, HTTPRequest

from filters.pipeline import BodyRewriter
from handlers.headers import (
    cookie_names,
    cookie_value,
    downstream_headers,
    expire_cookies,
    field,
    upstream_headers,
)
from handlers.pages import PageHandler, site_list_html
from handlers.sites import SITE_COOKIE, SITE_PREFIX, Site
from handlers.upstream import Fields, OnHeaders

log = logging.getLogger(__name__)

# libcurl's error numbers that mean "the backend was too slow" (504); every other
# failure before a response means "could not get a response" (502).
_CURL_TIMEOUTS = frozenset({pycurl.E_OPERATION_TIMEDOUT})
_NO_BODY_STATUSES = frozenset({204, 304})


class _AnyMethodExcept(Container[str]):
    """Every request method is proxied except CONNECT (a tunnel to anywhere: never) and
    TRACE (it echoes credentials back to scripts)."""

    def __contains__(self, method: object) -> bool:
        return method not in ("CONNECT", "TRACE")


def _ascii_target(target: str) -> str:
    """The request target as libcurl will accept it. Tornado hands us the request line
    decoded as latin-1, so each character is one byte as sent; bytes outside ASCII are
    percent-encoded (as browsers do), everything else passes untouched."""
    if target.isascii():
        return target
    return "".join(c if ord(c) < 128 else f"%{ord(c):02X}" for c in target)


class ProxyHandler(PageHandler):
    SUPPORTED_METHODS = _AnyMethodExcept()  # type: ignore[assignment]
    _client_gone = False

    # Never invent a validator or answer a condition ourselves: only the backend's own
    # ETag describes its body, and the backend has seen the request's If-None-Match.
    def compute_etag(self) -> None:
        return None

    def set_etag_header(self) -> None:
        pass

    def check_etag_header(self) -> bool:
        return False

    def on_connection_close(self) -> None:
        self._client_gone = True

    async def prepare(self) -> None:
        uri = self.request.uri or ""
        if not uri.startswith("/"):
            # Absolute-form ("GET http://host/ HTTP/1.1") or asterisk-form targets are
            # requests for a forward proxy; this one reaches only its own sites.
            self.send_error_page(
                400, "Bad Request", "This proxy serves only paths that start with '/'."
            )
            return
        headers = self.request.headers
        cookie_site = cookie_value(headers.get("Cookie"))
        resolution = self.context.resolve(uri, cookie_site)
        site = resolution.site
        if site is None:
            if not resolution.via_prefix and cookie_site is None and self.request.path == "/":
                self.set_header("Cache-Control", "no-store")
                self.finish(site_list_html(self.context.table, None))
                return
            self.send_error_page(
                404,
                "Unknown site",
                f"No site named {resolution.name!r} is configured on this proxy."
                if resolution.name
                else "Choose a site to open.",
            )
            return
        if resolution.via_prefix and not uri.startswith(f"{SITE_PREFIX}{site.name}/"):
            # "/.site.name" or "/.site.name?x": the page's relative links need the slash.
            self.redirect(f"{SITE_PREFIX}{site.name}{resolution.rest}")
            return
        await self._proxy(site, resolution.rest, resolution.via_prefix, cookie_site)

    async def _proxy(
        self, site: Site, target: str, via_prefix: bool, cookie_site: str | None
    ) -> None:
        context = self.context
        options = context.options
        switching = via_prefix and cookie_site != site.name
        self._own_cookies: list[str] = []
        forward_cookies = True
        if switching:
            self._own_cookies.append(f"{SITE_COOKIE}={site.name}; Path=/; HttpOnly; SameSite=Lax")
            if options.clear_old_cookies and cookie_site is not None:
                # The cookies the browser holds belong to the site being left: they must
                # neither reach the new backend nor linger for the next visit.
                names = cookie_names(self.request.headers.get("Cookie"))
                self._own_cookies.extend(expire_cookies(names))
                forward_cookies = False
        request = self.request
        method = request.method or "GET"
        body: bytes | None = request.body
        if not body and method not in ("POST", "PUT", "PATCH"):
            body = None
        elif method == "GET":
            body = None  # libcurl cannot send one; no server may act on it (RFC 9110 9.3.1)
        out_headers = upstream_headers(
            request.headers,
            site,
            remote_ip=request.remote_ip or "",
            scheme=request.protocol,
            trusted_peer=context.is_trusted(request.remote_ip or ""),
            prefix=f"{SITE_PREFIX}{site.name}" if via_prefix else None,
            forward_cookies=forward_cookies,
        )
        # libcurl adds these when absent; an empty value tells it not to.
        for name in ("Accept", "User-Agent"):
            if name not in out_headers:
                out_headers[name] = ""
        self._site = site
        self._up_status = 0
        self._up_reason = ""
        self._up_fields: Fields = []
        self._started = False
        self._rewriter: BodyRewriter | None = None
        self._buffer: list[bytes] | None = None
        self._flush_each = False
        self._failure: str | None = None
        # Tornado's curl client may deliver the first body chunks before the header
        # lines (it queues both, and flushes the body first when a transfer ends in the
        # same read): keep them until the headers are in.
        self._early: list[bytes] | None = []
        upstream = HTTPRequest(
            site.base_url + _ascii_target(target),
            method=method,
            headers=out_headers,
            body=body,
            follow_redirects=False,
            decompress_response=False,
            allow_nonstandard_methods=True,
            connect_timeout=site.connect_timeout,
            request_timeout=0,  # no total limit: _prepare_curl sets an idle timeout
            validate_cert=site.validate_cert,
            ca_certs=site.ca_certs,
            header_callback=OnHeaders(self._on_headers),
            streaming_callback=self._on_chunk,
            prepare_curl_callback=self._prepare_curl,
        )
        try:
            await context.client.fetch(upstream, raise_error=False)
        except HTTPClientError as exc:
            self._on_failure(exc)
            return
        except Exception:
            log.exception("%s: proxying %s %s failed", site.name, method, target)
            self._on_failure(None)
            return
        self._finish_response()

    def _prepare_curl(self, curl: pycurl.Curl) -> None:
        # Tornado resets each pooled handle after use, so these apply per request.
        site = self._site
        # Send the path exactly as given: libcurl would otherwise squash "/../" and "/./".
        curl.setopt(pycurl.PATH_AS_IS, 1)
        curl.setopt(pycurl.PROTOCOLS, pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS)
        # An idle timeout rather than a total one: a long download or event stream
        # that keeps delivering is fine; a backend silent for `timeout` seconds is not
        # (libcurl: under 1 byte/s for LOW_SPEED_TIME seconds).
        curl.setopt(pycurl.LOW_SPEED_LIMIT, 1)
        curl.setopt(pycurl.LOW_SPEED_TIME, max(1, round(site.timeout)))
        if site.scheme == "https":
            # The site's own CA file, else the system's bundle (not the one libcurl was
            # built with, which in a wheel may not be where this system keeps it).
            cafile = site.ca_certs or self.context.default_ca_file
            if cafile:
                curl.setopt(pycurl.CAINFO, cafile)

    # --- the response, as libcurl delivers it -------------------------------------

    def _on_headers(self, code: int, reason: str, fields: Fields) -> None:
        self._up_status = code
        self._up_reason = reason
        self._up_fields = fields
        self._started = True
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
        early, self._early = self._early, None
        for chunk in early or ():
            self._on_chunk(chunk)

    def _start_response(self) -> None:
        site, fields, options = self._site, self._up_fields, self.context.options
        for default in ("Content-Type", "Server", "Date"):
            self.clear_header(default)  # Tornado's defaults; the backend's own replace them
        self.set_status(self._up_status, self._up_reason or "Unknown")
        for name, value in downstream_headers(fields, self.context.table, site):
            self.add_header(name, value)
        for cookie in self._own_cookies:
            self.add_header("Set-Cookie", cookie)
        if self.request.method == "HEAD" or self._up_status in _NO_BODY_STATUSES:
            if self._up_status in _NO_BODY_STATUSES:
                self.clear_header("Content-Length")
            self._buffer = []
            return
        length_text = field(fields, "content-length")
        length = int(length_text) if length_text and length_text.isdigit() else None
        # A 206 holds part of a representation: rewriting it would corrupt the whole.
        rewriter = None
        if self._up_status != 206:
            rewriter = self.context.plans[site.name].for_response(
                self.request.uri or "",
                field(fields, "content-type"),
                field(fields, "content-encoding"),
            )
        if rewriter is not None:
            if length is not None and length > options.rewrite_max_bytes:
                self._log_too_large()
            else:
                self._rewriter = rewriter
                self._buffer = []
                self._buffered = 0
                return
        if length is not None:
            if length <= options.small_body_bytes:
                self._buffer = []
                return
        self._flush_each = True
        self.flush()

    def _on_chunk(self, chunk: bytes) -> None:
        if self._early is not None:
            self._early.append(chunk)
            return
        if self._failure is not None or self._client_gone:
            return
        if self._buffer is not None:
            self._buffer.append(chunk)
            if self._rewriter is not None:
                self._buffered += len(chunk)
                if self._buffered > self.context.options.rewrite_max_bytes:
                    self._give_up_rewriting()
            return
        self.write(chunk)
        if self._flush_each:
            self.flush()

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
        pending, self._buffer, self._rewriter = self._buffer or [], None, None
        self._flush_each = True
        for part in pending:
            self.write(part)
        self.flush()

    def _finish_response(self) -> None:
        if self._client_gone:
            self._abandon()
            return
        if self._failure is not None or not self._started:
            self._on_failure(None)
            return
        if self._buffer is not None:
            body = b"".join(self._buffer)
            if self._rewriter is not None:
                body = self._rewritten(body)
            if self.request.method == "HEAD" or self._up_status in _NO_BODY_STATUSES:
                self.flush()  # headers only; Tornado must not add a Content-Length
            else:
                self.write(body)
        self.finish()

    def _rewritten(self, body: bytes) -> bytes:
        assert self._rewriter is not None
        try:
            new = self._rewriter.rewrite(body, self.context.options.rewrite_max_bytes)
        except Exception:
            log.exception(
                "%s: rewriting %s failed; sent unchanged", self._site.name, self.request.uri
            )
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
        if self._client_gone:
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
        connection = self.request.connection
        if connection is not None:
            connection.close()  # type: ignore[attr-defined]
        try:
            self.finish()
        except Exception:  # the connection is gone; nothing left to tell anyone
            log.debug("finishing an abandoned response", exc_info=True)
