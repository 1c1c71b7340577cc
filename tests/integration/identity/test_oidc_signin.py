"""Single sign-on through the proxy, against a real OpenID Connect provider
(tests/support/oidc_provider.py): a browser's whole way in (site, login page, provider,
callback, back to the page) and what the backend is then told of the user, signing out
at both ends, and the audit trail. One backend counts every request that gets past the
proxy, so that "refused" also means "nothing was asked upstream". The provider, the
proxies and the backend are conftest.py's sign_in_world, shared with
test_oidc_headers.py (what a client says of itself never reaches a backend)."""

from __future__ import annotations

import base64
import email.utils
import hashlib
import http.cookiejar
import json
import re
import time
import urllib.parse

import pytest
from tornado.web import decode_signed_value

from tests.support.identity import (
    CLIENT_ID,
    SCOPES,
    SECRET,
    Browser,
    sign_in_through,
    upstream_identity,
    wait_for_line,
)
from tests.support.identity import SignInWorld as World
from tests.support.oidc_provider import sign_in, sign_out, visit


@pytest.fixture(scope="module")
def world(sign_in_world: World) -> World:
    """The provider and the proxies signing in there (conftest.py)."""
    return sign_in_world


def metric(text: str, name: str, **labels: str) -> float:
    """A sample of the Prometheus text ``text``, whatever the order of its labels."""
    for line in text.splitlines():
        match = re.fullmatch(r"(\w+)\{(.*)\} (\S+)", line)
        if match and match[1] == name:
            found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match[2]))
            if found == labels:
                return float(match[3])
    return 0.0


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


# --- 2. signing out ends the provider's session too -----------------------------------


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


# --- 3. the audit trail and the metrics -----------------------------------------------


def test_audit_trail_and_metrics(world: World) -> None:
    """A sign-in, a failed one and a refusal each leave a line in the access log (the
    first two at once, the refusal with the log's next batch), naming who, from where, which site and path, and why; and count in the
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

    wait_for_line(world.access_log, '"AUDIT refused /.site.hr/audit-me"', offset)
    with open(world.access_log, encoding="utf-8") as log:
        log.seek(offset)
        lines = log.read().splitlines()
    audit = [line for line in lines if '"AUDIT ' in line]
    # Refusals of earlier tests may reach the log with its next batch, after the offset:
    # this test's lines begin at its sign-in.
    audit = audit[next(i for i, line in enumerate(audit) if '"AUDIT sign-in ' in line) :]
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
