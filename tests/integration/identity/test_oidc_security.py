"""What single sign-on must refuse, through the proxy: ID tokens that the provider did
not make for this proxy and this sign-in, answers played twice or to a browser that did
not ask, a way back that leads off the proxy, groups the provider no longer gives, a
provider that says no. Each refusal leaves no session and asks nothing of a backend.

The real provider (tests/support/oidc_provider.py) signs with a key this module made,
so that tokens with bad claims can be signed with the provider's own key. They reach
the proxy through a stand-in issuer whose token endpoint hands out such a token: its
discovery document names the real provider's published keys (JWKS), which the proxy
fetches over HTTP as it would from any provider."""

from __future__ import annotations

import base64
import http.cookiejar
import json
import time
import urllib.parse
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from joserfc import jwt
from joserfc.errors import SecurityWarning
from joserfc.jwk import OctKey, RSAKey
from tornado.web import Application, RequestHandler

from handlers.config.sites import BackendSite
from tests.integration.identity.test_oidc_signin import (
    CLIENT_ID,
    CLIENT_SECRET,
    SCOPES,
    SECRET,
    Browser,
    Reply,
    sign_in_through,
    start_backend,
)
from tests.support import Backend, LoopThread, free_port, serve_app, start_proxy
from tests.support.oidc_provider import OidcProvider, sign_in, visit

LEEWAY = 60  # the proxy's oidc_leeway (its default)


def rsa_key(kid: str) -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"})


# --- a stand-in issuer: the real provider's keys, a token endpoint of the test's -------


@dataclass
class StandIn:
    """An issuer whose token endpoint answers a code with the ID token the test put
    under it; its keys are the real provider's."""

    url: str = ""
    tokens: dict[str, str] = field(default_factory=dict)
    asked: list[dict[str, str]] = field(default_factory=list)


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


# --- the module's world ---------------------------------------------------------------


@dataclass
class World:
    provider: OidcProvider
    key: RSAKey  # the provider's signing key
    backend: Backend
    port: int  # the proxy signing in at the real provider
    forging_port: int  # the proxy signing in at the stand-in
    stand_in: StandIn
    access_log: Path  # both proxies'

    @property
    def upstream(self) -> int:
        return len(self.backend.seen)

    def last_audit(self) -> str:
        return [line for line in self.access_log.read_text().splitlines() if '"AUDIT ' in line][-1]


@pytest.fixture(scope="module")
def world(loop_thread: LoopThread, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("oidc-security")
    key = rsa_key("k1")
    port = free_port()
    registration = {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "redirect_uris": [f"http://127.0.0.1:{port}/.proxy/oidc/callback"],
        "post_logout_redirect_uris": [f"http://127.0.0.1:{port}/.proxy/login"],
    }
    accounts = {"alice": {"password": "alice-pw", "groups": ["staff"]}}
    jwks = {"keys": [key.as_dict(private=True)]}
    with OidcProvider(tmp, [registration], accounts, jwks=jwks) as provider:
        stand_in = StandIn()
        arguments = {"stand_in": stand_in, "provider": provider}
        app = Application(
            [
                (r"/\.well-known/openid-configuration", Discovery, arguments),
                (r"/token", Token, arguments),
            ]
        )
        stand_in.url = f"http://127.0.0.1:{serve_app(loop_thread, app)}"
        backend, (wiki,) = start_backend(loop_thread, 1)
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
            yield World(provider, key, backend, port, forging.port, stand_in, access_log)
        finally:
            loop_thread.call(proxy.server.stop)
            loop_thread.call(forging.server.stop)


def started(browser: Browser, next_path: str = "/.site.wiki/") -> tuple[str, dict[str, str]]:
    """``/.proxy/oidc/start``: the provider's authorization URL and its query."""
    start = browser.open(f"/.proxy/oidc/start?{urllib.parse.urlencode({'next': next_path})}")
    assert start.status == 302, start
    return start.location, dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(start.location).query))


def refused(world: World, browser: Browser, reply: Reply, status: int, reason: str) -> None:
    """``reply`` refused the sign-in with ``status`` for ``reason`` (the audit trail's):
    no session, and the site still asks for one, with nothing sent upstream."""
    before = world.upstream
    assert reply.status == status, reply
    assert reply.set_cookie(".proxy-session") is None and browser.cookie(".proxy-session") is None
    audit = world.last_audit()
    assert '"AUDIT sign-in-failed /.proxy/oidc/callback"' in audit, audit
    assert audit.endswith(f'reason="{reason}"'), audit
    assert browser.navigate("/.site.wiki/").status == 302
    assert world.upstream == before


# --- 3a. ID tokens the provider did not make for this sign-in ---------------------------


