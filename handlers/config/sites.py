"""The user's ``forward_list`` checked whole and turned into the ``SiteTable``.

A declaration's keywords are checked by their spec (handlers/config/backend.py), like
every Config setting; what is checked here is the rest: the name, the URL and netloc,
the rules, and what the keywords ask of each other. Pure (no sockets).
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

from filters.names import SITE_NAME
from filters.rules import SubsFilterRules
from filters.urls import DEFAULT_PORTS, split_hostport
from handlers.config.backend import BackendSite
from handlers.config.errors import ConfigError
from handlers.config.spec import specs
from handlers.config.table import Site, SiteTable

log = logging.getLogger(__name__)


def build_site_table(forward_list: object) -> SiteTable:
    """Validate the user's ``forward_list`` and build the table, or raise ConfigError."""
    if not isinstance(forward_list, Mapping):
        raise ConfigError(
            "forward_list must be a dict of name -> BackendSite,"
            f" not {type(forward_list).__name__}",
            "forward_list",
        )
    if not forward_list:
        raise ConfigError("forward_list is empty: declare at least one BackendSite", "forward_list")
    sites = []
    for key, backend in forward_list.items():
        try:
            sites.append(_validate_site(key, backend))
        except ConfigError as exc:
            if exc.site is None and isinstance(key, str):
                exc.site = key  # the loader then finds the line of its declaration
            raise
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
    scheme, host, port = _origin(key, backend)
    rules = backend.filter_rules
    if isinstance(rules, SubsFilterRules) or not isinstance(rules, Sequence):
        raise ConfigError(f"{where}: filter_rules must be a list of SubsFilterRules")
    for rule in rules:
        if not isinstance(rule, SubsFilterRules):
            raise ConfigError(f"{where}: filter_rules holds {rule!r}, not a SubsFilterRules")
    keywords: dict[str, Any] = {}
    for spec in specs(BackendSite):
        value = getattr(backend, spec.field)
        try:
            keywords[spec.field] = spec.check(value)
        except ValueError as exc:
            raise ConfigError(f"{where}: {spec.name}={value!r}: {exc}", spec.name, key) from None
    if backend.ca_certs is not None and scheme != "https":
        raise ConfigError(
            f"{where}: ca_certs is set but url {backend.url!r} is not https", "ca_certs", key
        )
    if scheme == "https" and not backend.validate_cert:
        log.warning("%s: validate_cert=False: the backend's certificate is not verified", where)
    host_header = host if port == DEFAULT_PORTS[scheme] else f"{host}:{port}"
    return Site(
        name=key,
        scheme=scheme,
        host=host,
        port=port,
        base_url=f"{scheme}://{host_header}",
        host_header=host_header,
        filter_rules=tuple(rules),
        **keywords,
    )


def _origin(key: str, backend: BackendSite) -> tuple[str, str, int]:
    """The backend's (scheme, host, port) from its url, which its netloc must agree with."""
    where = f"site {key!r}"
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
    return scheme, host, port


# The names most modules import from here: the declaration, the validated site and
# table, and the error, beside the function that connects them.
__all__ = ["BackendSite", "ConfigError", "Site", "SiteTable", "build_site_table"]
