"""Moving between sites: which requests move the .site cookie, and what happens to the
old site's fallback cookies when it moves."""

import json

import pytest

from tests.integration.proxy.backends import NAVIGATE, last, set_cookies


def test_switching_sites_clears_the_old_sites_fallback_cookies(stack):
    cookie = ".site=b; .site~b~sid=1; .site~a~sid=2; .site~a~theme=x"
    resp, _data = stack["proxy"].request("GET", "/.site.a/", headers={**NAVIGATE, "Cookie": cookie})
    cookies = set_cookies(resp)
    assert ".site=a; Path=/; HttpOnly; SameSite=Lax" in cookies
    # b's copies for the cookie fallback are expired; a's own cookies are untouched.
    expired = [c.split("=")[0] for c in cookies if "Max-Age=0" in c]
    assert expired == [".site~b~sid"]
    # a gets its own cookies only, by their own names.
    assert last(stack["a"]).header("Cookie") == "sid=2; theme=x"


def test_switching_keeps_cookies_when_not_configured(stack):
    resp, _ = stack["keep"].request(
        "GET", "/.site.a/", headers={**NAVIGATE, "Cookie": ".site=b; .site~b~sid=1; sid=1"}
    )
    assert ".site=a; Path=/; HttpOnly; SameSite=Lax" in set_cookies(resp)
    assert [c for c in set_cookies(resp) if "Max-Age=0" in c] == []
    assert last(stack["a"]).header("Cookie") == "sid=1"


def test_same_site_prefix_does_not_reset_cookie(stack):
    resp, _ = stack["proxy"].request(
        "GET", "/.site.a/", headers={**NAVIGATE, "Cookie": ".site=a; sid=1"}
    )
    assert set_cookies(resp) == []
    assert last(stack["a"]).header("Cookie") == "sid=1"


@pytest.mark.parametrize(
    "headers, switches",
    [
        (NAVIGATE, True),
        ({"Sec-Fetch-Mode": "navigate"}, True),
        # A page's image, script, fetch, frame or favicon never switches sites.
        ({"Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "image"}, False),
        ({"Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty"}, False),
        ({"Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "script"}, False),
        ({"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "iframe"}, False),
        # Without Sec-Fetch-* (plain http to a host that is not localhost): a request
        # for HTML, or one that names no page (a typed URL, curl), switches; a page's
        # subresource (it names the page in Referer) does not.
        ({"Accept": "text/html,application/xhtml+xml,*/*;q=0.8", "Referer": "http://x/"}, True),
        ({}, True),
        ({"Accept": "*/*"}, True),
        ({"Accept": "image/avif,image/webp,*/*", "Referer": "http://x/.site.b/"}, False),
        ({"Accept": "*/*", "Referer": "http://x/.site.b/"}, False),
    ],
)
def test_only_navigations_switch_sites(stack, headers, switches):
    resp, data = stack["proxy"].request(
        "GET", "/.site.a/favicon.ico", headers={**headers, "Cookie": ".site=b; .site~b~s=1"}
    )
    assert resp.status == 200 and json.loads(data)["backend"] == "a"
    switched = ".site=a; Path=/; HttpOnly; SameSite=Lax" in set_cookies(resp)
    assert switched is switches
    if not switches:
        assert set_cookies(resp) == []  # nor are b's cookies cleared
