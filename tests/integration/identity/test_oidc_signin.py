"""Single sign-on through the proxy, against a real OpenID Connect provider
(tests/support/oidc_provider.py): a browser's whole way in (site, login page, provider,
callback, back to the page), what the backend is then told of the user and what it is
never told by a client, signing out at both ends, and the audit trail. One backend
counts every request that gets past the proxy, so that "refused" also means "nothing was
asked upstream"."""

from __future__ import annotations

import base64
import email.utils
import hashlib
import http.cookiejar
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.web import Application, decode_signed_value
from tornado.websocket import WebSocketHandler, websocket_connect

from handlers.config.sites import BackendSite
from tests.support import (
    Backend,
    LoopThread,
    RecordingHandler,
    Seen,
    free_port,
    serve_app,
    start_proxy,
)
from tests.support.oidc_provider import OidcProvider, sign_in, sign_out, visit

SECRET = "the cookie secret of the single sign-on tests"
CLIENT_ID, CLIENT_SECRET = "web-proxy", "rp-secret-1"
SCOPES = ("openid", "email", "profile", "groups")
ACCOUNTS = {
    "alice": {
        "password": "alice-pw",
        "email": "alice@example.org",
        "groups": ["wiki-editors", "staff"],
    },
    "bob": {"password": "bob-pw", "email": "bob@example.org", "groups": ["hr"]},
}
IDENTITY = ("X-Forwarded-User", "X-Forwarded-Email", "X-Forwarded-Groups")
FORGED = {
    "X-Forwarded-User": "mallory",
    "x-forwarded-email": "mallory@evil.example",
    "X-FORWARDED-GROUPS": "admins,hr",
}


# --- the backend: records every request that reaches it, WebSocket handshakes too -------


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


def start_backend(loop_thread: LoopThread, ports: int) -> tuple[Backend, list[str]]:
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


# --- the browser's side of the proxy: cookies kept, no redirect followed --------------


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # every hop is the test's to check


@dataclass
class Reply:
    status: int
    headers: Message
    body: str

    @property
    def location(self) -> str | None:
        return self.headers.get("Location")

    def set_cookie(self, name: str) -> str | None:
        """The Set-Cookie line for cookie ``name``, if this reply sets or clears it."""
        found = [c for c in self.headers.get_all("Set-Cookie") or [] if c.startswith(name + "=")]
        assert len(found) <= 1, found
        return found[0] if found else None


class Browser:
    """A client of the proxy that keeps the cookies it is given (the flow cookie only
    under its Path) and follows no redirect. Its jar is its own: the provider's cookies
    live in another one, as they would for a browser that tells ports apart."""

    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.jar = http.cookiejar.CookieJar()
        handlers = (urllib.request.HTTPCookieProcessor(self.jar), _NoRedirects)
        self.opener = urllib.request.build_opener(*handlers)

    def open(self, url: str, method: str = "GET", headers: dict[str, str] | None = None) -> Reply:
        full = urllib.parse.urljoin(self.base + "/", url)
        data = b"" if method == "POST" else None
        request = urllib.request.Request(full, data, headers or {}, method=method)
        try:
            response = self.opener.open(request, timeout=20)
        except urllib.error.HTTPError as error:
            response = error
        with response:
            return Reply(response.status, response.headers, response.read().decode("utf-8"))

    def navigate(self, url: str) -> Reply:
        return self.open(url, headers={"Accept": "text/html"})

    def cookie(self, name: str) -> http.cookiejar.Cookie | None:
        return next((c for c in self.jar if c.name == name), None)

    @property
    def session(self) -> str:
        """The session cookie as a Cookie header's pair."""
        cookie = self.cookie(".proxy-session")
        assert cookie is not None, "not signed in"
        return f"{cookie.name}={cookie.value}"


