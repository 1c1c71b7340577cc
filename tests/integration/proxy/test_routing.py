"""Which backend a request reaches: by prefix, by the .site cookie, by the page's Referer;
and that a name outside the site table reaches nobody."""

import json

import pytest

from tests.integration.proxy.backends import NAVIGATE, set_cookies


def test_prefix_reaches_backend_and_sets_cookie(stack):
    resp, data = stack["proxy"].request("GET", "/.site.b/x/y?q=1&r=%20")
    assert resp.status == 200
    body = json.loads(data)
    assert body["backend"] == "b" and body["uri"] == "/x/y?q=1&r=%20"
    assert ".site=b; Path=/; HttpOnly; SameSite=Lax" in set_cookies(resp)


def test_cookie_routes_unprefixed_requests(stack):
    resp, data = stack["proxy"].request("GET", "/api/v1?x=1", headers={"Cookie": "sid=1; .site=b"})
    body = json.loads(data)
    assert (resp.status, body["backend"], body["uri"]) == (200, "b", "/api/v1?x=1")
    assert not any(c.startswith(".site=") for c in set_cookies(resp))
    assert dict(body["headers"])["Cookie"] == "sid=1"


def test_referer_routes_a_pages_unprefixed_requests(stack):
    """A page of site a that asks for /x means a's /x, even when another tab has moved
    the .site cookie to b."""
    proxy = stack["proxy"]
    here = f"127.0.0.1:{proxy.port}"
    page = f"http://{here}/.site.a/app/page"
    fetch = {"Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty", "Cookie": ".site=b"}
    resp, data = proxy.request("POST", "/api/x?y=1", b"{}", {**fetch, "Referer": page})
    body = json.loads(data)
    assert (resp.status, body["backend"], body["uri"]) == (200, "a", "/api/x?y=1")
    assert set_cookies(resp) == []
    # A navigation that way (location.href = "/x" in a script) is sent to the prefix.
    resp, _ = proxy.request("GET", "/next?q=1", headers={**NAVIGATE, "Referer": page})
    assert (resp.status, resp.headers["Location"]) == (302, "/.site.a/next?q=1")
    # Another host's page, or a page outside any prefix, is no evidence: the cookie
    # decides, as before.
    for referer in ("http://elsewhere.example/.site.a/", f"http://{here}/.proxy/"):
        resp, data = proxy.request("GET", "/api/x", headers={**fetch, "Referer": referer})
        assert json.loads(data)["backend"] == "b", referer
    # A Referer naming no configured site falls back to the cookie too.
    resp, data = proxy.request(
        "GET", "/x", headers={**fetch, "Referer": f"http://{here}/.site.zz/"}
    )
    assert json.loads(data)["backend"] == "b"


def test_missing_slash_after_prefix_redirects(stack):
    resp, _ = stack["proxy"].request("GET", "/.site.b?x=1")
    assert resp.status in (301, 302) and resp.headers["Location"] == "/.site.b/?x=1"


BAD_REQUESTS = [
    ("GET", "/.site.zz/", {}),
    ("GET", "/.site./", {}),
    ("GET", "/x", {"Cookie": ".site=../x"}),
    ("GET", "/x", {"Cookie": ".site=zz"}),
    ("GET", "/", {"Cookie": ".site=zz"}),
]


@pytest.mark.parametrize("method, target, headers", BAD_REQUESTS)
def test_unknown_site_is_404_and_reaches_nobody(stack, method, target, headers):
    before = {k: len(stack[k].seen) for k in ("a", "b", "outsider")}
    resp, data = stack["proxy"].request(method, target, headers=headers)
    assert resp.status == 404
    assert b"/.proxy/" in data and b"Traceback" not in data
    assert {k: len(stack[k].seen) for k in before} == before


def test_hostile_targets_never_reach_an_unlisted_backend(stack):
    outsider = stack["outsider"]
    proxy = stack["proxy"]
    o = outsider.netloc
    attempts = [
        ("GET", f"/.site.a@{o}/", {}),
        ("GET", f"/.site.{o}/", {}),
        ("GET", "/x", {"Cookie": f".site=http://{o}/"}),
        ("GET", "/x", {"Cookie": f".site={o}"}),
        ("GET", "/x", {"Host": o, "Cookie": ".site=zz"}),
    ]
    for method, target, headers in attempts:
        resp, _ = proxy.request(method, target, headers=headers)
        assert resp.status == 404, target
    # Absolute-form request lines, with and without a valid site cookie.
    for cookie in (b"", b"Cookie: .site=a\r\n"):
        answer = proxy.raw(
            f"GET http://{o}/ HTTP/1.1\r\nHost: {o}\r\n".encode()
            + cookie
            + b"Connection: close\r\n\r\n"
        )
        assert answer.startswith(b"HTTP/1.1 400 "), answer[:80]
    # A Host header naming the outsider, with a valid cookie: still site a, via its URL.
    resp, data = proxy.request("GET", "/who", headers={"Host": o, "Cookie": ".site=b"})
    assert json.loads(data)["backend"] == "b"
    assert outsider.seen == []
