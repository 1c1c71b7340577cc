"""Request headers as the backend gets them: URLs naming the backend, not the proxy;
hop-by-hop headers dropped; the X-Forwarded-* set."""

import json

from tests.integration.proxy.backends import last


def test_request_headers_name_the_backend_not_the_proxy(stack):
    """Destination, If, Origin and Referer as the backend would get them from a client
    talking to it directly: through the prefix and through the cookie alike."""
    proxy, b = stack["proxy"], stack["b"]
    here = f"127.0.0.1:{proxy.port}"
    for path, cookie, page in (
        ("/.site.b/doc", "", f"http://{here}/.site.b/list?x=1"),
        ("/doc", ".site=b", f"http://{here}/list?x=1"),  # reached through the cookie
    ):
        proxy.request(
            "COPY",
            path,
            headers={
                "Cookie": cookie,
                "Destination": f"http://{here}/.site.b/copy%20of%2Edoc",
                "If": f'<http://{here}/.site.b/doc> (["e1"] <opaquelocktoken:t>)',
                "Origin": f"http://{here}",
                "Referer": page,
            },
        )
        seen = last(b)
        assert seen.header("Destination") == f"{b.url}/copy%20of%2Edoc"
        assert seen.header("If") == f'<{b.url}/doc> (["e1"] <opaquelocktoken:t>)'
        assert seen.header("Origin") == b.url
        assert seen.header("Referer") == f"{b.url}/list?x=1"
    # Another configured site's URL becomes that site's backend URL (the backend then
    # refuses a cross-server COPY itself); other hosts' URLs stay as they are.
    proxy.request(
        "COPY",
        "/.site.b/doc",
        headers={"Destination": f"http://{here}/.site.a/x", "Origin": "http://evil.example"},
    )
    seen = last(b)
    assert seen.header("Destination") == f"{stack['a'].url}/x"
    assert seen.header("Origin") == "http://evil.example"


def test_knows_proxy_leaves_the_proxys_urls_in_request_headers(stack):
    proxy, b = stack["proxy"], stack["b"]
    here = f"127.0.0.1:{proxy.port}"
    headers = {"Origin": f"http://{here}", "Referer": f"http://{here}/.site.aware/p"}
    proxy.request("POST", "/.site.aware/form", b"x=1", headers)
    seen = last(b)
    assert (seen.header("Origin"), seen.header("Referer")) == (
        headers["Origin"],
        headers["Referer"],
    )
    assert seen.header("X-Forwarded-Host") == here


def test_upstream_request_headers(stack):
    _resp, data = stack["proxy"].request(
        "GET",
        "/.site.b/h",
        headers={
            "Host": "public.example:8000",
            "Connection": "keep-alive, X-Drop",
            "X-Drop": "1",
            "X-Keep": "2",
            "X-Forwarded-For": "203.0.113.9",
        },
    )
    h = dict(json.loads(data)["headers"])
    b = stack["b"]
    assert h["Host"] == b.netloc
    assert "X-Drop" not in h and h["X-Keep"] == "2"
    # The test client is on 127.0.0.1, which the default trusted_proxies trusts.
    assert h["X-Forwarded-For"] == "203.0.113.9, 127.0.0.1"
    assert h["X-Real-Ip"] == "127.0.0.1"
    assert h["X-Forwarded-Proto"] == "http"
    assert h["X-Forwarded-Host"] == "public.example:8000"
    assert h["X-Forwarded-Prefix"] == "/.site.b"
    assert "User-Agent" not in h or "pycurl" not in h["User-Agent"]
