"""The servers the sign-in tests of this folder share, started once for the package:
slapd with its users, the LDAP sites' backends and the proxies in front of them
(test_ldap_signin.py, test_ldap_failures.py); and two OpenID Connect worlds, each a real
provider with the proxies and the backend that sign in there (sign_in_world for
test_oidc_signin.py and test_oidc_headers.py, security_world for test_oidc_tokens.py and
test_oidc_security.py). Their helpers are in tests/support/identity.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import ldap3
import pytest
from tornado.web import Application, RequestHandler
from tornado.websocket import WebSocketHandler

from handlers.config.sites import BackendSite
from tests.support import (
    Backend,
    LoopThread,
    Proxy,
    RecordingHandler,
    Seen,
    free_port,
    serve_app,
    start_backend,
    start_proxy,
)
from tests.support.identity import (
    CLIENT_ID,
    CLIENT_SECRET,
    PASSWORDS,
    SCOPES,
    SECRET,
    SecurityWorld,
    SignInWorld,
    StandIn,
    rsa_key,
)
from tests.support.oidc_provider import OidcProvider
from tests.support.slapd import Directory as Slapd

# --- LDAP: the directory, the backends and the proxies ---------------------------------

LDAP_SECRET = "an LDAP test secret, long enough"
SITES = ("staff", "ops", "visitors", "everyone")


@pytest.fixture(scope="package")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    with Slapd(tmp_path_factory.mktemp("slapd")) as d:
        d.add_user("alice", PASSWORDS["alice"], "alice@example.org", "Alice A", ["staff", "admins"])
        d.add_user("bob", PASSWORDS["bob"], "bob@example.org", groups=["ops"])
        # In staff too, but not one of the "web" people the search-path proxy looks for.
        d.add_user("frank", PASSWORDS["frank"], "frank@example.org", groups=["staff"])
        with d.admin() as conn:
            conn.modify(d.user_dn("alice"), {"employeeType": [(ldap3.MODIFY_ADD, ["web"])]})
            # A groupOfUniqueNames: no memberOf for it (the overlay keeps groupOfNames'),
            # so only the group search under ldap_group_base finds it.
            conn.add(
                f"cn=auditors,{d.groups_dn}",
                "groupOfUniqueNames",
                {"cn": "auditors", "uniqueMember": [d.user_dn("alice")]},
            )
        yield d


@pytest.fixture(scope="package")
def backends(loop_thread) -> dict[str, Backend]:
    return {name: start_backend(loop_thread, name) for name in SITES}


@pytest.fixture(scope="package")
def new_proxy(loop_thread, slapd, backends) -> Iterator[Callable[..., Proxy]]:
    """Starts a proxy in front of the four sites, signing in against ``slapd`` over
    StartTLS with its CA, groups searched under ou=groups; ``settings`` change that.
    Every proxy started stops listening at the end of the package."""
    table = {
        "staff": BackendSite("staff", backends["staff"].url, groups=["staff"], pass_identity=True),
        "ops": BackendSite("ops", backends["ops"].url, groups=["ops"], pass_identity=True),
        "visitors": BackendSite(
            "visitors", backends["visitors"].url, groups=["visitors"], pass_identity=True
        ),
        # Any signed-in user: shows what the proxy knows of someone without a group.
        "everyone": BackendSite("everyone", backends["everyone"].url, pass_identity=True),
    }
    started: list[Proxy] = []

    def start(**settings: Any) -> Proxy:
        options = {
            "cookie_secret": LDAP_SECRET,
            "access_log": None,
            "ldap_url": slapd.url,
            "ldap_ca_file": slapd.ca_file,
            "ldap_user_dn": f"uid={{name}},{slapd.people_dn}",
            "ldap_group_base": slapd.groups_dn,
            **settings,
        }
        proxy = start_proxy(loop_thread, table, **options)
        started.append(proxy)
        return proxy

    yield start
    for proxy in started:
        loop_thread.call(proxy.server.stop)


@pytest.fixture(scope="package")
def proxy(new_proxy) -> Proxy:
    """The usual deployment: ldap:// with StartTLS, the directory's CA, DN template."""
    return new_proxy()


@pytest.fixture(scope="package")
def search_proxy(new_proxy, slapd) -> Proxy:
    """Active Directory's way with a DN template: bind by DN, then find the user's entry
    by a search (only the "web" people), its groups from that entry's memberOf alone."""
    return new_proxy(
        ldap_user_base=slapd.people_dn,
        ldap_user_filter="(&(objectClass=inetOrgPerson)(uid={name})(employeeType=web))",
        ldap_group_base=None,
    )


# --- OpenID Connect: a backend that records every request, WebSocket handshakes too -----


class HandshakeSocket(WebSocketHandler):
    """A WebSocket endpoint that records its handshake before it answers it."""

    def initialize(self, backend: Backend) -> None:
        self.backend = backend

    def prepare(self) -> None:
        r = self.request
        self.backend.seen.append(Seen(r.method or "", r.uri or "", list(r.headers.get_all()), b""))

    def check_origin(self, origin: str) -> bool:
        return True

    def on_message(self, message: str | bytes) -> None:
        self.write_message(message)


