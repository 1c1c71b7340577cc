"""What every proxied request does first: find its site and check that the client may open
it. The outcome is a value: a ``Target`` to relay the request to, or an ``Answer`` the proxy
gives itself (an error page, a redirect, the site list). The handler acts on it; nothing
here writes to the client."""

from __future__ import annotations

import logging
import re
import urllib.parse
from dataclasses import dataclass
from typing import NamedTuple

from tornado.httputil import HTTPServerRequest

from filters.names import LOGIN_PATH, SITE_PREFIX
from filters.requestbody import BodyMapper
from handlers.config.sites import Site
from handlers.context import ProxyContext
from handlers.door.access import Decision
from handlers.door.identity import Identity
from handlers.door.routing import is_navigation, referer_site, resolve
from handlers.mapping.cookies import cookie_value
from handlers.mapping.headers import header, upstream_headers

log = logging.getLogger(__name__)
_BAD_TARGET = re.compile(r"[#\x00-\x20\x7f]")


class Target(NamedTuple):
    site: Site
    path: str  # path and query to request from the backend
    via: str  # what chose the site: "prefix", "referer" or "cookie" (routing.Resolution)
    cookie_site: str | None  # what the .site cookie said
    navigation: bool  # a top-level document navigation (routing.is_navigation)
    secure_client: bool  # the browser reached us (or the proxy in front of us) over https
    # Maps the proxy's URLs in what the client sends back to the backend's (None: the
    # site asks for them as sent: map_requests=False or knows_proxy).
    mapper: BodyMapper | None = None
    identity: Identity | None = None  # who is signed in (None: nobody, or no sign-in)

    @property
    def via_prefix(self) -> bool:
        return self.via == "prefix"


@dataclass(frozen=True, slots=True)
class SiteList:
    """What the site list shows: the sites this client may open, and who is logged in."""

    current: str | None  # the site the .site cookie names
    visible: frozenset[str]
    user: str | None


@dataclass(frozen=True, slots=True)
class Answer:
    """What the proxy answers itself, nothing asked of a backend: the error page of
    ``status`` (``reason``, ``detail``), a redirect to ``location``, or the site list
    (``sites``); ``headers`` go with it."""

    status: int
    reason: str
    detail: str = ""
    location: str | None = None
    sites: SiteList | None = None
    headers: tuple[tuple[str, str], ...] = ()
    # A refusal by the access rules, for the audit trail: its reason, the site and who.
    refused: str | None = None
    site: str | None = None
    user: str | None = None


def redirect(location: str) -> Answer:
    return Answer(302, "Found", location=location)


def decide(request: HTTPServerRequest, context: ProxyContext) -> Target | Answer:
    """The site and path a request names, or the answer it gets instead: 400 for a
    forward-proxy request, 404 for an unknown site, the site list, a refusal (403, 401 or
    the login page), or a redirect (the slash after /.site.<name>, or a page's unprefixed
    navigation)."""
    uri = request.uri or ""
    if not uri.startswith("/"):
        # Absolute-form ("GET http://host/ HTTP/1.1") or asterisk-form targets are
        # requests for a forward proxy; this one reaches only its own sites.
        return Answer(400, "Bad Request", "This proxy serves only paths that start with '/'.")
    bad = _BAD_TARGET.search(uri)
    if bad is not None:
        # A fragment is the client's business and never part of a request target (RFC
        # 9112 section 3.2); cutting it off would send a shorter target than was asked
        # for (DELETE /dir/#x would delete /dir/). Control bytes have no place there
        # either, and the target goes upstream byte for byte.
        what = "a fragment ('#')" if bad.group() == "#" else "a control character"
        return Answer(400, "Bad Request", f"The request target contains {what}.")
    headers = request.headers
    cookie_site = cookie_value(header(headers, "Cookie"))
    referer_name = referer_site(header(headers, "Referer"), header(headers, "Host"))
    resolution = resolve(uri, cookie_site, context.table, referer_name)
    site = resolution.site
    if site is None:
        if not resolution.via_prefix and cookie_site is None and request.path == "/":
            return site_list(request, context, None)
        detail = (
            f"No site named {resolution.name!r} is configured on this proxy."
            if resolution.name
            else "Choose a site to open."
        )
        return Answer(404, "Unknown site", detail)
    ip, identity = context.client_ip(request), context.identity(request)
    rest, mapper = resolution.rest, None
    if site.map_requests and not site.knows_proxy:
        # Only the sites this client may open are mapped: the others' addresses are
        # not the client's to learn or to make a backend fetch.
        def may_open(name: str) -> bool:
            other = context.table.get(name)
            return other is not None and context.may_open(other, ip, identity).allowed

        mapper = BodyMapper(context.reverse, proxy_hosts(request, context), site.charset, may_open)
        rest = mapper.query(rest)
    # The rules see the target as the client sent it and as the backend will get it.
    decision = context.decide(site, ip, identity, rest)
    if decision.allowed and rest != resolution.rest:
        decision = context.decide(site, ip, identity, resolution.rest)
    if not decision.allowed:
        return refusal(request, decision, site.name, identity)
    if resolution.via_prefix and not uri.startswith(f"{SITE_PREFIX}{site.name}/"):
        # "/.site.name" or "/.site.name?x": the page's relative links need the slash.
        return redirect(f"{SITE_PREFIX}{site.name}{resolution.rest}")
    navigation = is_navigation(headers)
    if resolution.via == "referer" and navigation and request.method in ("GET", "HEAD"):
        # A page of this site navigated to one of its root-relative URLs in a way no
        # rewriting could see (location.href = "/x" in a script): take the browser to
        # the prefixed URL, so that the address bar, reloads and bookmarks keep the site.
        return redirect(f"{SITE_PREFIX}{site.name}{uri}")
    secure = client_is_secure(request, context)
    return Target(site, rest, resolution.via, cookie_site, navigation, secure, mapper, identity)


