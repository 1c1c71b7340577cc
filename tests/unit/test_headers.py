"""Header rewriting both ways: pure functions, no sockets."""

import pytest
from tornado.httputil import HTTPHeaders

from handlers.config.sites import BackendSite, build_site_table
from handlers.mapping.cookies import cookie_value
from handlers.mapping.headers import (
    downstream_headers,
    proxied_refresh,
    upstream_headers,
)
from handlers.mapping.urlmap import to_proxy

TABLE = build_site_table(
    {
        "a": BackendSite("a", "http://10.1.2.3", None, []),
        "b": BackendSite("b", "https://intranet.example:8443", None, []),
    }
)
A = TABLE.get("a")


def headers(*pairs):
    h = HTTPHeaders()
    for k, v in pairs:
        h.add(k, v)
    return h


def test_cookie_value_and_strip():
    raw = "x=1; .site=a; y=2"
    assert cookie_value(raw) == "a"
    assert cookie_value("x=1") is None and cookie_value(None) is None
    assert cookie_value('.site="b"') == "b"


def test_upstream_headers_untrusted_peer():
    incoming = headers(
        ("Host", "proxy.example"),
        ("Connection", "keep-alive, X-Secret"),
        ("X-Secret", "hop"),
        ("Keep-Alive", "timeout=5"),
        ("TE", "trailers"),
        ("Upgrade", "h2c"),
        ("Proxy-Authorization", "Basic eA=="),
        ("Cookie", "sid=1; .site=a"),
        ("Cookie", "theme=dark"),
        ("X-Forwarded-For", "6.6.6.6"),
        ("X-Real-IP", "6.6.6.6"),
        ("X-Forwarded-Prefix", "/evil"),
        ("Accept", "text/html"),
        ("Content-Length", "3"),
    )
    out = upstream_headers(
        incoming,
        A,
        TABLE,
        remote_ip="192.0.2.7",
        scheme="http",
        trusted_peer=False,
        prefix="/.site.a",
    )
    assert out["Host"] == "10.1.2.3"
    assert out["Accept"] == "text/html"
    for gone in (
        "Connection",
        "X-Secret",
        "Keep-Alive",
        "TE",
        "Upgrade",
        "Proxy-Authorization",
        "Content-Length",
    ):
        assert gone not in out, gone
    assert out["Cookie"] == "sid=1; theme=dark"
    assert out["X-Forwarded-For"] == "192.0.2.7"
    assert out["X-Real-Ip"] == "192.0.2.7"
    assert out["X-Forwarded-Proto"] == "http" and "X-Scheme" not in out
    assert out["X-Forwarded-Host"] == "proxy.example"
    assert out["X-Forwarded-Prefix"] == "/.site.a"
    assert out["Accept"] == "text/html"


def test_repeated_fields_are_joined():
    out = upstream_headers(
        headers(("Accept", "text/html"), ("Accept", "*/*"), ("Cookie", "a=1"), ("Cookie", "b=2")),
        A,
        TABLE,
        remote_ip="1.2.3.4",
        scheme="http",
        trusted_peer=False,
        prefix=None,
    )
    assert out["Accept"] == "text/html, */*"
    assert out["Cookie"] == "a=1; b=2"


def test_upstream_headers_trusted_peer_appends():
    incoming = headers(
        ("Host", "proxy.example"),
        ("X-Forwarded-For", "203.0.113.5"),
        ("X-Real-IP", "203.0.113.5"),
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Host", "public.example"),
        ("Cookie", ".site=a"),
    )
    out = upstream_headers(
        incoming, A, TABLE, remote_ip="127.0.0.1", scheme="http", trusted_peer=True, prefix=None
    )
    assert out["X-Forwarded-For"] == "203.0.113.5, 127.0.0.1"
    assert out["X-Real-Ip"] == "203.0.113.5"
    assert out["X-Forwarded-Proto"] == "https"
    assert out["X-Forwarded-Host"] == "public.example"
    assert "Cookie" not in out and "X-Forwarded-Prefix" not in out


