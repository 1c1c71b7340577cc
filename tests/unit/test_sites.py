"""Site resolution and config validation: pure functions, no sockets."""

import pytest

from filters.rules import RuleError, SubsFilterRules
from handlers.config.errors import ConfigError
from handlers.config.sites import BackendSite, build_site_table
from handlers.door.routing import is_navigation, referer_site, resolve

TABLE = build_site_table(
    {
        "a": BackendSite("a", "http://10.1.2.3", "10.1.2.3", []),
        "img3.douban": BackendSite("img3.douban", "https://img3.example.com:8443", None, []),
        "b": BackendSite("b", "http://10.1.2.30:8080/", "10.1.2.30:8080", []),
    }
)


@pytest.mark.parametrize(
    "uri, cookie, name, rest, via_prefix",
    [
        ("/.site.a/x/y?q=1", None, "a", "/x/y?q=1", True),
        ("/.site.a/", "b", "a", "/", True),
        ("/.site.img3.douban/p.png", None, "img3.douban", "/p.png", True),
        ("/.site.a?x=1", None, "a", "/?x=1", True),
        ("/.site.a", None, "a", "/", True),
        ("/x?y", "b", "b", "/x?y", False),
        ("/x/.site.a/", "b", "b", "/x/.site.a/", False),
    ],
)
def test_resolve_known(uri, cookie, name, rest, via_prefix):
    r = resolve(uri, cookie, TABLE)
    assert r.site is not None and r.site.name == name
    assert (r.rest, r.via_prefix) == (rest, via_prefix)


@pytest.mark.parametrize(
    "uri, cookie",
    [
        ("/.site.zz/", None),
        ("/.site./", "a"),
        ("/.site.a@127.0.0.1:9/", None),
        ("/.site.a:80/", None),
        ("/.site.http://10.1.2.3/", None),
        ("/x", None),
        ("/x", "../x"),
        ("/x", "http://127.0.0.1:9/"),
        ("/x", ""),
        ("/x", "A"),
    ],
)
def test_resolve_unknown_never_names_a_site(uri, cookie):
    assert resolve(uri, cookie, TABLE).site is None


@pytest.mark.parametrize(
    "referer, host, expected",
    [
        ("http://proxy/.site.a/page", "proxy", "a"),
        ("https://Proxy:8443/.site.img3.douban/x?y", "proxy:8443", "img3.douban"),
        ("http://proxy/.site.a", "proxy", "a"),
        ("http://proxy/.site.zz/p", "proxy", "zz"),  # resolve() then ignores it
        ("http://other/.site.a/page", "proxy", None),  # another host's page
        ("http://proxy/page", "proxy", None),
        ("http://proxy/.proxy/", "proxy", None),
        ("http://proxy", "proxy", None),
        ("ftp://proxy/.site.a/", "proxy", None),
        ("/.site.a/page", "proxy", None),
        (None, "proxy", None),
        ("http://proxy/.site.a/", None, None),
    ],
)
def test_referer_site(referer, host, expected):
    assert referer_site(referer, host) == expected


def test_resolution_order_prefix_referer_cookie():
    assert resolve("/.site.a/x", "b", TABLE, "img3.douban").via == "prefix"
    r = resolve("/x", "b", TABLE, "a")
    assert (r.site.name, r.via, r.rest) == ("a", "referer", "/x")
    # A Referer naming no configured site is no evidence: the cookie decides.
    r = resolve("/x", "b", TABLE, "zz")
    assert (r.site.name, r.via) == ("b", "cookie")
    r = resolve("/x", None, TABLE, None)
    assert (r.site, r.via) == (None, "none")