def site_list(request: HTTPServerRequest, context: ProxyContext, current: str | None) -> Answer:
    """The site list, with only the sites this client may open; with signing in on and
    nobody signed in, the login page instead."""
    ip, identity = context.client_ip(request), context.identity(request)
    decisions = {site.name: context.may_open(site, ip, identity) for site in context.table}
    if any(d.login for d in decisions.values()):
        return redirect(LOGIN_PATH)
    visible = frozenset(name for name, d in decisions.items() if d.allowed)
    user = identity.name if identity is not None else None
    return Answer(
        200,
        "OK",
        sites=SiteList(current, visible, user),
        headers=(("Cache-Control", "no-store"),),
    )


def refusal(
    request: HTTPServerRequest, decision: Decision, site: str, identity: Identity | None
) -> Answer:
    """The answer to a request the access rules do not let through (handlers/door/access.py):
    403, or when nobody is signed in the login page for a navigation and 401 for the
    rest. It says nothing of the path, and nothing was asked of the backend; the audit
    trail gets its reason."""
    user = identity.name if identity is not None else None
    reason = decision.reason
    if not decision.login:
        detail = "You may not open this through the proxy."
        return Answer(403, "Forbidden", detail, refused=reason, site=site, user=user)
    if request.method in ("GET", "HEAD") and is_navigation(request.headers):
        location = f"{LOGIN_PATH}?{urllib.parse.urlencode({'next': request.uri})}"
        return Answer(302, "Found", location=location, refused=reason, site=site, user=user)
    detail = "This proxy asks you to sign in before you open its sites."
    return Answer(401, "Sign in first", detail, refused=reason, site=site, user=user)


def client_is_secure(request: HTTPServerRequest, context: ProxyContext) -> bool:
    """https between the browser and us, or between the browser and a trusted proxy in
    front of us (X-Forwarded-Proto)."""
    if request.protocol == "https":
        return True
    if not context.is_trusted(request.remote_ip or ""):
        return False
    headers = request.headers
    forwarded = header(headers, "X-Forwarded-Proto") or header(headers, "X-Scheme")
    if not forwarded:
        return False
    return forwarded.split(",")[0].strip().lower() == "https"


def proxy_hosts(request: HTTPServerRequest, context: ProxyContext) -> list[str]:
    """The host[:port] values under which this client reaches the proxy: its Host, and
    the X-Forwarded-Host of a trusted proxy in front (nginx may pass its own Host on)."""
    hosts = [header(request.headers, "Host") or ""]
    if not context.is_trusted(request.remote_ip or ""):
        return [h for h in hosts if h]
    forwarded = header(request.headers, "X-Forwarded-Host")
    if forwarded:
        hosts.extend(h.strip() for h in forwarded.split(","))
    return [h for h in hosts if h]


def backend_headers(
    request: HTTPServerRequest, context: ProxyContext, target: Target
) -> dict[str, str]:
    """The headers to send the backend for this request (HTTP and WebSocket alike)."""
    remote_ip = request.remote_ip or ""
    return upstream_headers(
        request.headers,
        target.site,
        context.table,
        remote_ip=remote_ip,
        scheme=request.protocol,
        trusted_peer=context.is_trusted(remote_ip),
        prefix=f"{SITE_PREFIX}{target.site.name}" if target.via_prefix else None,
        identity=context.identity_fields(target.site, target.identity),
        identity_names=context.identity_names,
    )
