"""What the sign-in tests of tests/integration/identity/ share, beside the servers their
conftest.py starts.

For LDAP: the directory's passwords, a fresh client address for every try (one supply
for the whole run, since the proxies are shared and throttle per address), posting the
login form and reading its outcome, and what a site's backend was told. For OpenID
Connect: the proxy's registration at the provider, a browser that keeps its cookies and
follows no redirect, signing in through the proxy, the two worlds conftest.py builds
(the provider, the proxies and the backend), and the check of a refused callback.
"""

from __future__ import annotations

import http.cookiejar
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from joserfc.jwk import RSAKey

from tests.support import IN_CI, Backend, Proxy, Seen, oidc_provider
from tests.support.oidc_provider import OidcProvider
from tests.support.slapd import Directory as Slapd

# --- LDAP: the directory's users and the proxy's login form ----------------------------

PASSWORDS = {
    "alice": "alice's correct horse",
    "bob": "bob's battery staple",
    "carol": "carol's password",
    "frank": "frank's password",
    "gina": "  spaced out  ",  # a directory password may begin and end with spaces
    "*": "the star's own password",
    ")(uid=*": "the bracket's own password",
}


def require_memberof(slapd: Slapd) -> None:
    """The memberOf-only tests need slapd's memberof overlay; CI must have it."""
    if not slapd.memberof:
        if IN_CI:
            pytest.fail("slapd's memberof module is missing (/usr/lib/ldap/memberof.la)")
        pytest.skip("slapd's memberof module is missing")


_addresses = (f"10.{a}.{b}.{c}" for a in range(1, 250) for b in range(256) for c in range(1, 255))


def new_client() -> str:
    """A client address no other try has used."""
    return next(_addresses)


class Outcome:
    """What a POST to the login form got: the status, the body, the session cookie
    (empty when none was set), the redirect and how long it took."""

    def __init__(self, resp: Any, body: bytes, seconds: float) -> None:
        self.status = resp.status
        self.body = body
        self.seconds = seconds
        self.location = resp.getheader("Location")
        self.retry_after = resp.getheader("Retry-After")
        cookies = [v for k, v in resp.getheaders() if k.lower() == "set-cookie"]
        sessions = [c.split(";")[0] for c in cookies if c.startswith(".proxy-session=")]
        self.cookie = sessions[0] if sessions and sessions[0] != '.proxy-session=""' else ""


def sign_in(
    proxy: Proxy,
    name: str,
    password: str,
    next_path: str = "/.site.staff/page",
    client: str | None = None,
) -> Outcome:
    body = urllib.parse.urlencode({"name": name, "password": password, "next": next_path})
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Real-IP": client or new_client(),
    }
    started = time.monotonic()
    resp, data = proxy.request("POST", "/.proxy/login", body.encode(), headers, timeout=20)
    return Outcome(resp, data, time.monotonic() - started)


def signed_in(proxy: Proxy, name: str, next_path: str = "/.site.staff/page") -> str:
    """The session cookie of ``name``, signed in with the right password."""
    outcome = sign_in(proxy, name, PASSWORDS[name], next_path)
    assert outcome.status == 302, (outcome.status, outcome.body[:500])
    assert outcome.location == next_path and outcome.cookie
    return outcome.cookie


def get(proxy: Proxy, path: str, cookie: str = "", **headers: str) -> tuple[int, bytes]:
    """GET from a fresh client address (no Referer: a navigation, so that without a
    session the proxy answers with the login page)."""
    sent = {"X-Real-IP": new_client(), **headers}
    if cookie:
        sent["Cookie"] = cookie
    resp, data = proxy.request("GET", path, headers=sent)
    return resp.status, data


def opens(proxy: Proxy, backends: dict[str, Backend], site: str, cookie: str) -> Any:
    """The request the backend of ``site`` got, if the session opened it; None when the
    proxy refused it (403, or without a session 401 or the login page), after checking
    that nothing reached the backend."""
    backend = backends[site]
    before = len(backend.seen)
    # What a client claims to be is never believed, whatever the site.
    forged = {
        "X-Forwarded-User": "root",
        "X-Forwarded-Email": "root@example.org",
        "X-Forwarded-Groups": "staff,ops,admins,visitors",
    }
    status, _ = get(proxy, f"/.site.{site}/page", cookie, **forged)
    if status == 200:
        assert len(backend.seen) == before + 1
        return backend.seen[-1]
    assert status == (403 if cookie else 302), status
    assert len(backend.seen) == before, f"a refused request reached {site}"
    return None


def identity_seen(seen: Any) -> tuple[str | None, str | None, str | None]:
    return (
        seen.header("X-Forwarded-User"),
        seen.header("X-Forwarded-Email"),
        seen.header("X-Forwarded-Groups"),
    )


# --- OpenID Connect: the registration, and a browser of the proxy ----------------------

SECRET = "the cookie secret of the single sign-on tests"  # the OIDC proxies'
CLIENT_ID, CLIENT_SECRET = "web-proxy", "rp-secret-1"
SCOPES = ("openid", "email", "profile", "groups")
IDENTITY = ("X-Forwarded-User", "X-Forwarded-Email", "X-Forwarded-Groups")


class NoRedirects(urllib.request.HTTPRedirectHandler):
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
        handlers = (urllib.request.HTTPCookieProcessor(self.jar), NoRedirects)
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
    return browser.open(oidc_provider.sign_in(start.location, login, password, provider_jar))


def upstream_identity(seen: Seen) -> tuple[str | None, ...]:
    return tuple(seen.header(name) for name in IDENTITY)


# --- OpenID Connect: the worlds of conftest.py ------------------------------------------


@dataclass
class SignInWorld:
    """The provider, a proxy that signs in there, one with no sign-in at all, and the
    backend of their sites (test_oidc_signin.py, test_oidc_headers.py)."""

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


def rsa_key(kid: str) -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"})


@dataclass
class StandIn:
    """An issuer whose token endpoint answers a code with the ID token the test put
    under it; its keys are the real provider's."""

    url: str = ""
    tokens: dict[str, str] = field(default_factory=dict)
    asked: list[dict[str, str]] = field(default_factory=list)


@dataclass
class SecurityWorld:
    """The provider with a key of the tests' own, a proxy that signs in there, one that
    signs in at the stand-in issuer, and their backend (test_oidc_tokens.py,
    test_oidc_security.py)."""

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


def started(browser: Browser, next_path: str = "/.site.wiki/") -> tuple[str, dict[str, str]]:
    """``/.proxy/oidc/start``: the provider's authorization URL and its query."""
    start = browser.open(f"/.proxy/oidc/start?{urllib.parse.urlencode({'next': next_path})}")
    assert start.status == 302, start
    return start.location, dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(start.location).query))


def refused(world: SecurityWorld, browser: Browser, reply: Reply, status: int, reason: str) -> None:
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


def wait_for_line(path: Path, needle: str, offset: int = 0, timeout: float = 5.0) -> None:
    """Until a line holding ``needle`` is in the file past ``offset``: refusals reach the
    access log with its next batch (handlers/ops/accesslog.py), within half a second."""
    deadline = time.monotonic() + timeout
    while True:
        if path.exists():
            with open(path, encoding="utf-8") as log:
                log.seek(offset)
                if needle in log.read():
                    return
        assert time.monotonic() < deadline, f"no line with {needle!r} in {path}"
        time.sleep(0.02)
