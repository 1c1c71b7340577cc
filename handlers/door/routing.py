"""Which site a request names: its prefix, the page that made it, or the ``.site`` cookie.

Pure functions of the request's target and headers and the site table, so that the
security-relevant decision (which backend may this request reach?) is small and
unit-tested on its own: only names in the site table ever resolve.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from filters.names import SITE_PREFIX
from filters.urls import authority_end, split_url
from handlers.config.sites import Site, SiteTable


class Resolution(NamedTuple):
    """Which site a request names, and how.

    ``site`` is None when none applies; ``name`` is what the request asked for (for the
    error page); ``rest`` is the path+query to send upstream; ``via`` says what chose
    the site: ``"prefix"`` (``/.site.<name>/``), ``"referer"`` (an unprefixed request
    made by a page under a prefix), ``"cookie"`` (the ``.site`` cookie) or ``"none"``.
    """

    site: Site | None
    name: str | None
    rest: str
    via: str

    @property
    def via_prefix(self) -> bool:
        return self.via == "prefix"


def split_prefixed(path: str) -> tuple[str, str] | None:
    """``/.site.<name>/rest`` -> (name, "/rest"); None without the prefix."""
    if not path.startswith(SITE_PREFIX):
        return None
    after = path[len(SITE_PREFIX) :]
    cut = authority_end(after)
    name, rest = after[:cut], after[cut:]
    return name, rest if rest.startswith("/") else "/" + rest


def referer_site(referer: str | None, host: str | None) -> str | None:
    """The site name in the path of a same-host ``Referer`` (``http://proxy/.site.a/p``
    -> ``"a"``); None for any other referrer. A page of site a that asks for ``/x``
    means a's ``/x``, whatever the ``.site`` cookie says now (another tab may have
    switched it)."""
    if not referer or not host:
        return None
    parts = split_url(referer)
    if parts is None or not parts.scheme or parts.authority.lower() != host.lower():
        return None
    found = split_prefixed(parts.tail)
    return found[0] if found else None


def resolve(
    uri: str, cookie_site: str | None, table: SiteTable, referer_name: str | None = None
) -> Resolution:
    """Name the backend for a request URI (as sent, starting with ``/``), given the
    site named by its same-host Referer (see ``referer_site``) and the value of its
    ``.site`` cookie. Only names in ``table`` ever resolve: the URI, the Referer and the
    cookie choose among configured sites, never an address."""
    found = split_prefixed(uri)
    if found is not None:
        name, rest = found
        return Resolution(table.get(name), name, rest, "prefix")
    site = table.get(referer_name)
    if site is not None:
        return Resolution(site, referer_name, uri, "referer")
    site = table.get(cookie_site)
    return Resolution(site, cookie_site, uri, "cookie" if site is not None else "none")


def is_navigation(headers: Mapping[str, str]) -> bool:
    """Is this request a top-level document navigation (the user opening a page), as
    opposed to a page's image, script, fetch or frame? Only those switch the ``.site``
    cookie.

    Browsers say so in ``Sec-Fetch-Mode``/``Sec-Fetch-Dest``, but only to origins they
    deem trustworthy (https, or localhost). Without those fields: a request that asks
    for HTML first (as every browser navigation does), or one that names no referring
    page (a typed URL, or a tool such as curl) counts as a navigation; a subresource of
    a page names the page.
    """
    # ("in" first: a missing field costs HTTPHeaders.get a KeyError raised and caught.)
    if "Sec-Fetch-Mode" in headers:
        if headers["Sec-Fetch-Mode"] != "navigate":
            return False
        return "Sec-Fetch-Dest" not in headers or headers["Sec-Fetch-Dest"] == "document"
    accept = headers["Accept"] if "Accept" in headers else ""
    return "text/html" in accept or "application/xhtml+xml" in accept or "Referer" not in headers


__all__ = ["Resolution", "is_navigation", "referer_site", "resolve", "split_prefixed"]
