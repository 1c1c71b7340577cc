"""The validated sites, as the handlers use them: ``Site`` and the ``SiteTable`` that finds
one by name or by origin (scheme, host, port). Pure (no sockets); built by
handlers/config/sites.py. Which site a request names is handlers/door/routing.py.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from filters.rules import SubsFilterRules
from filters.urls import DEFAULT_PORTS, split_hostport, split_url


@dataclass(frozen=True)
class Site:
    """A validated backend: its origin, taken apart, and its BackendSite keywords parsed
    (handlers/config/backend.py says what each one means)."""

    name: str
    scheme: str
    host: str
    port: int
    base_url: str  # scheme://host[:port], no trailing slash
    host_header: str  # the Host header the backend expects: host[:port]
    filter_rules: tuple[SubsFilterRules, ...]
    timeout: float
    connect_timeout: float
    validate_cert: bool
    ca_certs: str | None
    auto_rewrite: bool
    prefix_links: bool
    charset: str | None
    shim: bool
    description: str
    knows_proxy: bool
    map_requests: bool
    allow: tuple[tuple[str | None, re.Pattern[str]], ...]  # (group or None: all, regex)
    deny: tuple[tuple[str | None, re.Pattern[str]], ...]
    client_allow: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    users: frozenset[str] | None
    groups: frozenset[str] | None
    pass_identity: bool


class SiteTable:
    """The validated sites, by name and by origin (scheme, host, port)."""

    def __init__(self, sites: Sequence[Site]) -> None:
        self.by_name: dict[str, Site] = {s.name: s for s in sites}
        self.hosts = frozenset(s.host for s in sites)
        self.by_origin: dict[tuple[str, str, int], Site] = {}
        for site in sites:
            # Two names may share an origin (aliases); the first declared wins when a
            # URL is mapped back to a site, which keeps rewriting deterministic.
            self.by_origin.setdefault((site.scheme, site.host, site.port), site)
        for site in sites:
            # Pages of an http backend that write https:// links to it (or the other
            # way round) mean the same backend: its netloc as spelled, in the other
            # scheme, unless another site is configured there.
            self.by_origin.setdefault(twin_origin(site), site)

    def origins(self) -> list[tuple[str, str, int, bool, Site]]:
        """(scheme, host, port, is the scheme's default port, site) for every origin
        under which a page may name a backend: each site's own first, then the twins.
        The one list that Location rewriting, body rewriting and the shim all use."""
        return [
            (scheme, host, port, port == DEFAULT_PORTS[scheme], site)
            for (scheme, host, port), site in self.by_origin.items()
        ]

    def __len__(self) -> int:
        return len(self.by_name)

    def __iter__(self) -> Iterator[Site]:
        return iter(self.by_name.values())

    def get(self, name: str | None) -> Site | None:
        return self.by_name.get(name) if name else None

    def site_for_url(self, url: str) -> tuple[Site, str] | None:
        """If ``url`` is absolute (or scheme-relative) and points at a configured backend,
        return that site and the URL's path+query+fragment (starting with ``/``)."""
        parts = split_url(url)
        if parts is None or "@" in parts.authority or not parts.authority:
            return None
        host, port = split_hostport(parts.authority)
        if host is None:
            return None
        schemes = (parts.scheme,) if parts.scheme else ("http", "https")
        for scheme in schemes:
            site = self.by_origin.get((scheme, host, port or DEFAULT_PORTS[scheme]))
            if site is not None:
                tail = parts.tail
                if not tail.startswith("/"):
                    tail = "/" + tail
                return site, tail
        return None


def twin_origin(site: Site) -> tuple[str, str, int]:
    """The site's netloc, as spelled in its URL, in the other scheme:
    ``http://h`` -> ("https", h, 443); ``http://h:8080`` -> ("https", h, 8080)."""
    other = "https" if site.scheme == "http" else "http"
    default = site.port == DEFAULT_PORTS[site.scheme]
    return other, site.host, DEFAULT_PORTS[other] if default else site.port


__all__ = ["Site", "SiteTable", "twin_origin"]