def start_sso_backend(loop_thread: LoopThread, ports: int) -> tuple[Backend, list[str]]:
    """One recording backend on ``ports`` ports (one per site: sites keep apart by their
    address), and its URLs."""
    backend = Backend("sso")
    app = Application(
        [
            (r"/ws", HandshakeSocket, {"backend": backend}),
            (r".*", RecordingHandler, {"backend": backend, "routes": {}}),
        ]
    )
    urls = [f"http://127.0.0.1:{serve_app(loop_thread, app)}" for _ in range(ports)]
    return backend, urls


def registration(port: int) -> dict[str, Any]:
    """The proxy's registration at the provider, for a proxy on ``port``."""
    return {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "redirect_uris": [f"http://127.0.0.1:{port}/.proxy/oidc/callback"],
        "post_logout_redirect_uris": [f"http://127.0.0.1:{port}/.proxy/login"],
    }


# --- OpenID Connect: the way in, and what a backend is told ----------------------------

ACCOUNTS = {
    "alice": {
        "password": "alice-pw",
        "email": "alice@example.org",
        "groups": ["wiki-editors", "staff"],
    },
    "bob": {"password": "bob-pw", "email": "bob@example.org", "groups": ["hr"]},
}


@pytest.fixture(scope="package")
def sign_in_world(
    loop_thread: LoopThread, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SignInWorld]:
    tmp = tmp_path_factory.mktemp("oidc-signin")
    port = free_port()  # the provider must know the proxy's callback before either starts
    with OidcProvider(tmp, [registration(port)], ACCOUNTS) as provider:
        backend, (wiki, hr, open_) = start_sso_backend(loop_thread, 3)
        sites = {
            "wiki": BackendSite("wiki", wiki, groups=["staff"], pass_identity=True),
            "hr": BackendSite("hr", hr, groups=["hr"], pass_identity=True),
            "open": BackendSite("open", open_),
        }
        access_log = tmp / "access.log"
        proxy = start_proxy(
            loop_thread,
            sites,
            port=port,
            cookie_secret=SECRET,
            session_seconds=3600,
            access_log=str(access_log),
            oidc_issuer=provider.issuer,
            oidc_client_id=CLIENT_ID,
            oidc_client_secret=CLIENT_SECRET,
            oidc_scopes=SCOPES,
        )
        plain = start_proxy(loop_thread, sites, access_log=None)
        try:
            yield SignInWorld(provider, proxy.port, backend, access_log, plain.port)
        finally:
            loop_thread.call(proxy.server.stop)
            loop_thread.call(plain.server.stop)


# --- OpenID Connect: a stand-in issuer with the real provider's keys ---------------------


class Discovery(RequestHandler):
    def initialize(self, stand_in: StandIn, provider: OidcProvider) -> None:
        self.stand_in, self.provider = stand_in, provider

    def get(self) -> None:
        real = self.provider.discovery()
        self.finish(
            {
                "issuer": self.stand_in.url,
                "authorization_endpoint": real["authorization_endpoint"],
                "token_endpoint": f"{self.stand_in.url}/token",
                "jwks_uri": real["jwks_uri"],
            }
        )


class Token(RequestHandler):
    def initialize(self, stand_in: StandIn, provider: OidcProvider) -> None:
        self.stand_in = stand_in

    def post(self) -> None:
        form = {k: self.get_body_argument(k) for k in self.request.body_arguments}
        self.stand_in.asked.append(form)
        id_token = self.stand_in.tokens.pop(form.get("code", ""), None)
        if id_token is None:
            self.set_status(400)
            self.finish({"error": "invalid_grant"})
            return
        self.finish({"access_token": "at", "token_type": "Bearer", "id_token": id_token})


@pytest.fixture(scope="package")
def security_world(
    loop_thread: LoopThread, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SecurityWorld]:
    tmp = tmp_path_factory.mktemp("oidc-security")
    key = rsa_key("k1")
    port = free_port()
    accounts = {"alice": {"password": "alice-pw", "groups": ["staff"]}}
    jwks = {"keys": [key.as_dict(private=True)]}
    with OidcProvider(tmp, [registration(port)], accounts, jwks=jwks) as provider:
        stand_in = StandIn()
        arguments = {"stand_in": stand_in, "provider": provider}
        app = Application(
            [
                (r"/\.well-known/openid-configuration", Discovery, arguments),
                (r"/token", Token, arguments),
            ]
        )
        stand_in.url = f"http://127.0.0.1:{serve_app(loop_thread, app)}"
        backend, (wiki,) = start_sso_backend(loop_thread, 1)
        sites = {"wiki": BackendSite("wiki", wiki, groups=["staff"], pass_identity=True)}
        access_log = tmp / "access.log"
        common = {
            "cookie_secret": SECRET,
            "access_log": str(access_log),
            "oidc_client_id": CLIENT_ID,
            "oidc_client_secret": CLIENT_SECRET,
            "oidc_scopes": SCOPES,
        }
        proxy = start_proxy(loop_thread, sites, port=port, oidc_issuer=provider.issuer, **common)
        forging = start_proxy(loop_thread, sites, oidc_issuer=stand_in.url, **common)
        try:
            yield SecurityWorld(provider, key, backend, port, forging.port, stand_in, access_log)
        finally:
            loop_thread.call(proxy.server.stop)
            loop_thread.call(forging.server.stop)