def sign_in_through(
    browser: Browser,
    provider_jar: http.cookiejar.CookieJar,
    login: str,
    password: str,
    next_path: str = "/.proxy/",
) -> Reply:
    """Sign in at the provider through the proxy's start and callback; the callback's
    reply (a session and a redirect to ``next_path`` when it went well)."""
    start = browser.open(f"/.proxy/oidc/start?{urllib.parse.urlencode({'next': next_path})}")
    assert start.status == 302, start
    return browser.open(sign_in(start.location, login, password, provider_jar))


def upstream_identity(seen: Seen) -> tuple[str | None, ...]:
    return tuple(seen.header(name) for name in IDENTITY)


def metric(text: str, name: str, **labels: str) -> float:
    """A sample of the Prometheus text ``text``, whatever the order of its labels."""
    for line in text.splitlines():
        match = re.fullmatch(r"(\w+)\{(.*)\} (\S+)", line)
        if match and match[1] == name:
            found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match[2]))
            if found == labels:
                return float(match[3])
    return 0.0


# --- the proxy and the provider, for the whole module ---------------------------------


@dataclass
class World:
    provider: OidcProvider
    proxy_port: int
    backend: Backend
    access_log: Path
    plain_port: int  # a proxy without any sign-in, same sites

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.proxy_port}"

    @property
    def upstream(self) -> int:
        return len(self.backend.seen)


