"""The site table: declared backends, their validation, and the origins they answer to.

Everything here is pure (no sockets). Which site a request names is handlers/door/routing.py.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from filters.charsets import codec_name
from filters.names import SITE_NAME
from filters.rules import RuleError, SubsFilterRules
from filters.urls import DEFAULT_PORTS, split_hostport, split_url
from handlers.door.access import networks

log = logging.getLogger(__name__)


class ConfigError(ValueError):
    """The configuration cannot be served; the message names the site and the bad value."""


class SettingError(ConfigError):
    """A bad value of one setting: ``setting`` (and ``site``, for a BackendSite keyword)
    say where to look for it in the user's file (handlers/config/options.py: locate)."""

    def __init__(self, message: str, setting: str, site: str | None = None) -> None:
        super().__init__(message)
        self.setting = setting
        self.site = site


@dataclass(frozen=True)
class BackendSite:
    """One backend, in the original's shape: ``BackendSite(name, url, netloc, filter_rules)``.

    Keyword options (all optional):
      timeout          seconds without any data from the backend before the request fails (504)
      connect_timeout  seconds to establish the connection (502 when it fails)
      validate_cert    verify an https backend's certificate (default True)
      ca_certs         a PEM file of CA certificates to verify it with (an intranet CA)
      auto_rewrite     rewrite absolute URLs of every configured backend in this site's
                       text bodies to /.site.<name> (default True)
      prefix_links     give root-relative links in HTML and CSS this site's prefix
                       (default True)
      charset          the charset of pages that declare none (old intranet sites often
                       serve undeclared GBK); default UTF-8
      shim             load the in-page URL shim in this site's HTML pages, so that URLs
                       its scripts build reach it too (default True)
      allow, deny      lists of regexes searched in the backend path with its query: a
                       request matching a deny, or (with an allow list) matching no
                       allow, is refused with 403 and never sent
      client_allow     networks ("10.0.0.0/8", "2001:db8::/32") whose clients may open
                       this site (default: everyone the proxy lets in)
      users            with config.users set: the users who may open this site
                       (default: every user)
      knows_proxy      the backend takes the proxy's address for its own (it trusts
                       X-Forwarded-Host, like Django's USE_X_FORWARDED_HOST): the
                       proxy's URLs in request headers (Origin, Referer, Destination,
                       If) are then left as they are, not mapped to the backend's
      map_requests     map the proxy's URLs in what clients send (form fields, JSON,
                       XML and text bodies, query strings) back to the backends' own, so
                       that what users save is stored as if saved directly (default True)
      description      a line shown for the site in the proxy's site list
    """

    name: str
    url: str
    netloc: str | None = None
    filter_rules: Sequence[SubsFilterRules] = ()
    timeout: float = 60.0
    connect_timeout: float = 10.0
    validate_cert: bool = True
    ca_certs: str | None = None
    auto_rewrite: bool = True
    prefix_links: bool = True
    charset: str | None = None
    shim: bool = True
    description: str = ""
    knows_proxy: bool = False
    map_requests: bool = True
    allow: Sequence[str] = ()
    deny: Sequence[str] = ()
    client_allow: Sequence[str] = ()
    users: Sequence[str] | None = None


@dataclass(frozen=True)
class Site:
    """A validated backend, as the handlers use it."""

    name: str
    scheme: str
    host: str
    port: int
    base_url: str  # scheme://host[:port], no trailing slash
    filter_rules: tuple[SubsFilterRules, ...]
    timeout: float
    connect_timeout: float
    validate_cert: bool
    ca_certs: str | None
    host_header: str  # the Host header the backend expects: host[:port]
    auto_rewrite: bool
    prefix_links: bool
    charset: str | None
    shim: bool
    description: str
    knows_proxy: bool
    map_requests: bool = True
    allow: tuple[re.Pattern[str], ...] = ()
    deny: tuple[re.Pattern[str], ...] = ()
    client_allow: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    users: frozenset[str] | None = None


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
        if parts is None:
            return None
        authority, tail = parts.authority, parts.tail
        if "@" in authority or not authority:
            return None
        host, port = split_hostport(authority)
        if host is None:
            return None
        for scheme in (parts.scheme,) if parts.scheme else ("http", "https"):
            site = self.by_origin.get((scheme, host, port or DEFAULT_PORTS[scheme]))
            if site is not None:
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


def build_site_table(forward_list: object) -> SiteTable:
    """Validate the user's ``forward_list`` and build the table, or raise ConfigError."""
    if not isinstance(forward_list, Mapping):
        raise ConfigError(
            f"forward_list must be a dict of name -> BackendSite, not {type(forward_list).__name__}"
        )
    if not forward_list:
        raise ConfigError("forward_list is empty: declare at least one BackendSite")
    sites = []
    for key, backend in forward_list.items():
        sites.append(_validate_site(key, backend))
    return SiteTable(sites)


