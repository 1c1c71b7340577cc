"""Access control over real HTTP: path rules, client networks, the login. The backend
counts every request, so that "refused" also means "never sent upstream"."""

from __future__ import annotations

import email.utils
import http.client
import time
import urllib.parse

import pytest
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from handlers.config.sites import BackendSite
from handlers.door.access import Throttle, client_ip, in_networks, networks, path_allowed
from handlers.door.login import hash_password, safe_next
from tests.support import start_backend, start_proxy

SECRET = "a test secret, long enough"
HASHES = {"alice": hash_password("alice-pass"), "bob": hash_password("bob-pass")}
METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "PROPFIND"]


# --- pure parts ------------------------------------------------------------------------


def test_client_ip_believes_only_trusted_peers():
    trusted = lambda a: a in ("127.0.0.1", "10.0.0.2")  # noqa: E731
    forged = {"X-Forwarded-For": "10.9.9.9", "X-Real-Ip": "10.9.9.9"}
    assert client_ip("203.0.113.7", forged, trusted) == "203.0.113.7"
    assert client_ip("127.0.0.1", {"X-Real-Ip": "198.51.100.4"}, trusted) == "198.51.100.4"
    # The last address a trusted proxy did not add: what the client wrote before it
    # (10.9.9.9, forged) is not believed.
    chain = {"X-Forwarded-For": "10.9.9.9, 198.51.100.4, 10.0.0.2"}
    assert client_ip("127.0.0.1", chain, trusted) == "198.51.100.4"
    assert client_ip("127.0.0.1", {}, trusted) == "127.0.0.1"


def test_networks_and_paths():
    nets = networks(["10.0.0.0/8", "2001:db8::/32"])
    assert in_networks("10.1.2.3", nets) and in_networks("2001:db8::1", nets)
    assert not in_networks("11.0.0.1", nets) and not in_networks("junk", nets)
    assert in_networks("11.0.0.1", ())
    import re

    allow, deny = (re.compile("^/pub/"),), (re.compile(r"secret|\?debug"),)
    assert path_allowed("/pub/a", allow, deny)
    assert not path_allowed("/pub/secret", allow, deny)
    assert not path_allowed("/pub/a?debug=1", allow, deny)
    assert not path_allowed("/private", allow, deny)
    assert path_allowed("/private", (), deny)


def test_throttle_per_key_with_its_window():
    throttle = Throttle(limit=3, window=60)
    for t in (0, 1, 2):
        assert throttle.wait("client x", "user a", now=t) == 0
        throttle.failed("client x", "user a", now=t)
    assert throttle.wait("user a", now=3) == pytest.approx(57)
    assert throttle.wait("client y", "user b", now=3) == 0
    assert throttle.wait("client x", now=61) == 0  # the oldest failure aged out


def test_safe_next_stays_on_the_proxy():
    assert safe_next("/.site.a/x?y") == "/.site.a/x?y"
    for bad in ("//evil.example/", "/\\evil.example", "http://evil.example/", "", None):
        assert safe_next(bad) == "/.proxy/"


# --- over HTTP -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sites(loop_thread):
    backend = start_backend(loop_thread, "b")
    sites = {
        "rules": BackendSite(
            "rules", backend.url, allow=[r"^/pub/", r"^/ws"], deny=[r"secret", r"[?&]debug="]
        ),
        "open": BackendSite("open", backend.url),
        "lan": BackendSite("lan", backend.url, client_allow=["10.0.0.0/8"]),
    }
    return backend, sites


def count(backend):
    return len(backend.seen)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(
    "path, allowed",
    [
        ("/pub/page", True),
        ("/pub/secret.txt", False),
        ("/pub/page?debug=1", False),
        ("/pub/page?x=1&debug=1", False),
        ("/private", False),
    ],
)
def test_path_rules_for_the_prefix_and_the_cookie(loop_thread, sites, method, path, allowed):
    backend, table = sites
    proxy = _proxy(loop_thread, table)
    for target, headers in ((f"/.site.rules{path}", {}), (path, {"Cookie": ".site=rules"})):
        before = count(backend)
        resp, data = proxy.request(method, target, b"x" if method in ("POST", "PUT") else None,
                                   headers)  # fmt: skip
        if allowed:
            assert resp.status == 200 and count(backend) == before + 1
        else:
            assert resp.status == 403 and count(backend) == before
            # The page says nothing of what is upstream.
            assert method == "HEAD" or (b"pub" not in data and b"secret" not in data)


_PROXIES: dict = {}


def _proxy(loop_thread, table, **options):
    key = (id(table), tuple(sorted(options.items(), key=str)))
    if key not in _PROXIES:
        _PROXIES[key] = start_proxy(loop_thread, table, **options)
    return _PROXIES[key]