@pytest.fixture(scope="module")
def world(loop_thread: LoopThread, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("oidc-signin")
    port = free_port()  # the provider must know the proxy's callback before either starts
    registration = {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "redirect_uris": [f"http://127.0.0.1:{port}/.proxy/oidc/callback"],
        "post_logout_redirect_uris": [f"http://127.0.0.1:{port}/.proxy/login"],
    }
    with OidcProvider(tmp, [registration], ACCOUNTS) as provider:
        backend, (wiki, hr, open_) = start_backend(loop_thread, 3)
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
            yield World(provider, proxy.port, backend, access_log, plain.port)
        finally:
            loop_thread.call(proxy.server.stop)
            loop_thread.call(plain.server.stop)


@pytest.fixture(scope="module")
def alice(world: World) -> Browser:
    """A browser signed in as alice (staff, wiki-editors) through the provider."""
    browser = Browser(world.proxy_port)
    reply = sign_in_through(browser, http.cookiejar.CookieJar(), "alice", "alice-pw")
    assert reply.status == 302 and browser.cookie(".proxy-session") is not None, reply
    return browser


# --- 1. the whole way in --------------------------------------------------------------


def test_the_whole_way_in_and_what_the_backend_is_told(world: World) -> None:
    """From a navigation to a site nobody is signed in for, through the login page and
    the provider's, back to the page: every hop is the one OpenID Connect's code flow
    with PKCE asks for, and the session then carries alice's name, e-mail and groups to
    the site that asks for them, and only there."""
    browser, provider_jar = Browser(world.proxy_port), http.cookiejar.CookieJar()
    before = world.upstream
    reply = browser.navigate("/.site.wiki/page?x=1")
    assert (reply.status, reply.location) == (
        302,
        "/.proxy/login?next=%2F.site.wiki%2Fpage%3Fx%3D1",
    )
    reply = browser.navigate(reply.location)
    assert (reply.status, reply.location) == (
        302,
        "/.proxy/oidc/start?next=%2F.site.wiki%2Fpage%3Fx%3D1",
    )
    reply = browser.navigate(reply.location)
    assert reply.status == 302 and world.upstream == before

    authorize = urllib.parse.urlsplit(reply.location)
    discovery = world.provider.discovery()
    assert authorize._replace(query="").geturl() == discovery["authorization_endpoint"]
    query = dict(urllib.parse.parse_qsl(authorize.query))
    callback = f"{world.base}/.proxy/oidc/callback"
    assert query["response_type"] == "code" and query["client_id"] == CLIENT_ID
    assert query["redirect_uri"] == callback
    assert set(query["scope"].split()) == set(SCOPES)
    assert query["code_challenge_method"] == "S256"
    assert len(query["state"]) >= 32 and len(query["nonce"]) >= 32
    # The flow cookie, signed with the proxy's secret, holds this very state, nonce and
    # the verifier whose S256 hash went to the provider; the browser sends it back to
    # the callback only.
    flow_line = reply.set_cookie(f".proxy-oidc.{query['state'][:12]}")
    assert flow_line is not None
    for attribute in ("Path=/.proxy/oidc/", "HttpOnly", "SameSite=Lax", "Max-Age=600"):
        assert attribute in flow_line
    flow = browser.cookie(f".proxy-oidc.{query['state'][:12]}")
    assert flow is not None and flow.path == "/.proxy/oidc/"
    value = decode_signed_value(SECRET, flow.name, flow.value.strip('"'))
    state, nonce, verifier, next_path, _ = json.loads(value)
    assert (state, nonce, next_path) == (query["state"], query["nonce"], "/.site.wiki/page?x=1")
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    assert query["code_challenge"] == challenge.decode()

    back = sign_in(reply.location, "alice", "alice-pw", provider_jar)
    assert back.startswith(callback + "?")
    reply = browser.open(back)
    assert (reply.status, reply.location) == (302, "/.site.wiki/page?x=1")
    session_line = reply.set_cookie(".proxy-session")
    assert session_line is not None and "HttpOnly" in session_line and "Path=/" in session_line
    assert browser.cookie(flow.name) is None  # the flow cookie is spent
    assert world.upstream == before

    reply = browser.navigate(reply.location)
    assert reply.status == 200 and world.upstream == before + 1
    seen = world.backend.seen[-1]
    assert seen.uri == "/page?x=1"
    assert upstream_identity(seen) == ("alice", "alice@example.org", "staff,wiki-editors")
    assert seen.header("Cookie") is None  # the session is the proxy's, not the site's

    reply = browser.navigate("/.proxy/")
    assert reply.status == 200 and "alice" in reply.body
    assert 'data-site="wiki"' in reply.body and 'data-site="open"' in reply.body
    assert 'data-site="hr"' not in reply.body  # another group's site is not even listed
    reply = browser.navigate("/.site.hr/salaries")
    assert reply.status == 403 and world.upstream == before + 1
    reply = browser.navigate("/.site.open/page")
    assert reply.status == 200 and world.upstream == before + 2
    assert upstream_identity(world.backend.seen[-1]) == (None, None, None)


# --- 2. identity headers from a client never reach a backend --------------------------


def websocket_handshake(
    loop_thread: LoopThread, port: int, path: str, headers: dict[str, str]
) -> int:
    """Open a WebSocket through the proxy with ``headers``, exchange a message, close;
    the handshake's status (101, or the proxy's refusal)."""

    async def go() -> int:
        request = HTTPRequest(
            f"ws://127.0.0.1:{port}{path}",
            headers={"Origin": f"http://127.0.0.1:{port}", **headers},
        )
        try:
            connection = await websocket_connect(request)
        except HTTPClientError as error:
            return error.code
        await connection.write_message("ping")
        assert await connection.read_message() == "ping"
        connection.close()
        return 101

    return loop_thread.run(go(), timeout=20)


def send(loop_thread: LoopThread, route: str, site: str, port: int, session: str | None) -> int:
    """One request with forged identity headers to ``site`` by ``route``; its status."""
    cookies = [session] if session else []
    headers = dict(FORGED)
    if route == "websocket":
        if cookies:
            headers["Cookie"] = "; ".join(cookies)
        return websocket_handshake(loop_thread, port, f"/.site.{site}/ws", headers)
    if route == "prefix":
        target = f"/.site.{site}/forged?by=prefix"
    elif route == "referer":
        # A page's script asking for a root-relative URL: not a navigation.
        target = "/forged?by=referer"
        headers["Referer"] = f"http://127.0.0.1:{port}/.site.{site}/x"
        headers["Accept"] = "application/json"
    else:
        target = "/forged?by=cookie"
        cookies.append(f".site={site}")
    if cookies:
        headers["Cookie"] = "; ".join(cookies)
    request = urllib.request.Request(f"http://127.0.0.1:{port}{target}", headers=headers)
    opener = urllib.request.build_opener(_NoRedirects)
    try:
        with opener.open(request, timeout=20) as response:
            return response.status
    except urllib.error.HTTPError as error:
        with error:
            return error.code


ROUTES = ("prefix", "referer", "cookie", "websocket")


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(("site", "told"), [("wiki", True), ("open", False)])
def test_forged_identity_headers_are_removed(
    world: World, loop_thread: LoopThread, alice: Browser, route: str, site: str, told: bool
) -> None:
    """Whatever route picks the site, what a client sends as X-Forwarded-User, -Email or
    -Groups (in any case) is dropped: a site that asks is told the signed-in user's
    values, the others nothing."""
    before = world.upstream
    status = send(loop_thread, route, site, world.proxy_port, alice.session)
    assert status == (101 if route == "websocket" else 200)
    assert world.upstream == before + 1
    seen = world.backend.seen[-1]
    assert seen.uri.endswith("/ws" if route == "websocket" else f"/forged?by={route}")
    expected = ("alice", "alice@example.org", "staff,wiki-editors") if told else (None,) * 3
    assert upstream_identity(seen) == expected
    assert not any("mallory" in v or "admins" in v for _, v in seen.headers)


@pytest.mark.parametrize("site", ["wiki", "open"])
def test_underscore_spellings_of_identity_headers_are_removed_too(
    world: World, alice: Browser, site: str
) -> None:
    """CGI and WSGI servers (gunicorn before 22, uWSGI, many PHP setups) read
    X_Forwarded_User as X-Forwarded-User: both become HTTP_X_FORWARDED_USER. Passed on,
    the client's spelling names the user to a site told nothing, and joins the proxy's
    value at one that is (oauth2-proxy's CVE-2025-64484)."""
    before = world.upstream
    headers = {
        "Cookie": alice.session,
        "X_Forwarded_User": "mallory",
        "X-Forwarded_Email": "mallory@evil.example",
        "x_forwarded_groups": "admins",
    }
    reply = alice.open(f"/.site.{site}/underscores", headers=headers)
    assert reply.status == 200 and world.upstream == before + 1
    seen = world.backend.seen[-1]
    as_cgi = {name.upper().replace("-", "_") for name, _ in seen.headers}
    told = {name.upper().replace("-", "_") for name in IDENTITY} & as_cgi
    assert told == (
        {"X_FORWARDED_USER", "X_FORWARDED_EMAIL", "X_FORWARDED_GROUPS"} if site == "wiki" else set()
    )
    assert not any("mallory" in v or "admins" in v for _, v in seen.headers), seen.headers


@pytest.mark.parametrize("route", ROUTES)
def test_forged_identity_headers_without_anybody_signed_in(
    world: World, loop_thread: LoopThread, route: str
) -> None:
    """Nobody signed in: on the proxy that asks for a sign-in the forged headers get
    nowhere at all; on one without any sign-in the request goes through, stripped."""
    before = world.upstream
    status = send(loop_thread, route, "wiki", world.proxy_port, None)
    assert status in (302, 401) and world.upstream == before
    status = send(loop_thread, route, "wiki", world.plain_port, None)
    assert status == (101 if route == "websocket" else 200)
    assert world.upstream == before + 1
    assert upstream_identity(world.backend.seen[-1]) == (None, None, None)


# --- 4. signing out ends the provider's session too -----------------------------------


def test_sign_out_ends_the_providers_session_too(world: World) -> None:
    """Signed in at the provider, a new sign-in passes without a password; after the
    proxy's sign-out, which clears its cookie and sends the browser on to the provider's
    logout, the provider asks for the password again and the proxy lets nobody in."""
    browser, provider_jar = Browser(world.proxy_port), http.cookiejar.CookieJar()
    assert sign_in_through(browser, provider_jar, "alice", "alice-pw").status == 302
    start = browser.open("/.proxy/oidc/start")
    assert not visit(start.location, provider_jar).shows_login_form  # single sign-on
    assert browser.navigate("/.site.wiki/").status == 200

    reply = browser.open("/.proxy/logout", method="POST")
    assert reply.status == 302
    cleared = reply.set_cookie(".proxy-session")
    assert cleared is not None and cleared.startswith('.proxy-session="";') and "Path=/" in cleared
    expires = email.utils.parsedate_to_datetime(cleared.split("expires=")[1].split(";")[0])
    assert expires.timestamp() < time.time()
    assert browser.cookie(".proxy-session") is None
    end_session = urllib.parse.urlsplit(reply.location)
    assert (
        end_session._replace(query="").geturl()
        == world.provider.discovery()["end_session_endpoint"]
    )
    assert dict(urllib.parse.parse_qsl(end_session.query)) == {
        "client_id": CLIENT_ID,
        "post_logout_redirect_uri": f"{world.base}/.proxy/login",
    }
    assert sign_out(reply.location, provider_jar) == f"{world.base}/.proxy/login"

    before = world.upstream
    reply = browser.navigate("/.site.wiki/")
    assert (reply.status, reply.location) == (302, "/.proxy/login?next=%2F.site.wiki%2F")
    assert world.upstream == before
    start = browser.open("/.proxy/oidc/start")
    assert visit(start.location, provider_jar).shows_login_form


# --- 5. the audit trail and the metrics -----------------------------------------------


def test_audit_trail_and_metrics(world: World) -> None:
    """A sign-in, a failed one and a refusal each leave a line in the access log at
    once, naming who, from where, which site and path, and why; and count in the
    metrics."""

    def metrics() -> str:
        reply = Browser(world.proxy_port).open("/.proxy/metrics")
        assert reply.status == 200
        return reply.body

    logins = {"method": "oidc", "result": "sign-in"}
    failures = {"method": "oidc", "result": "sign-in-failed"}
    refusals = {"site": "hr", "reason": "user or group"}
    counted = metrics()
    offset = world.access_log.stat().st_size if world.access_log.exists() else 0

    browser = Browser(world.proxy_port)
    assert sign_in_through(browser, http.cookiejar.CookieJar(), "alice", "alice-pw").status == 302
    start = browser.open("/.proxy/oidc/start")
    state = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(start.location).query))["state"]
    denied = browser.open(f"/.proxy/oidc/callback?error=access_denied&state={state}")
    assert denied.status == 401
    before = world.upstream
    assert browser.navigate("/.site.hr/audit-me").status == 403
    assert world.upstream == before

    with open(world.access_log, encoding="utf-8") as log:
        log.seek(offset)
        lines = log.read().splitlines()
    audit = [line for line in lines if '"AUDIT ' in line]
    when = r"\[[^\]]+\]"
    expected = [
        rf'127\.0\.0\.1 - alice {when} "AUDIT sign-in /\.proxy/oidc/callback" 302 site=- method=oidc reason=""',
        rf'127\.0\.0\.1 - - {when} "AUDIT sign-in-failed /\.proxy/oidc/callback" 401 site=- method=oidc reason="provider: access_denied"',
        rf'127\.0\.0\.1 - alice {when} "AUDIT refused /\.site\.hr/audit-me" 403 site=hr method=- reason="user or group"',
    ]
    assert len(audit) == len(expected), audit
    for line, pattern in zip(audit, expected, strict=True):
        assert re.fullmatch(pattern, line), line

    now = metrics()

    def counted_since(name: str, labels: dict[str, str]) -> float:
        return metric(now, name, **labels) - metric(counted, name, **labels)

    assert counted_since("web_proxy_logins_total", logins) == 1
    assert counted_since("web_proxy_logins_total", failures) == 1
    assert counted_since("web_proxy_refusals_total", refusals) == 1
    assert metric(now, "web_proxy_logins_total", **logins) >= 1
