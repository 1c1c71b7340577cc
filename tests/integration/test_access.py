"""Access control over real HTTP: path rules, client networks, the sites a client is shown.
The backend counts every request, so that "refused" also means "never sent upstream"."""

from __future__ import annotations

import pytest
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from handlers.config.sites import BackendSite
from tests.support import start_backend, start_proxy

METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "PROPFIND"]


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
