"""The login over real HTTP: required, then held by a signed cookie that expires, that no
other secret can make, that a second instance accepts; failures throttled. The backend
counts every request, so that "refused" also means "never sent upstream"."""

from __future__ import annotations

import email.utils
import http.client
import time
import urllib.parse

import pytest

from handlers.config.sites import BackendSite
from handlers.door.login import hash_password
from tests.support import start_backend, start_proxy

SECRET = "a test secret, long enough"
HASHES = {"alice": hash_password("alice-pass"), "bob": hash_password("bob-pass")}


def _login_proxy(loop_thread, table, **extra):
    options = {"users": HASHES, "cookie_secret": SECRET, "session_seconds": 3600, **extra}
    return start_proxy(loop_thread, table, **options)


def _log_in(proxy, name, password, next_path="/.site.open/"):
    body = urllib.parse.urlencode({"name": name, "password": password, "next": next_path})
    resp, data = proxy.request(
        "POST",
        "/.proxy/login",
        body.encode(),
        {"Content-Type": "application/x-www-form-urlencoded"},
    )
    cookie = resp.getheader("Set-Cookie") or ""
    return resp, cookie.split(";")[0]


@pytest.fixture(scope="module")
def login(loop_thread):
    backend = start_backend(loop_thread, "b")
    table = {
        "open": BackendSite("open", backend.url),
        "bobs": BackendSite("bobs", backend.url, users=["bob"]),
    }
    return backend, table, _login_proxy(loop_thread, table)


def test_login_is_required_and_then_holds(login):
    backend, _, proxy = login
    before = len(backend.seen)
    resp, _ = proxy.request("GET", "/.site.open/x", headers={"Accept": "text/html"})
    assert resp.status == 302
    assert resp.getheader("Location") == "/.proxy/login?next=%2F.site.open%2Fx"
    resp, _ = proxy.request("POST", "/.site.open/api", b"{}")  # a script's call: 401
    assert resp.status == 401
    resp, _ = proxy.request("GET", "/.proxy/")
    assert resp.status == 302 and resp.getheader("Location") == "/.proxy/login"
    assert len(backend.seen) == before
    resp, cookie = _log_in(proxy, "alice", "alice-pass", "/.site.open/x")
    assert resp.status == 302 and resp.getheader("Location") == "/.site.open/x"
    assert cookie.startswith(".proxy-session=")
    set_cookie = resp.getheader("Set-Cookie")
    assert (
        "HttpOnly" in set_cookie and "SameSite=Lax" in set_cookie and "Max-Age=3600" in set_cookie
    )
    resp, data = proxy.request("GET", "/.site.open/x", headers={"Cookie": cookie})
    assert resp.status == 200 and len(backend.seen) == before + 1
    # The proxy's own cookie never reaches the backend.
    assert backend.seen[-1].header("Cookie") is None
    # Per-site users: alice may not open bob's site, and does not see it listed.
    resp, _ = proxy.request("GET", "/.site.bobs/x", headers={"Cookie": cookie})
    assert resp.status == 403
    _, data = proxy.request("GET", "/.proxy/", headers={"Cookie": cookie})
    assert b'data-site="bobs"' not in data and b'data-site="open"' in data and b"alice" in data
    # Logout.
    resp, _ = proxy.request("POST", "/.proxy/logout", b"", {"Cookie": cookie})
    cleared = resp.getheader("Set-Cookie")
    assert resp.status == 302 and cleared.startswith('.proxy-session="";')
    expires = email.utils.parsedate_to_datetime(cleared.split("expires=")[1].split(";")[0])
    assert expires.timestamp() < time.time()


def test_wrong_password_tampered_and_foreign_cookies(loop_thread, login):
    backend, table, proxy = login
    resp, cookie = _log_in(proxy, "bob", "wrong")
    assert resp.status == 401 and cookie == ""
    resp, cookie = _log_in(proxy, "nobody", "x")
    assert resp.status == 401 and cookie == ""
    _, good = _log_in(proxy, "bob", "bob-pass")
    name, _, value = good.partition("=")
    tampered = f"{name}={value[:-2]}{'AA' if value[-2:] != 'AA' else 'BB'}"
    forged_user = f"{name}={value.replace('Ym9i', 'YWxpY2U=')}"  # "bob" -> "alice" in base64
    before = len(backend.seen)
    for cookie in (tampered, forged_user, f"{name}=garbage"):
        resp, _ = proxy.request("GET", "/.site.open/x", headers={"Cookie": cookie})
        assert resp.status == 401 or resp.status == 302
    # A cookie signed with another secret (another proxy's) is worthless here.
    other = _login_proxy(loop_thread, table, cookie_secret="another secret, long too")
    _, foreign = _log_in(other, "bob", "bob-pass")
    resp, _ = proxy.request("GET", "/.site.open/x", headers={"Cookie": foreign})
    assert resp.status in (401, 302)
    assert len(backend.seen) == before
    # A backend cannot set the proxy's cookie.
    resp, _ = proxy.request("GET", "/.site.open/x", headers={"Cookie": good})
    assert resp.status == 200


