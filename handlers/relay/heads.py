"""What a relay (handlers/relay/relay.py) decides without touching a connection: which
methods it relays, the request it sends to the backend, the head and body mode of the
response it sends on (with the proxy's own cookies), and the page a client gets when no
response can come."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

from tornado.concurrent import Future
from tornado.httputil import HTTPHeaders

from filters.names import SITE_COOKIE
from filters.pipeline import BodyRewriter
from handlers.mapping.cookies import expire_fallback_copies
from handlers.mapping.headers import downstream_headers, fields_named, header
from handlers.mapping.urlmap import is_proxy_origin
from handlers.relay.modes import NO_BODY_STATUSES, Mode, head_fields, response_mode
from handlers.upstream.curlopts import ascii_target
from handlers.upstream.errors import UpstreamError
from handlers.upstream.exchange import Exchange, Fields, ResponseCallback

if TYPE_CHECKING:
    from handlers.config.options import Options
    from handlers.config.table import Site
    from handlers.context import ProxyContext
    from handlers.door.target import Target

log = logging.getLogger(__name__)

# Every method is relayed but CONNECT (a tunnel to anywhere: never) and TRACE (it echoes
# credentials back to scripts). WebDAV and CalDAV methods are listed so that file and
# calendar servers work behind the proxy.
METHODS = (
    *("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"),
    *("PROPFIND", "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK", "SEARCH"),
    *("REPORT", "MKCALENDAR", "MKACTIVITY", "CHECKOUT", "MERGE", "ACL", "PURGE"),
)


def upstream_request(
    target: Target,
    method: str,
    headers: dict[str, str],
    body: bytes | None,
    producer: Callable[[Callable[[bytes], Future[None]]], Future[None]] | None,
    length: int | None,
    on_response: ResponseCallback,
    on_chunk: Callable[[bytes], Future[None] | None],
) -> Exchange:
    """The request for ``target``'s backend. Its body is ``body`` when whole, else what
    ``producer`` writes (``length`` bytes, or chunked when None); the response's head goes
    to ``on_response``, its body to ``on_chunk``."""
    if body is not None:
        headers["Content-Length"] = str(len(body))
    elif producer is not None and length is not None:
        headers["Content-Length"] = str(length)
    site = target.site
    request_target = ascii_target(target.path)
    return Exchange(
        site.base_url + request_target,
        method,
        headers,
        body=body,
        body_producer=producer,
        on_response=on_response,
        on_chunk=on_chunk,
        request_target=request_target,
        idle_timeout=site.timeout,
        connect_timeout=site.connect_timeout,
        request_timeout=None,  # no total limit: idle_timeout instead
        validate_cert=site.validate_cert,
        ca_certs=site.ca_certs,
    )


class ClientRequest(NamedTuple):
    """What a relay keeps of the client's request."""

    method: str
    uri: str
    headers: HTTPHeaders
    own_cookies: list[str]  # Set-Cookie fields of the proxy's own, added to the response


def site_cookies(target: Target, cookie_header: str | None, clear_old: bool) -> list[str]:
    """The proxy's own Set-Cookie fields for a response to ``target``: the ``.site``
    cookie when the user opens a page of another site, and with ``clear_old``
    (``clear_old_cookies``), the old site's fallback copies expired."""
    site = target.site
    # Only the user opening a page switches sites: a page's images, scripts and fetches
    # (a favicon from a background tab, say) must not move the other tabs.
    if not (target.via_prefix and target.navigation and target.cookie_site != site.name):
        return []
    cookies = [f"{SITE_COOKIE}={site.name}; Path=/; HttpOnly; SameSite=Lax"]
    if clear_old and target.cookie_site is not None:
        # The old site's session must not ride on the cookie fallback any more; its
        # scoped cookies (under /.site.<old>/) stay for its own tabs.
        cookies.extend(expire_fallback_copies(cookie_header, target.cookie_site))
    return cookies


class ResponsePlan(NamedTuple):
    fields: Fields  # the header fields the client will be sent
    mode: Mode
    rewriter: BodyRewriter | None  # for REWRITE


def plan_response(
    context: ProxyContext,
    target: Target,
    request: ClientRequest,
    status: int,
    fields: Fields,
) -> ResponsePlan:
    """How the backend's answer ``status`` with ``fields`` goes to the client. (A body
    the site would rewrite that is sent unchanged, too large, is logged.)"""
    site = target.site
    plan = context.plans[site.name]
    # The shim's tag for an HTML page, and any CSP amended to admit it.
    tag, fields = context.shim.plan(site, request.headers, fields)
    origin = _proxy_origin(site, request.headers)
    out = list(
        downstream_headers(
            fields, context.table, site, target.path, target.secure_client,
            plan.backend_links, origin,
        )
    )  # fmt: skip
    out.extend(("Set-Cookie", cookie) for cookie in request.own_cookies)
    options = context.options
    length_text, content_type, coding = fields_named(
        fields, "content-length", "content-type", "content-encoding"
    )
    length = int(length_text) if length_text and length_text.isdigit() else None
    rewriter = None
    if status not in NO_BODY_STATUSES and status != 206:
        rewriter = plan.for_response(request.uri, content_type, coding, tag)
    rewritable = rewriter is not None
    sizes = (options.rewrite_max_bytes, options.small_body_bytes)
    mode = response_mode(request.method, status, length, rewritable, *sizes)
    if request.method == "HEAD":
        if response_mode("GET", status, length, rewritable, *sizes) is Mode.REWRITE:
            # The GET's body would be rewritten: the backend's length would contradict
            # it. A HEAD may omit what only the content determines (RFC 9110 section
            # 9.3.2), as nginx's sub_filter does.
            out = head_fields(out)
        return ResponsePlan(out, mode, None)
    if mode is Mode.REWRITE:
        return ResponsePlan(out, mode, rewriter)
    if rewritable:
        log_too_large(site.name, request.uri, options)
    return ResponsePlan(out, mode, None)


def log_too_large(site_name: str, uri: str, options: Options) -> None:
    limit = options.rewrite_max_bytes
    log.warning(
        "%s: %s is larger than rewrite_max_bytes (%d): sent unchanged", site_name, uri, limit
    )


def _proxy_origin(site: Site, headers: HTTPHeaders) -> str | None:
    """The request's Origin when it is the proxy's own, which the backend was sent as its
    own origin (handlers/mapping/headers.py: map_request_urls)."""
    if site.knows_proxy or "Origin" not in headers:
        return None
    origin = headers["Origin"]
    if not is_proxy_origin(origin, header(headers, "Host")):
        return None
    return origin


def failure_page(exc: Exception | None, site_name: str, why: str | None) -> tuple[int, str, str]:
    """The status, title and detail of the page for a response that cannot come: 504 for a
    backend too slow, else 502 (with ``why``, when the relay knows it)."""
    status = exc.status if isinstance(exc, UpstreamError) else 502
    if status == 504:
        return status, "Site timed out", f"The site {site_name!r} did not answer in time."
    detail = why or f"The proxy could not get a response from the site {site_name!r}."
    return status, "Site unreachable", detail


__all__ = [
    "METHODS",
    "ClientRequest",
    "ResponsePlan",
    "failure_page",
    "log_too_large",
    "plan_response",
    "site_cookies",
    "upstream_request",
]
