"""What every handler is given: the site table, the options and the one HTTP client."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import InitVar, dataclass, field

from tornado.httputil import HTTPServerRequest

from filters.links import Origin
from filters.names import SESSION_COOKIE
from filters.pipeline import SitePlan, build_plans
from filters.reverse import ReverseLinks
from handlers.config.options import Options
from handlers.config.sites import Site, SiteTable
from handlers.config.values import Network
from handlers.door.access import (
    ALLOWED,
    BY_NETWORK,
    BY_PATH,
    BY_USER,
    LOGIN,
    Decision,
    client_ip,
    in_any,
    in_networks,
    networks,
    path_allowed,
)
from handlers.door.directory import Directory
from handlers.door.identity import Identity, Sessions, identity_fields
from handlers.door.oidc import OidcClient
from handlers.door.throttle import Throttle
from handlers.mapping.cookies import cookie_value
from handlers.mapping.shim import Shim
from handlers.relay.upload import HELD_BUDGET, HeldBytes
from handlers.upstream.client import RelayClient

log = logging.getLogger(__name__)


def _same_secret(previous: ProxyContext) -> bool:
    """Whether the provider's client secret is still the one ``previous`` uses (a secret
    file may have changed under the same settings)."""
    oidc, signin = previous.oidc, previous.options.signin
    if oidc is None or signin.oidc_client_secret_file is None:
        return True
    try:
        return signin.client_secret() == oidc.provider.secret
    except (OSError, UnicodeError):
        return False


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
    """What every handler is given, declared here by concern. A reload (handlers/ops/state.py)
    makes a new one from the new table and options and hands it the process's resources."""

    # The configuration in force.
    table: SiteTable
    options: Options
    # The process's resources, kept across reloads: the one HTTP client, and the failed
    # logins (a reload does not forgive them).
    client: RelayClient
    throttle: Throttle = field(default_factory=Throttle, repr=False)
    # The context this one replaces (a reload): its sign-in services are kept when the
    # sign-in settings did not change (the provider's cached keys, the states used).
    previous: InitVar[ProxyContext | None] = None
    # Made from the configuration once, never changed after.
    plans: dict[str, SitePlan] = field(init=False, repr=False)  # each site's rewriting
    shim: Shim = field(init=False, repr=False)  # the in-page URL shim
    reverse: ReverseLinks = field(init=False, repr=False)  # proxy URLs -> backend URLs
    held_bytes: HeldBytes = field(init=False, repr=False)  # request bodies held for mapping
    # Who may open what (handlers/door/access.py); the networks were checked when the
    # options were read (handlers/config/options.py).
    client_networks: tuple[Network, ...] = field(init=False, repr=False)
    metrics_networks: tuple[Network, ...] = field(init=False, repr=False)
    sessions: Sessions | None = field(init=False, repr=False)  # None: no signing in
    # The ways of signing in beside config.users (None: not configured).
    oidc: OidcClient | None = field(init=False, repr=False)
    directory: Directory | None = field(init=False, repr=False)
    # The identity headers' names, lower case: never taken from a client.
    identity_names: frozenset[str] = field(init=False, repr=False)
    is_trusted: Callable[[str], bool] = field(init=False, repr=False)  # a proxy in front?

    def __post_init__(self, previous: ProxyContext | None) -> None:
        options = self.options
        self.plans = plans_for(self.table)
        self.shim = Shim(self.table)
        self.reverse = ReverseLinks({site.name: site.base_url for site in self.table})
        self.held_bytes = HeldBytes(HELD_BUDGET * options.request_map_max_bytes)
        self.client_networks = networks(options.client_allow)
        self.metrics_networks = networks(options.metrics_allow)
        secret = options.cookie_secret
        self.sessions = None
        if options.login and secret:
            named = frozenset(
                group
                for site in self.table
                for group in (
                    *(site.groups or ()),
                    *(g for g, _ in site.allow + site.deny if g is not None),
                )
            )
            passes = any(site.pass_identity for site in self.table)
            self.sessions = Sessions(secret, options.session_seconds, named, passes)
        signin = options.signin
        if previous is not None and previous.options.signin == signin and _same_secret(previous):
            self.oidc, self.directory = previous.oidc, previous.directory
        else:
            self.oidc = OidcClient(signin) if signin.oidc_issuer else None
            self.directory = Directory(signin) if signin.ldap_url else None
        self.identity_names = frozenset(
            name.lower()
            for name in (
                signin.identity_user_header,
                signin.identity_email_header,
                signin.identity_groups_header,
            )
        )
        trusted = networks(options.trusted_proxies)
        self.is_trusted = functools.lru_cache(maxsize=1024)(functools.partial(in_any, nets=trusted))

    def identity_fields(self, site: Site, identity: Identity | None) -> list[tuple[str, str]]:
        """What a site that asks for it (pass_identity) is told of the signed-in user."""
        if not site.pass_identity or identity is None:
            return []
        signin = self.options.signin
        return identity_fields(
            identity,
            signin.identity_user_header,
            signin.identity_email_header,
            signin.identity_groups_header,
        )

    def client_ip(self, request: HTTPServerRequest) -> str:
        return client_ip(request.remote_ip or "", request.headers, self.is_trusted)

    def identity(self, request: HTTPServerRequest) -> Identity | None:
        """Who is signed in (None: nobody, or signing in is off)."""
        if self.sessions is None:
            return None
        value = cookie_value(request.headers.get("Cookie"), SESSION_COOKIE)
        identity = self.sessions.identity(value)
        if identity is None:
            return None
        # A session outlives neither the way it was made nor a local user's removal.
        method = identity.method
        if method == "local" and identity.name not in self.options.users:
            return None
        if (method == "oidc" and self.oidc is None) or (
            method == "ldap" and self.directory is None
        ):
            return None
        return identity

    def user_name(self, request: HTTPServerRequest) -> str | None:
        identity = self.identity(request)
        return identity.name if identity is not None else None

    def may_open(self, site: Site, ip: str, identity: Identity | None) -> Decision:
        """Whether a client (its address, who is signed in) may open ``site`` at all."""
        if not in_networks(ip, self.client_networks) or not in_networks(ip, site.client_allow):
            return BY_NETWORK
        if self.sessions is not None:
            if identity is None:
                return LOGIN
            if site.users is None and site.groups is None:
                return ALLOWED
            if site.users is not None and identity.name in site.users:
                return ALLOWED
            if site.groups is not None and identity.in_any(site.groups):
                return ALLOWED
            return BY_USER
        return ALLOWED

    def decide(
        self, site: Site, ip: str, identity: Identity | None, path_and_query: str
    ) -> Decision:
        decision = self.may_open(site, ip, identity)
        groups = identity.groups if identity is not None else frozenset()
        if decision.allowed and not path_allowed(path_and_query, site.allow, site.deny, groups):
            return BY_PATH
        return decision