def test_a_second_instance_accepts_the_session(loop_thread, login):
    _, table, proxy = login
    _, cookie = _log_in(proxy, "bob", "bob-pass")
    twin = _login_proxy(loop_thread, table)  # same secret, no shared state
    resp, _ = twin.request("GET", "/.site.bobs/x", headers={"Cookie": cookie})
    assert resp.status == 200


def test_sessions_expire(loop_thread, login):
    _, table, _ = login
    brief = _login_proxy(loop_thread, table, session_seconds=60)
    _, cookie = _log_in(brief, "bob", "bob-pass")
    resp, _ = brief.request("GET", "/.site.open/x", headers={"Cookie": cookie})
    assert resp.status == 200
    # Signed values carry their time; the check takes the age in days: a proxy whose
    # sessions last 60 s refuses a cookie made 61 s ago.
    import tornado.web

    session = '{"n":"bob","m":"local","g":[]}'  # a session as the proxy writes it
    fresh = tornado.web.create_signed_value(SECRET, ".proxy-session", session).decode()
    resp, _ = brief.request("GET", "/.site.open/x", headers={"Cookie": f".proxy-session={fresh}"})
    assert resp.status == 200
    old = tornado.web.create_signed_value(
        SECRET, ".proxy-session", session, clock=lambda: time.time() - 61
    ).decode()
    resp, _ = brief.request("GET", "/.site.open/x", headers={"Cookie": f".proxy-session={old}"})
    assert resp.status == 401 or resp.status == 302


def test_failed_logins_are_throttled_per_client_and_per_user(loop_thread, login):
    _, table, _ = login
    proxy = _login_proxy(loop_thread, table)
    for _ in range(5):
        resp, _ = _log_in(proxy, "alice", "guess")
        assert resp.status == 401
    resp, _ = _log_in(proxy, "alice", "alice-pass")  # even the right password, now
    assert resp.status == 429 and int(resp.getheader("Retry-After")) > 0
    resp, _ = _log_in(proxy, "bob", "bob-pass")  # the same client: throttled too
    assert resp.status == 429


def test_login_page_and_config_checks(loop_thread, login):
    _, _, proxy = login
    resp, data = proxy.request("GET", "/.proxy/login?next=//evil.example/")
    assert resp.status == 200 and b'name="next" value="/.proxy/"' in data.replace(
        b"name=next", b'name="next"'
    )
    assert b"type=password" in data
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
    conn.request("GET", "/.proxy/login")
    assert conn.getresponse().status == 200
    conn.close()


def test_another_sites_page_cannot_sign_anyone_in_or_out(login):
    """Login CSRF: a form on another site posting to the login page would sign the
    victim in as the attacker (or out). Browsers say where a post comes from."""
    _, _, proxy = login
    body = urllib.parse.urlencode({"name": "bob", "password": "bob-pass"}).encode()
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    for origin in ({"Sec-Fetch-Site": "cross-site"}, {"Origin": "https://evil.example"}):
        resp, _ = proxy.request("POST", "/.proxy/login", body, {**form, **origin})
        assert resp.status == 403 and resp.getheader("Set-Cookie") is None, origin
    own = {"Origin": f"http://127.0.0.1:{proxy.port}", "Sec-Fetch-Site": "same-origin"}
    resp, _ = proxy.request("POST", "/.proxy/login", body, {**form, **own})
    assert resp.status == 302
    cookie = (resp.getheader("Set-Cookie") or "").split(";")[0]
    resp, _ = proxy.request(
        "POST", "/.proxy/logout", b"", {"Cookie": cookie, "Sec-Fetch-Site": "cross-site"}
    )
    assert resp.status == 403 and resp.getheader("Set-Cookie") is None
    # Refused like any other request: in the audit trail and its count.
    _, metrics = proxy.request("GET", "/.proxy/metrics")
    assert b'web_proxy_refusals_total{reason="cross-site post",site="-"} 3.0' in metrics


def test_a_user_removed_from_the_list_is_signed_out(loop_thread, login):
    backend, table, proxy = login
    _, cookie = _log_in(proxy, "bob", "bob-pass")
    fewer = _login_proxy(loop_thread, table, users={"alice": HASHES["alice"]})
    before = len(backend.seen)
    resp, _ = fewer.request("POST", "/.site.open/x", b"", {"Cookie": cookie})
    assert resp.status == 401 and len(backend.seen) == before