def test_websockets_obey_the_path_rules(loop_thread, sites):
    backend, table = sites
    proxy = _proxy(loop_thread, table)

    async def connect(path):
        request = HTTPRequest(f"ws://127.0.0.1:{proxy.port}{path}")
        with pytest.raises(HTTPClientError) as info:
            await websocket_connect(request)
        return info.value.code

    before = count(backend)
    assert loop_thread.run(connect("/.site.rules/private/ws")) == 403
    assert count(backend) == before


def test_client_networks_from_the_socket_and_from_trusted_proxies(loop_thread, sites):
    backend, table = sites
    # 127.0.0.1 trusted (nginx in front): its X-Real-IP / X-Forwarded-For name the client.
    trusting = _proxy(loop_thread, table, trusted_proxies=("127.0.0.1",))
    resp, _ = trusting.request("GET", "/.site.lan/x", headers={"X-Real-IP": "10.2.3.4"})
    assert resp.status == 200
    resp, _ = trusting.request("GET", "/.site.lan/x", headers={"X-Forwarded-For": "192.0.2.9"})
    assert resp.status == 403
    resp, _ = trusting.request("GET", "/.site.lan/x")  # the socket: 127.0.0.1, not in 10/8
    assert resp.status == 403
    # From an untrusted peer, a forged X-Forwarded-For changes nothing.
    untrusting = _proxy(loop_thread, table, trusted_proxies=("10.255.255.255",))
    before = count(backend)
    for forged in ({"X-Forwarded-For": "10.2.3.4"}, {"X-Real-IP": "10.2.3.4"}):
        resp, _ = untrusting.request("GET", "/.site.lan/x", headers=forged)
        assert resp.status == 403
    assert count(backend) == before
    # The whole proxy's client_allow.
    closed = _proxy(loop_thread, table, client_allow=("192.0.2.0/24",))
    resp, _ = closed.request("GET", "/.site.open/x")
    assert resp.status == 403
    resp, data = closed.request("GET", "/.proxy/")
    assert resp.status == 200 and b"data-site=" not in data  # no site to show


def test_the_site_list_shows_only_the_sites_a_client_may_open(loop_thread, sites):
    _, table = sites
    proxy = _proxy(loop_thread, table, trusted_proxies=("127.0.0.1",))
    _, data = proxy.request("GET", "/.proxy/", headers={"X-Real-IP": "192.0.2.1"})
    assert b'data-site="open"' in data and b'data-site="rules"' in data
    assert b'data-site="lan"' not in data
    _, data = proxy.request("GET", "/.proxy/", headers={"X-Real-IP": "10.0.0.7"})
    assert b'data-site="lan"' in data
    resp, _ = proxy.request("GET", "/.proxy/status/lan", headers={"X-Real-IP": "192.0.2.1"})
    assert resp.status == 404
    resp, data = proxy.request("GET", "/.proxy/status/nosuchsite")
    assert resp.status == 404 and b"Traceback" not in data
    resp, data = proxy.request("GET", "/.proxy/status/open")
    assert resp.status == 200 and b'"up": true' in data


# --- the login -------------------------------------------------------------------------


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
    before = count(backend)
    resp, _ = proxy.request("GET", "/.site.open/x", headers={"Accept": "text/html"})
    assert resp.status == 302
    assert resp.getheader("Location") == "/.proxy/login?next=%2F.site.open%2Fx"
    resp, _ = proxy.request("POST", "/.site.open/api", b"{}")  # a script's call: 401
    assert resp.status == 401
    resp, _ = proxy.request("GET", "/.proxy/")
    assert resp.status == 302 and resp.getheader("Location") == "/.proxy/login"
    assert count(backend) == before
    resp, cookie = _log_in(proxy, "alice", "alice-pass", "/.site.open/x")
    assert resp.status == 302 and resp.getheader("Location") == "/.site.open/x"
    assert cookie.startswith(".proxy-session=")
    set_cookie = resp.getheader("Set-Cookie")
    assert (
        "HttpOnly" in set_cookie and "SameSite=Lax" in set_cookie and "Max-Age=3600" in set_cookie
    )
    resp, data = proxy.request("GET", "/.site.open/x", headers={"Cookie": cookie})
    assert resp.status == 200 and count(backend) == before + 1
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
    before = count(backend)
    for cookie in (tampered, forged_user, f"{name}=garbage"):
        resp, _ = proxy.request("GET", "/.site.open/x", headers={"Cookie": cookie})
        assert resp.status == 401 or resp.status == 302
    # A cookie signed with another secret (another proxy's) is worthless here.
    other = _login_proxy(loop_thread, table, cookie_secret="another secret, long too")
    _, foreign = _log_in(other, "bob", "bob-pass")
    resp, _ = proxy.request("GET", "/.site.open/x", headers={"Cookie": foreign})
    assert resp.status in (401, 302)
    assert count(backend) == before
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

    old = tornado.web.create_signed_value(
        SECRET, ".proxy-session", "bob", clock=lambda: time.time() - 61
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
