"""What every handler is given: the site table, the options and the one HTTP client."""

from __future__ import annotations

import functools
import ipaddress
import logging
import ssl
from dataclasses import dataclass, field

from filters.links import Origin
from filters.pipeline import SitePlan, build_plans
from handlers.shim import Shim
from handlers.sites import Resolution, SiteTable, resolve
from handlers.upstream import RelayClient

log = logging.getLogger(__name__)


def plans_for(table: SiteTable) -> dict[str, SitePlan]:
    """Each site's rewriting plan, knowing every origin of the table (each backend's
    netloc in both schemes)."""
    origins = [
        Origin(site.name, scheme, host, port, default)
        for scheme, host, port, default, site in table.origins()
    ]
    return build_plans(table, origins)


@dataclass(frozen=True)
class Options:
    """The proxy's behaviour, read once from the user's ``config`` object."""

    clear_old_cookies: bool = False
    max_clients: int = 100
    rewrite_max_bytes: int = 8 * 1024 * 1024
    trusted_proxies: tuple[str, ...] = ("127.0.0.1", "::1")
    max_body_size: int = 10 * 1024**3
    # A response whose Content-Length is at most this is sent in one write with its
    # headers; longer or open-ended ones are forwarded as they arrive.
    small_body_bytes: int = 64 * 1024
    # Limits of a request's head (handlers/frontdoor.py), and how long a client may take
    # to send it.
    max_uri_bytes: int = 8 * 1024
    max_header_bytes: int = 32 * 1024
    max_header_count: int = 100
    client_header_timeout: float = 60.0

    @classmethod
    def from_config(cls, config: object) -> Options:
        def get(name: str, default: object) -> object:
            return getattr(config, name, default)

        return cls(
            clear_old_cookies=bool(get("is_to_clear_old_cookies", cls.clear_old_cookies)),
            max_clients=int(get("async_http_client_max_clients", cls.max_clients)),  # type: ignore[call-overload]
            rewrite_max_bytes=int(get("rewrite_max_bytes", cls.rewrite_max_bytes)),  # type: ignore[call-overload]
            trusted_proxies=tuple(get("trusted_proxies", cls.trusted_proxies)),  # type: ignore[call-overload]
            max_body_size=int(get("max_body_size", cls.max_body_size)),  # type: ignore[call-overload]
            max_uri_bytes=int(get("max_uri_bytes", cls.max_uri_bytes)),  # type: ignore[call-overload]
            max_header_bytes=int(get("max_header_bytes", cls.max_header_bytes)),  # type: ignore[call-overload]
            max_header_count=int(get("max_header_count", cls.max_header_count)),  # type: ignore[call-overload]
            client_header_timeout=float(get("client_header_timeout", cls.client_header_timeout)),  # type: ignore[arg-type]
        )


@dataclass
class ProxyContext:
    table: SiteTable
    options: Options
    client: RelayClient
    default_ca_file: str | None = field(
        default_factory=lambda: ssl.get_default_verify_paths().cafile
    )

    def __post_init__(self) -> None:
        self.plans: dict[str, SitePlan] = plans_for(self.table)
        self.shim = Shim(self.table)
        nets = []
        for entry in self.options.trusted_proxies:
            try:
                nets.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                log.warning("trusted_proxies: %r is not an address or network; ignored", entry)
        self._trusted_nets = tuple(nets)
        self.is_trusted = functools.lru_cache(maxsize=1024)(self._is_trusted)

    def resolve(
        self, uri: str, cookie_site: str | None, referer_name: str | None = None
    ) -> Resolution:
        return resolve(uri, cookie_site, self.table, referer_name)

    def _is_trusted(self, remote_ip: str) -> bool:
        try:
            addr = ipaddress.ip_address(remote_ip)
        except ValueError:
            return False
        return any(addr in net for net in self._trusted_nets)