def test_upstream_headers_send_only_the_sites_cookies():
    out = upstream_headers(
        headers(("Cookie", "sid=1; .site=b; .site~b~sid=9; .site~a~theme=dark")),
        A,
        TABLE,
        remote_ip="1.2.3.4",
        scheme="http",
        trusted_peer=False,
        prefix=None,
    )
    assert out["Cookie"] == "sid=1; theme=dark"
    out = upstream_headers(
        headers(("Cookie", ".site=a; .site~b~sid=9")),
        A,
        TABLE,
        remote_ip="1.2.3.4",
        scheme="http",
        trusted_peer=False,
        prefix=None,
    )
    assert "Cookie" not in out


@pytest.mark.parametrize(
    "location, expected",
    [
        ("http://10.1.2.3/img/a.png", "/.site.a/img/a.png"),
        ("http://10.1.2.3", "/.site.a/"),
        ("http://10.1.2.3:80/x?y=1", "/.site.a/x?y=1"),
        ("//10.1.2.3/x", "/.site.a/x"),
        ("https://intranet.example:8443/login", "/.site.b/login"),
        ("/login?next=/x", "/.site.a/login?next=/x"),
        ("/.site.b/x", "/.site.b/x"),
        ("http://10.1.2.3/.site.a/x", "/.site.a/x"),
        ("login", "login"),
        ("../up", "../up"),
        ("https://example.com/x", "https://example.com/x"),
        ("http://10.1.2.30/x", "http://10.1.2.30/x"),
        # The backend's netloc in the other scheme is the same backend.
        ("https://10.1.2.3/x", "/.site.a/x"),
        ("http://intranet.example:8443/x", "/.site.b/x"),
        # ... but not another port: https on port 80 is not that server.
        ("https://10.1.2.3:80/x", "https://10.1.2.3:80/x"),
        ("http://10.1.2.3:443/x", "http://10.1.2.3:443/x"),
    ],
)
def test_proxied_url(location, expected):
    assert to_proxy(location, TABLE, A) == expected


def test_refresh():
    assert proxied_refresh("5; url=http://10.1.2.3/x", TABLE, A) == "5; url=/.site.a/x"
    assert proxied_refresh("0;URL='/y'", TABLE, A) == "0;URL='/.site.a/y'"
    assert proxied_refresh("10", TABLE, A) == "10"


def test_downstream_headers():
    upstream = headers(
        ("Content-Type", "text/html"),
        ("Transfer-Encoding", "chunked"),
        ("Connection", "close, X-Hop"),
        ("X-Hop", "1"),
        ("Location", "http://10.1.2.3/next"),
        ("Content-Location", "http://10.1.2.3/doc"),
        ("Set-Cookie", "a=1; Domain=10.1.2.3"),
        ("Set-Cookie", "b=2, with comma; Path=/"),
        ("Content-Length", "10"),
    )
    out = list(downstream_headers(list(upstream.get_all()), TABLE, A, "/dir/page", False))
    assert out == [
        ("Content-Type", "text/html"),
        ("Location", "/.site.a/next"),
        ("Content-Location", "/.site.a/doc"),
        # Domain naming the backend dropped; no Path: the backend's default, /dir.
        ("Set-Cookie", "a=1; Path=/.site.a/dir"),
        ("Set-Cookie", ".site~a~a=1; Path=/dir"),
        ("Set-Cookie", "b=2, with comma; Path=/.site.a/"),
        ("Set-Cookie", ".site~a~b=2, with comma; Path=/"),
        ("Content-Length", "10"),
    ]


def test_x_scheme_from_a_trusted_proxy_becomes_x_forwarded_proto():
    out = upstream_headers(
        headers(("Host", "p"), ("X-Scheme", "https")),
        A,
        TABLE,
        remote_ip="127.0.0.1",
        scheme="http",
        trusted_peer=True,
        prefix=None,
    )
    assert out["X-Forwarded-Proto"] == "https"
    out = upstream_headers(
        headers(("Host", "p"), ("X-Scheme", "https")),
        A,
        TABLE,
        remote_ip="203.0.113.9",
        scheme="http",
        trusted_peer=False,
        prefix=None,
    )
    assert out["X-Forwarded-Proto"] == "http" and "X-Scheme" not in out
