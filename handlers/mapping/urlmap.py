"""The one mapping between a backend's URLs and the proxy's, both ways.

``to_proxy``: a URL a backend sent (``Location``, ``Content-Location``, ``Refresh``, the
``href`` of a WebDAV answer) as the client must see it: any configured backend's absolute
URL, in either scheme, becomes ``/.site.<that site>/...``, and a root-relative one gets
the current site's prefix. (Bodies are rewritten to the same result by the regexes of
filters/links.py, which are built for speed over whole pages.)

``to_backend``: a URL a client sent (``Destination``, the resource tags of ``If``,
``Referer``, ``Origin``) as the backend would have been sent it by a client talking to it
directly: the exact inverse. For every URL ``to_proxy`` hands out, ``to_backend`` gives
back the backend URL it came from (tests/unit/test_urlmap.py checks it as a property).

Everything here is pure.
"""

from __future__ import annotations

import re

from filters.names import PROXY_PAGES, SITE_PREFIX
from filters.urls import split_url
from handlers.config.sites import Site, SiteTable
from handlers.door.routing import split_prefixed


def to_proxy(url: str, table: SiteTable, current: Site | None) -> str:
    """A backend's URL as the client must see it.

    Absolute and scheme-relative URLs of any configured backend become
    ``/.site.<name>/...``; a root-relative URL of the current site gets its prefix, so
    it keeps meaning that site even without the cookie; anything else (external URLs,
    relative paths, already-prefixed paths) is kept as it is."""
    if url.startswith("/") and not url.startswith("//"):
        if current is None or url.startswith(SITE_PREFIX):
            return url
        return f"{SITE_PREFIX}{current.name}{url}"
    found = table.site_for_url(url)
    if found is None:
        return url
    site, tail = found
    if tail.startswith(SITE_PREFIX):
        return tail
    return f"{SITE_PREFIX}{site.name}{tail}"


def to_backend(url: str, table: SiteTable, current: Site | None, proxy_host: str | None) -> str:
    """A URL the client sent, as the backend would have been sent it directly.

    ``/.site.<name>/x`` and ``<scheme>://<proxy_host>/.site.<name>/x`` become
    ``<name's base URL>/x`` (another configured site's too: the backend then decides,
    e.g. 502 for a COPY to another server, RFC 4918 section 9.8.4); an unprefixed URL on
    the proxy's host (a page reached through the cookie) becomes the current site's. An
    unprefixed root-relative path is already the backend's own, and anything else (other
    hosts, the proxy's own pages, URNs) is left alone."""
    if url.startswith("/") and not url.startswith("//"):
        return _prefixed_to_backend(url, table) or url
    parts = split_url(url)
    if parts is None or not parts.scheme or not proxy_host:
        return url
    if parts.authority.lower() != proxy_host.lower():
        return url
    path = parts.tail
    if not path.startswith("/"):
        path = "/" + path
    if path.startswith(SITE_PREFIX):
        return _prefixed_to_backend(path, table) or url
    if current is None or path == PROXY_PAGES[:-1] or path.startswith(PROXY_PAGES):
        return url
    return current.base_url + path


def _prefixed_to_backend(path: str, table: SiteTable) -> str | None:
    """``/.site.<name>/x`` -> ``<name's base URL>/x``; None for any other path, or a
    name that is not configured."""
    found = split_prefixed(path)
    site = table.get(found[0]) if found is not None else None
    return site.base_url + found[1] if site is not None and found is not None else None


def is_proxy_origin(origin: str | None, proxy_host: str | None) -> bool:
    """Whether ``origin`` (an Origin header's value) is the proxy's own."""
    if not origin or not proxy_host:
        return False
    parts = split_url(origin)
    return (
        parts is not None
        and bool(parts.scheme)
        and not parts.tail
        and parts.authority.lower() == proxy_host.lower()
    )


def origin_to_backend(origin: str, current: Site, proxy_host: str | None) -> str:
    """``Origin``: the proxy's own origin (the page is one of the proxy's) becomes the
    current backend's, as if the page had been loaded from it; a foreign origin is left
    for the backend to judge (so that its cross-site checks keep working)."""
    return current.base_url if is_proxy_origin(origin, proxy_host) else origin


# The Resource-Tags and state tokens of an If header (RFC 4918 section 10.4) are all
# written as <...>; only those that are URLs of the proxy change.
_CODED_URL = re.compile(r"<([^<>]*)>")


def if_to_backend(value: str, table: SiteTable, current: Site, proxy_host: str | None) -> str:
    return _CODED_URL.sub(
        lambda m: f"<{to_backend(m.group(1), table, current, proxy_host)}>", value
    )


__all__ = ["if_to_backend", "is_proxy_origin", "origin_to_backend", "to_backend", "to_proxy"]
