"""Pure header rewriting, both ways: what the backend is sent and what the client gets."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from tornado.httputil import HTTPHeaders

from filters.codings import accept_encoding
from filters.names import SITE_PREFIX
from handlers.config.sites import Site, SiteTable
from handlers.mapping.cookies import cookies_for_site, scope_set_cookie
from handlers.mapping.urlmap import if_to_backend, origin_to_backend, to_backend, to_proxy
from handlers.upstream.exchange import Fields

if TYPE_CHECKING:
    from filters.links import BackendLinks

# Hop-by-hop fields (RFC 9110 section 7.6.1) describe one connection, not the message:
# a proxy must not forward them. Proxy-Authenticate/-Authorization are credentials for
# *this* proxy (RFC 9110 section 11.7), and Transfer-Encoding/Content-Length are
# recomputed by whoever frames the next hop's message. Expect is answered by us.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
# Host and Cookie are rebuilt, Content-Length is set by the client library, Expect is
# answered here, and X-Forwarded-Prefix is ours to set.
_NOT_FORWARDED_UPSTREAM = HOP_BY_HOP | {
    "host",
    "content-length",
    "expect",
    "cookie",
    "x-forwarded-prefix",
}
# From a peer we do not trust, forwarding headers are forgeries waiting to happen.
_NOT_FORWARDED_UNTRUSTED = _NOT_FORWARDED_UPSTREAM | {
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-real-ip",
    "x-scheme",
}
_NOT_FORWARDED_DOWNSTREAM = HOP_BY_HOP
# The response fields downstream_headers changes; all others pass as they are.
_MAPPED_DOWNSTREAM = frozenset(
    {
        "set-cookie",
        "location",
        "content-location",
        "refresh",
        "link",
        "x-pingback",
        "access-control-allow-origin",
    }
)


def _connection_tokens(values: Iterable[str]) -> frozenset[str]:
    """Field names that Connection header values declare hop-by-hop for this message."""
    return frozenset(t.strip().lower() for v in values for t in v.split(",") if t.strip())


@functools.lru_cache(maxsize=64)
def _downstream_drop(connection: tuple[str, ...]) -> frozenset[str]:
    """The response fields not passed on, given the values of its Connection fields
    (the same few on every response of a backend: worked out once)."""
    return _NOT_FORWARDED_DOWNSTREAM | _connection_tokens(connection)


def ends_connection(version: str, headers: HTTPHeaders) -> bool:
    """Whether this request is the last one its connection carries (RFC 9112 section
    9.3): its Connection field lists ``close`` among its tokens (Tornado looks for the
    whole value ``close`` only, so "Upgrade, close" kept the connection open), or it is
    HTTP/1.0 without keep-alive."""
    tokens = {t.strip().lower() for v in headers.get_list("Connection") for t in v.split(",")}
    if version == "HTTP/1.1":
        return "close" in tokens
    return "keep-alive" not in tokens


def header(headers: Mapping[str, str], name: str) -> str | None:
    """``headers.get(name)``, without the KeyError a missing field costs in HTTPHeaders
    (whose ``get`` is Mapping's: a lookup that raises and catches)."""
    return headers[name] if name in headers else None


def upstream_headers(
    incoming: HTTPHeaders,
    site: Site,
    table: SiteTable,
    *,
    remote_ip: str,
    scheme: str,
    trusted_peer: bool,
    prefix: str | None,
    identity: Sequence[tuple[str, str]] = (),
    identity_names: frozenset[str] = frozenset(),
) -> dict[str, str]:
    """Headers for the backend request, keyed by Tornado's normalized field names.

    ``identity_names`` (lower case) are the headers that tell a backend who is signed in:
    whatever the client sends under them is always dropped, and ``identity`` (the site
    passes it: BackendSite pass_identity) is what the proxy says instead.

    ``trusted_peer`` says whether the connection comes from a proxy we trust (nginx in
    front): only then are its X-Forwarded-* and X-Real-IP values kept and appended to;
    from anyone else they are replaced, so a client cannot forge its address.

    A plain dict, not HTTPHeaders: the upstream client turns it into libcurl's header lines
    directly (handlers/upstream/curlopts.py), and validating every field twice would be a
    measurable share of a small request's cost. Repeated fields are joined with ", " (RFC
    9110 section 5.3).
    """
    drop = _NOT_FORWARDED_UPSTREAM if trusted_peer else _NOT_FORWARDED_UNTRUSTED
    if identity_names:
        drop = drop | identity_names
    if "Connection" in incoming:
        drop = drop | _connection_tokens(incoming.get_list("Connection"))
    out: dict[str, str] = {}
    for name, value in incoming.get_all():
        lower = name.lower()
        if lower in drop or ("_" in lower and lower.replace("_", "-") in drop):
            # X_Forwarded_User is X-Forwarded-User to a CGI or WSGI server
            # (HTTP_X_FORWARDED_USER): a spelling of a dropped field is dropped too.
            continue
        out[name] = f"{out[name]}, {value}" if name in out else value
    out["Host"] = site.host_header
    if "Accept-Encoding" in out:
        # Only codings the proxy can decode, so that any text response can be rewritten.
        coding = accept_encoding(out.pop("Accept-Encoding"))
        if coding:
            out["Accept-Encoding"] = coding
    if "Cookie" in incoming:
        # Only this site's cookies (handlers/mapping/cookies.py), never the proxy's own.
        cookies = cookies_for_site("; ".join(incoming.get_list("Cookie")), site.name)
        if cookies:
            out["Cookie"] = cookies
    host = header(incoming, "Host")
    if not site.knows_proxy:
        map_request_urls(out, table, site, host)
    if trusted_peer:
        prior = out.get("X-Forwarded-For")
        out["X-Forwarded-For"] = f"{prior}, {remote_ip}" if prior else remote_ip
        # The original's nginx set X-Scheme; the backend is told it as X-Forwarded-Proto.
        out.setdefault("X-Forwarded-Proto", out.get("X-Scheme", scheme))
        if host is not None:
            out.setdefault("X-Forwarded-Host", host)
        out.setdefault("X-Real-Ip", remote_ip)
    else:
        out["X-Forwarded-For"] = remote_ip
        out["X-Forwarded-Proto"] = scheme
        if host is not None:
            out["X-Forwarded-Host"] = host
        out["X-Real-Ip"] = remote_ip
    if prefix:
        out["X-Forwarded-Prefix"] = prefix
    for name, value in identity:
        out[name] = value
    return out


_REFRESH_URL = re.compile(r"(?i)(\burl\s*=\s*['\"]?)([^'\";]+)")


def proxied_refresh(
    value: str, table: SiteTable, current: Site, links: BackendLinks | None = None
) -> str:
    """Refresh: ``5; url=http://backend/x`` -> ``5; url=/.site.name/x``, mapped as a
    Location is."""
    return _REFRESH_URL.sub(
        lambda m: m.group(1) + proxied_location(m.group(2).strip(), table, current, links),
        value,
        count=1,
    )


def map_request_urls(out: dict[str, str], table: SiteTable, site: Site, host: str | None) -> None:
    """The proxy's URLs in request headers, as the backend would have been sent them
    directly (handlers/mapping/urlmap.py): where a WebDAV COPY/MOVE goes, the resources an If
    header conditions on, and the page the request came from. The backend's own
    checks (CSRF origin checks, Referer checks, lock-token checks) then see what they
    would see without the proxy."""
    for name in ("Destination", "Referer"):
        if name in out:
            out[name] = to_backend(out[name], table, site, host)
    if "If" in out:
        out["If"] = if_to_backend(out["If"], table, site, host)
    if "Origin" in out:
        out["Origin"] = origin_to_backend(out["Origin"], site, host)


def field(fields: Fields, name: str) -> str | None:
    """The value of field ``name`` (lower-case) in a list of (name, value) pairs; the
    values of a repeated field joined with ", "."""
    return fields_named(fields, name)[0]


def fields_named(fields: Fields, *names: str) -> list[str | None]:
    """``field`` for each of ``names`` (lower-case), in one pass over ``fields``."""
    found: dict[str, list[str]] = {}
    for k, v in fields:
        lname = k.lower()
        if lname in names:
            found.setdefault(lname, []).append(v)
    return [", ".join(found[name]) if name in found else None for name in names]


_LINK_TARGET = re.compile(r"<([^<>]*)>")


def proxied_link(value: str, table: SiteTable, current: Site | None) -> str:
    """Link (RFC 8288): each ``<target>`` as the client must see it; the parameters
    (``rel="https://api.w.org/"`` holds a URL that names a relation, not a resource)
    are left alone."""
    return _LINK_TARGET.sub(lambda m: f"<{to_proxy(m.group(1), table, current)}>", value)


def proxied_location(
    value: str, table: SiteTable, current: Site, links: BackendLinks | None
) -> str:
    """Location and Content-Location: the URL, and, when it leads to one of the sites,
    backend URLs inside its query too (``/login?redirect_to=http%3A%2F%2Fbackend%2F``),
    spelled as the site's pages spell them."""
    url = to_proxy(value, table, current)
    path, sep, query = url.partition("?")
    if sep and links is not None and url.startswith(SITE_PREFIX):
        url = path + sep + links.rewrite(query)
    return url


def downstream_headers(
    fields: Fields,
    table: SiteTable,
    current: Site,
    backend_path: str,
    secure_client: bool,
    links: BackendLinks | None = None,
    client_origin: str | None = None,
) -> Iterable[tuple[str, str]]:
    """The backend's response header fields as the client should see them.
    ``backend_path`` is the path the backend was asked for (the default path of its
    cookies); ``secure_client`` whether the browser reached the proxy over https;
    ``links`` the site's backend links (for URLs inside a redirect's query);
    ``client_origin`` the request's Origin when it is the proxy's own (the backend was
    sent its own origin instead, and answers CORS with it)."""
    drop = _NOT_FORWARDED_DOWNSTREAM
    connection = tuple(v for k, v in fields if k.lower() == "connection")
    if connection:
        drop = _downstream_drop(connection)
    for name, value in fields:
        lname = name.lower()
        if lname in drop:
            continue
        if lname not in _MAPPED_DOWNSTREAM:
            yield name, value
            continue
        if lname == "set-cookie":
            for scoped in scope_set_cookie(
                value, current.name, backend_path, secure_client, table.hosts
            ):
                yield name, scoped
            continue
        if lname in ("location", "content-location"):
            value = proxied_location(value, table, current, links)
        elif lname == "refresh":
            value = proxied_refresh(value, table, current, links)
        elif lname == "link":
            value = proxied_link(value, table, current)
        elif lname == "x-pingback":
            value = to_proxy(value, table, current)
        elif lname == "access-control-allow-origin" and client_origin is not None:
            # The backend allows the origin it was told the page came from (its own, see
            # origin_to_backend): the browser must hear the origin it really sent.
            found = table.site_for_url(value.strip())
            if found is not None and found[0] is current and found[1] == "/":
                value = client_origin
        yield name, value