def unsigned(claims: dict[str, Any]) -> str:
    """A token with ``"alg": "none"``: no signature at all."""

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def mint(world: World, nonce: str, case: str) -> str:
    """The ID token of ``case``: the provider's key and good claims unless the case
    says otherwise."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": world.stand_in.url,
        "sub": "mallory",
        "aud": CLIENT_ID,
        "exp": now + 300,
        "iat": now,
        "nonce": nonce,
        "preferred_username": "mallory",
        "groups": ["staff"],
    }
    header = {"alg": "RS256", "kid": "k1"}
    key: Any = world.key
    if case == "another key, same kid":
        key = rsa_key("k1")
    elif case == "another key of its own kid":
        key, header["kid"] = rsa_key("k2"), "k2"
    elif case == "HS256 with the client secret":  # a secret the proxy knows too
        with warnings.catch_warnings(action="ignore", category=SecurityWarning):  # it is short
            key, header = OctKey.import_key(CLIENT_SECRET), {"alg": "HS256"}
    elif case == "no signature":
        return unsigned(claims)
    elif case == "expired within the leeway":
        claims.update(exp=now - LEEWAY // 2, iat=now - 600)
    elif case == "expired beyond the leeway":
        claims.update(exp=now - 2 * LEEWAY, iat=now - 600)
    elif case == "issued in the future":
        claims.update(iat=now + 2 * LEEWAY)
    elif case == "another audience":
        claims["aud"] = "another-client"
    elif case == "shared audience, another azp":
        claims.update(aud=[CLIENT_ID, "another-client"], azp="another-client")
    elif case == "the real provider's issuer":
        claims["iss"] = world.provider.issuer
    elif case == "another nonce":
        claims["nonce"] = "not-this-sign-in"
    elif case == "no nonce":
        del claims["nonce"]
    elif case == "no expiry":
        del claims["exp"]
    else:
        assert case == "good", case
    return jwt.encode(header, claims, key, algorithms=["RS256", "HS256"])


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("good", None),
        ("expired within the leeway", None),
        ("another key, same kid", "id_token: bad_signature"),
        ("another key of its own kid", "id_token: invalid_key_id"),
        ("HS256 with the client secret", "id_token: unsupported_algorithm"),
        ("no signature", "id_token: unsupported_algorithm"),
        ("expired beyond the leeway", "id_token: expired_token"),
        ("issued in the future", "id_token: invalid_claim"),
        ("another audience", "id_token: invalid_claim"),
        ("shared audience, another azp", "id_token: azp"),
        ("the real provider's issuer", "id_token: invalid_claim"),
        ("another nonce", "id_token: invalid_claim"),
        ("no nonce", "id_token: missing_claim"),
        ("no expiry", "id_token: missing_claim"),
    ],
)
def test_id_tokens_not_made_for_this_sign_in_make_no_session(
    world: World, case: str, reason: str | None
) -> None:
    """Signed by another key, or by none, or with the client secret; expired past the
    leeway, issued in the future, for another client or issuer, for another sign-in
    (nonce): 401 and no session. The good token and one expired within the leeway are
    the controls: the same way in signs mallory in."""
    browser = Browser(world.forging_port)
    _, query = started(browser)
    code = f"code-{case}"
    world.stand_in.tokens[code] = mint(world, query["nonce"], case)
    answer = {"code": code, "state": query["state"]}
    reply = browser.open(f"/.proxy/oidc/callback?{urllib.parse.urlencode(answer)}")
    assert world.stand_in.asked[-1]["code"] == code  # the token endpoint was asked
    if reason is not None:
        refused(world, browser, reply, 401, reason)
        return
    before = world.upstream
    assert (reply.status, reply.location) == (302, "/.site.wiki/")
    assert browser.navigate("/.site.wiki/").status == 200
    assert world.upstream == before + 1
    assert world.backend.seen[-1].header("X-Forwarded-User") == "mallory"


# --- 3b. the provider's real answers, played where they do not belong ------------------


def test_a_replayed_callback_is_refused(world: World) -> None:
    """The provider's answer, with the flow cookie that went with it, signs in once: the
    same request again (an attacker who copied both) is refused, for the state was used."""
    browser = Browser(world.port)
    authorize, query = started(browser)
    flow = browser.cookie(f".proxy-oidc.{query['state'][:12]}")
    assert flow is not None
    callback = sign_in(authorize, "alice", "alice-pw")
    assert browser.open(callback).status == 302 and browser.cookie(".proxy-session") is not None

    replay = Browser(world.port)
    reply = replay.open(callback, headers={"Cookie": f"{flow.name}={flow.value}"})
    refused(world, replay, reply, 401, "state replayed")


@pytest.mark.parametrize("cookie", ["missing", "tampered", "another flow's"])
def test_a_callback_without_its_own_flow_cookie_is_refused(world: World, cookie: str) -> None:
    """The provider's answer, brought by a browser that did not start this sign-in (no
    flow cookie, a forged one, another sign-in's): 400 and no session. The answer is not
    spent by it: the browser that started the sign-in still completes it."""
    browser, other = Browser(world.port), Browser(world.port)  # other brings the answer
    authorize, query = started(browser)
    flow = browser.cookie(f".proxy-oidc.{query['state'][:12]}")
    assert flow is not None
    headers = {}
    if cookie == "tampered":
        value = flow.value.strip('"')
        headers["Cookie"] = f"{flow.name}={value[:-3]}{'abc' if value[-3:] != 'abc' else 'xyz'}"
    elif cookie == "another flow's":
        _, theirs = started(other)
        mine = other.cookie(f".proxy-oidc.{theirs['state'][:12]}")
        assert mine is not None
        headers["Cookie"] = f"{flow.name}={mine.value}"  # under this flow's name
    callback = sign_in(authorize, "alice", "alice-pw")
    reply = other.open(callback, headers=headers)
    reason = "no flow cookie" if cookie == "missing" else "flow cookie invalid or expired"
    refused(world, other, reply, 400, reason)
    before = world.upstream
    assert (browser.open(callback).status, browser.navigate("/.site.wiki/").status) == (302, 200)
    assert world.upstream == before + 1


@pytest.mark.parametrize(
    "next_path",
    [
        "//evil.example/x",
        "https://evil.example",
        "/\\evil.example",
        "evil.example",
        # A browser drops a tab or a line break from a URL (WHATWG URL parsing):
        # "/<tab>/evil.example" would take it to //evil.example.
        "/\t/evil.example",
        "/\n/evil.example",
    ],
)
def test_the_way_back_never_leaves_the_proxy(world: World, next_path: str) -> None:
    """A ``next`` that names another host (or would, once a browser has dropped the tab
    from it) ends at the site list, by the login page or straight to the start."""
    browser, provider_jar = Browser(world.port), http.cookiejar.CookieJar()
    login = browser.navigate(f"/.proxy/login?{urllib.parse.urlencode({'next': next_path})}")
    assert (login.status, login.location) == (302, "/.proxy/oidc/start?next=%2F.proxy%2F")
    reply = sign_in_through(browser, provider_jar, "alice", "alice-pw", next_path)
    assert (reply.status, reply.location) == (302, "/.proxy/"), reply


def test_a_group_removed_at_the_provider_counts_at_the_next_sign_in(world: World) -> None:
    """The provider's groups are read at each sign-in: out of staff there, out of the
    wiki here from the next sign-in on, with nothing sent to it."""
    world.provider.set_account("dave", "dave-pw", groups=["staff", "ops"])
    provider_jar = http.cookiejar.CookieJar()
    browser = Browser(world.port)
    assert sign_in_through(browser, provider_jar, "dave", "dave-pw").status == 302
    assert browser.navigate("/.site.wiki/").status == 200
    assert world.backend.seen[-1].header("X-Forwarded-Groups") == "ops,staff"

    world.provider.set_account("dave", "dave-pw", groups=["ops"])
    again = Browser(world.port)
    # Signed in at the provider still: no password asked (a form would refuse this one).
    assert sign_in_through(again, provider_jar, "dave", "not-asked").status == 302
    before = world.upstream
    assert again.navigate("/.site.wiki/").status == 403
    assert world.upstream == before


@pytest.mark.parametrize("error", ["access_denied", "login_required"])
def test_a_provider_that_says_no_gets_a_401_page(world: World, error: str) -> None:
    """The provider's error comes back to the callback instead of a code: the user
    refused (access_denied, which this provider has no button for, so the answer is
    made here) or cannot be signed in silently (login_required: the real provider's
    answer to prompt=none without a session of its own)."""
    browser = Browser(world.port)
    authorize, query = started(browser)
    if error == "access_denied":
        answer = {"error": error, "error_description": "the user said no", "state": query["state"]}
        callback = f"/.proxy/oidc/callback?{urllib.parse.urlencode(answer)}"
        reason = "provider: the user said no"
    else:
        landing = visit(f"{authorize}&prompt=none", http.cookiejar.CookieJar())
        callback = landing.location or ""
        assert callback.startswith(f"http://127.0.0.1:{world.port}/.proxy/oidc/callback?"), landing
        assert f"error={error}" in callback and f"state={query['state']}" in callback
        reason = "provider: End-User authentication is required"
    reply = browser.open(callback)
    assert "Sign-in failed" in reply.body and "/.proxy/login" in reply.body
    refused(world, browser, reply, 401, reason)