def _validate_site(key: object, backend: object) -> Site:
    if not isinstance(key, str) or not SITE_NAME.fullmatch(key):
        raise ConfigError(
            f"site {key!r}: a site name must be 1-64 letters, digits, '.', '_' or '-',"
            " starting with a letter or digit (it appears in /.site.<name>/ URLs)"
        )
    where = f"site {key!r}"
    if not isinstance(backend, BackendSite):
        raise ConfigError(f"{where}: expected BackendSite(...), got {backend!r}")
    if backend.name != key:
        log.warning(
            "%s: BackendSite name %r differs from its forward_list key; the key is the name"
            " used in URLs",
            where,
            backend.name,
        )
    if not isinstance(backend.url, str):
        raise ConfigError(f"{where}: url must be a string, not {backend.url!r}")
    parsed = urllib.parse.urlsplit(backend.url)
    scheme = parsed.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise ConfigError(f"{where}: url {backend.url!r} must start with http:// or https://")
    if not parsed.hostname:
        raise ConfigError(f"{where}: url {backend.url!r} has no host")
    if parsed.username or parsed.password:
        raise ConfigError(f"{where}: url {backend.url!r} must not contain user:password@")
    if parsed.path not in ("", "/") or parsed.query or parsed.fragment:
        raise ConfigError(
            f"{where}: url {backend.url!r} must be just scheme://host[:port]; the proxy maps"
            " /.site.<name>/<path> to <url>/<path>"
        )
    try:
        port = parsed.port or DEFAULT_PORTS[scheme]
    except ValueError:
        raise ConfigError(f"{where}: url {backend.url!r} has an invalid port") from None
    host = parsed.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    if backend.netloc is not None:
        if not isinstance(backend.netloc, str):
            raise ConfigError(f"{where}: netloc must be a string, not {backend.netloc!r}")
        n_host, n_port = split_hostport(backend.netloc.strip())
        if n_host != host or (n_port or DEFAULT_PORTS[scheme]) != port:
            raise ConfigError(
                f"{where}: netloc {backend.netloc!r} does not match url {backend.url!r}"
                f" (expected {parsed.netloc!r})"
            )
    rules = backend.filter_rules
    if isinstance(rules, SubsFilterRules) or not isinstance(rules, Sequence):
        raise ConfigError(f"{where}: filter_rules must be a list of SubsFilterRules")
    for rule in rules:
        if not isinstance(rule, SubsFilterRules):
            raise ConfigError(f"{where}: filter_rules holds {rule!r}, not a SubsFilterRules")
    for attr in ("timeout", "connect_timeout"):
        value = getattr(backend, attr)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 86400:
            raise SettingError(
                f"{where}: {attr}={value!r}: expected a number of seconds above 0, at most 86400",
                attr,
                key,
            )
    for attr in (
        "validate_cert",
        "auto_rewrite",
        "prefix_links",
        "shim",
        "knows_proxy",
        "map_requests",
    ):
        value = getattr(backend, attr)
        if not isinstance(value, bool):
            raise SettingError(f"{where}: {attr}={value!r}: expected True or False", attr, key)
    if not isinstance(backend.description, str):
        raise SettingError(
            f"{where}: description={backend.description!r}: expected a string", "description", key
        )
    if backend.charset is not None and (
        not isinstance(backend.charset, str) or codec_name(backend.charset) is None
    ):
        raise SettingError(
            f"{where}: charset={backend.charset!r}: expected a charset name such as 'GBK'",
            "charset",
            key,
        )
    allow, deny = (
        _patterns(where, attr, getattr(backend, attr), key) for attr in ("allow", "deny")
    )
    client_allow = _site_networks(where, backend.client_allow, key)
    users = backend.users
    if users is not None and (isinstance(users, str) or not all(isinstance(u, str) for u in users)):
        raise SettingError(f"{where}: users={users!r}: expected a list of user names", "users", key)
    if backend.ca_certs is not None:
        if scheme != "https":
            raise ConfigError(f"{where}: ca_certs is set but url {backend.url!r} is not https")
        if not os.path.isfile(backend.ca_certs):
            raise ConfigError(f"{where}: ca_certs file {backend.ca_certs!r} does not exist")
    if scheme == "https" and not backend.validate_cert:
        log.warning("%s: validate_cert=False: the backend's certificate is not verified", where)
    default = port == DEFAULT_PORTS[scheme]
    host_header = host if default else f"{host}:{port}"
    return Site(
        name=key,
        scheme=scheme,
        host=host,
        port=port,
        base_url=f"{scheme}://{host_header}",
        filter_rules=tuple(rules),
        timeout=float(backend.timeout),
        connect_timeout=float(backend.connect_timeout),
        validate_cert=backend.validate_cert,
        ca_certs=backend.ca_certs,
        host_header=host_header,
        auto_rewrite=backend.auto_rewrite,
        prefix_links=backend.prefix_links,
        charset=backend.charset,
        shim=backend.shim,
        description=backend.description,
        knows_proxy=backend.knows_proxy,
        map_requests=backend.map_requests,
        allow=allow,
        deny=deny,
        client_allow=client_allow,
        users=frozenset(users) if users is not None else None,
    )


def _patterns(where: str, attr: str, value: object, key: str) -> tuple[re.Pattern[str], ...]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise SettingError(
            f"{where}: {attr}={value!r}: expected a list of regular expressions", attr, key
        )
    out = []
    for source in value:
        try:
            out.append(re.compile(source))
        except (re.error, TypeError) as exc:
            raise SettingError(
                f"{where}: {attr}: {source!r} is not a regular expression ({exc})", attr, key
            ) from None
    return tuple(out)


def _site_networks(
    where: str, value: object, key: str
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    try:
        return networks(value)
    except ValueError as exc:
        raise SettingError(
            f"{where}: client_allow={value!r}: expected {exc}", "client_allow", key
        ) from None


__all__ = [
    "BackendSite",
    "ConfigError",
    "RuleError",
    "SettingError",
    "Site",
    "SiteTable",
    "build_site_table",
    "twin_origin",
]
