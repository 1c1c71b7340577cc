"""Response headers as the browser gets them: Location and Refresh mapped to the proxy,
Set-Cookie scoped to the site, hop-by-hop headers dropped, nothing invented."""

from tests.integration.proxy.backends import set_cookies


def test_location_rewritten_for_any_configured_backend(stack):
    a, b = stack["a"], stack["b"]
    cases = {
        f"{a.url}/next?x=1": "/.site.a/next?x=1",
        f"{b.url}/x": "/.site.b/x",
        f"//{a.netloc}/y": "/.site.a/y",
        "/login": "/.site.b/login",
        "/.site.a/z": "/.site.a/z",
        "https://example.com/out": "https://example.com/out",
        "relative/path": "relative/path",
    }
    for to, expected in cases.items():
        for status in (301, 302, 303, 307, 308):
            resp, _ = stack["proxy"].request("GET", f"/.site.b/redirect?status={status}&to={to}")
            assert resp.status == status
            assert resp.headers["Location"] == expected, to


def test_refresh_header_rewritten(stack):
    resp, _ = stack["proxy"].request("GET", "/.site.a/refresh")
    assert resp.headers["Refresh"] == "0; url=/.site.a/after"


def test_set_cookies_scoped_to_the_site_and_domain_dropped(stack):
    resp, _ = stack["proxy"].request("GET", "/cookies", headers={"Cookie": ".site=b"})
    assert set_cookies(resp) == [
        "sid=abc; Path=/.site.b/; HttpOnly",
        ".site~b~sid=abc; Path=/; HttpOnly",
        "pref=a,b; Path=/.site.b/; Expires=Wed, 21 Oct 2037 07:28:00 GMT",
        ".site~b~pref=a,b; Path=/; Expires=Wed, 21 Oct 2037 07:28:00 GMT",
    ]


def test_hop_by_hop_response_headers_dropped(stack):
    resp, data = stack["proxy"].request("GET", "/hop", headers={"Cookie": ".site=b"})
    assert data == b"hop"
    assert resp.headers.get("X-Hop") is None and resp.headers.get("Keep-Alive") is None


def test_no_invented_etag_and_true_content_length(stack):
    resp, data = stack["proxy"].request("GET", "/.site.b/plain")
    assert "Etag" not in resp.headers
    assert int(resp.headers["Content-Length"]) == len(data)