@pytest.mark.parametrize(
    "headers, expected",
    [
        ({"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}, True),
        ({"Sec-Fetch-Mode": "navigate"}, True),
        ({"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "iframe"}, False),
        ({"Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty", "Accept": "text/html"}, False),
        ({"Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "image"}, False),
        ({"Accept": "text/html,*/*", "Referer": "http://p/.site.a/"}, True),
        ({"Accept": "application/xhtml+xml", "Referer": "http://p/"}, True),
        ({"Accept": "image/webp,*/*", "Referer": "http://p/.site.a/"}, False),
        ({"Accept": "*/*", "Referer": "http://p/.site.a/"}, False),
        ({"Accept": "*/*"}, True),
        ({}, True),
    ],
)
def test_is_navigation(headers, expected):
    assert is_navigation(headers) is expected


def test_site_fields_derived_from_url():
    site = TABLE.get("img3.douban")
    assert (site.scheme, site.host, site.port, site.host_header) == (
        "https",
        "img3.example.com",
        8443,
        "img3.example.com:8443",
    )
    assert TABLE.get("a").base_url == "http://10.1.2.3"
    assert TABLE.get("b").base_url == "http://10.1.2.30:8080"


@pytest.mark.parametrize(
    "url, expected",
    [
        ("http://10.1.2.3/img/a.png", ("a", "/img/a.png")),
        ("http://10.1.2.3:80/img", ("a", "/img")),
        ("HTTP://10.1.2.3", ("a", "/")),
        ("//10.1.2.3/x?y#z", ("a", "/x?y#z")),
        ("http://10.1.2.3?q", ("a", "/?q")),
        ("https://img3.example.com:8443/p", ("img3.douban", "/p")),
        ("http://10.1.2.30:8080/x", ("b", "/x")),
        ("http://10.1.2.30/x", None),
        ("https://10.1.2.3/x", ("a", "/x")),  # its netloc in the other scheme
        ("https://10.1.2.3:80/x", None),
        ("http://user@10.1.2.3/x", None),
        ("http://example.com/", None),
        ("/local", None),
        ("mailto:x@10.1.2.3", None),
    ],
)
def test_site_for_url(url, expected):
    found = TABLE.site_for_url(url)
    assert (None if found is None else (found[0].name, found[1])) == expected


@pytest.mark.parametrize(
    "forward_list, message",
    [
        ({}, "empty"),
        ([], "must be a dict"),
        ({"a/b": BackendSite("a/b", "http://x", None, [])}, "'a/b'"),
        ({".x": BackendSite(".x", "http://x", None, [])}, "'.x'"),
        ({"a": BackendSite("a", "ftp://x", None, [])}, "http:// or https://"),
        ({"a": BackendSite("a", "10.1.2.3", None, [])}, "http:// or https://"),
        ({"a": BackendSite("a", "http://", None, [])}, "no host"),
        ({"a": BackendSite("a", "http://10.1.2.3", "10.1.2.4", [])}, "does not match"),
        ({"a": BackendSite("a", "http://10.1.2.3:81", "10.1.2.3", [])}, "does not match"),
        ({"a": BackendSite("a", "http://10.1.2.3/app", None, [])}, "scheme://host[:port]"),
        ({"a": BackendSite("a", "http://u:p@10.1.2.3", None, [])}, "user:password"),
        ({"a": BackendSite("a", "http://10.1.2.3:99999", None, [])}, "invalid port"),
        ({"a": BackendSite("a", "http://x", None, ["rule"])}, "not a SubsFilterRules"),
        ({"a": BackendSite("a", "http://x", None, [], timeout=0)}, "timeout"),
        ({"a": BackendSite("a", "http://x", None, [], ca_certs="/nonexistent.pem")}, "ca_certs"),
        ({"a": "http://x"}, "expected BackendSite"),
        # Every keyword is checked by its declaration (handlers/config/backend.py).
        ({"a": BackendSite("a", "http://x", shim=1)}, "shim=1: expected True or False"),
        ({"a": BackendSite("a", "http://x", charset="nope")}, "charset='nope': expected"),
        ({"a": BackendSite("a", "http://x", deny=["("])}, "'(' is not a regular expression"),
        ({"a": BackendSite("a", "http://x", users="bob")}, "users='bob'"),
        ({"a": BackendSite("a", "http://x", client_allow="10.0.0.0/8")}, "expected a list"),
        ({"a": BackendSite("a", "https://x", ca_certs="/nonexistent.pem")}, "does not exist"),
    ],
)
def test_bad_config_names_site_and_value(forward_list, message):
    with pytest.raises(ConfigError) as info:
        build_site_table(forward_list)
    assert message in str(info.value)
    if isinstance(forward_list, dict) and forward_list:
        key = next(iter(forward_list))
        assert repr(key) in str(info.value)
        # The loader looks for the line of the site's declaration by its name.
        assert info.value.site == key


def test_key_wins_over_name_with_warning(caplog):
    table = build_site_table(
        {"img3.douban": BackendSite("douban", "http://img3.example.com", None, [])}
    )
    assert table.get("img3.douban") is not None and table.get("douban") is None
    assert "differs from its forward_list key" in caplog.text


def test_default_port_in_netloc_accepted():
    table = build_site_table({"a": BackendSite("a", "https://h.example", "h.example:443", [])})
    assert table.get("a").host_header == "h.example"


@pytest.mark.parametrize(
    "args, message",
    [
        (("(", "x", "y"), "re_uri"),
        ((".", "[", "y"), "re_src"),
        ((".", "a", r"\1"), "invalid group reference"),
        ((".", "(?P<x>a)", r"\g<y>"), "unknown group name"),
        ((".", "", "y"), "must not be empty"),
    ],
)
def test_bad_rules(args, message):
    with pytest.raises(RuleError, match=message.replace("\\", "\\\\")):
        SubsFilterRules(*args)
