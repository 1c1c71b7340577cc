"""What every handler is given: the site table, the options and the one HTTP client."""

from __future__ import annotations

import functools
import ipaddress
import logging
from dataclasses import dataclass

from tornado.httputil import HTTPServerRequest

from filters.links import Origin
from filters.names import SESSION_COOKIE
from filters.pipeline import SitePlan, build_plans
from filters.reverse import ReverseLinks
from handlers.config.options import Options
from handlers.config.sites import Site, SiteTable
from handlers.door.access import (
    ALLOWED,
    LOGIN,
    REFUSED,
    Decision,
    Sessions,
    Throttle,
    client_ip,
    in_networks,
    networks,
    path_allowed,
)
from handlers.mapping.cookies import cookie_value
from handlers.mapping.shim import Shim
from handlers.relay.upload import HELD_BUDGET, HeldBytes
from handlers.upstream.client import RelayClient

log = logging.getLogger(__name__)


def plans_for(table: SiteTable) -> dict[str, SitePlan]:
    """Each site's rewriting plan, knowing every origin of the table (each backend's
    netloc in both schemes)."""
    origins = [
        Origin(site.name, scheme, host, port, default)
        for scheme, host, port, default, site in table.origins()
    ]
    return build_plans(table, origins)


@dataclass
class ProxyContext:
    table: SiteTable
    options: Options
    client: RelayClient

    def __post_init__(self) -> None:
        self.plans: dict[str, SitePlan] = plans_for(self.table)
        self.shim = Shim(self.table)
        self.reverse = ReverseLinks({site.name: site.base_url for site in self.table})
        self.held_bytes = HeldBytes(HELD_BUDGET * self.options.request_map_max_bytes)
        # Both were checked when the options were read (handlers/config/options.py).
        self._trusted_nets = networks(self.options.trusted_proxies)
        self.is_trusted = functools.lru_cache(maxsize=1024)(self._is_trusted)
        self.client_networks = networks(self.options.client_allow)
        self.metrics_networks = networks(self.options.metrics_allow)
        secret = self.options.cookie_secret
        self.sessions = (
            Sessions(secret, self.options.session_seconds)
            if self.options.users and secret
            else None
        )
        self.throttle = Throttle()

    def client_ip(self, request: HTTPServerRequest) -> str:
        return client_ip(request.remote_ip or "", request.headers, self.is_trusted)

    def user(self, request: HTTPServerRequest) -> str | None:
        """The logged-in user (None: nobody, or the login is off)."""
        if self.sessions is None:
            return None
        return self.sessions.user(cookie_value(request.headers.get("Cookie"), SESSION_COOKIE))

    def may_open(self, site: Site, ip: str, user: str | None) -> Decision:
        """Whether a client (its address, its user) may open ``site`` at all."""
        if not in_networks(ip, self.client_networks) or not in_networks(ip, site.client_allow):
            return REFUSED
        if self.sessions is not None:
            if user is None:
                return LOGIN
            if site.users is not None and user not in site.users:
                return REFUSED
        return ALLOWED

    def decide(self, site: Site, ip: str, user: str | None, path_and_query: str) -> Decision:
        decision = self.may_open(site, ip, user)
        if decision.allowed and not path_allowed(path_and_query, site.allow, site.deny):
            return REFUSED
        return decision

    def _is_trusted(self, remote_ip: str) -> bool:
        try:
            addr = ipaddress.ip_address(remote_ip)
        except ValueError:
            return False
        return any(addr in net for net in self._trusted_nets)
