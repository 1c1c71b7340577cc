"""Backend cookies kept per site: the Set-Cookie mapping and the Cookie filter, pure."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from handlers.mapping.cookies import (
    cookies_for_site,
    default_path,
    expire_fallback_copies,
    fallback_name,
    scope_set_cookie,
)

HOSTS = frozenset({"10.1.2.3", "intranet.example"})


def scope(value, path="/", secure_client=False, site="wiki"):
    return scope_set_cookie(value, site, path, secure_client, HOSTS)


@pytest.mark.parametrize(
    "request_path, expected",
    [
        ("/", "/"),
        ("/index.php", "/"),
        ("/wiki/index.php", "/wiki"),
        ("/wiki/", "/wiki"),
        ("/a/b/c?x=/y/z", "/a/b"),
        ("", "/"),
    ],
)
def test_default_path(request_path, expected):
    assert default_path(request_path) == expected


@pytest.mark.parametrize(
    "set_cookie, request_path, expected",
    [
        # A sub-path application's session: scoped under the prefix, and a fallback
        # copy at the backend's own path.
        (
            "sid=abc; Path=/wiki/; HttpOnly",
            "/wiki/index.php",
            [
                "sid=abc; Path=/.site.wiki/wiki/; HttpOnly",
                ".site~wiki~sid=abc; Path=/wiki/; HttpOnly",
            ],
        ),
        # A cookie for "/": the whole site, and only this site.
        (
            "theme=dark; Path=/",
            "/x",
            ["theme=dark; Path=/.site.wiki/", ".site~wiki~theme=dark; Path=/"],
        ),
        # No Path: the browser would have used the backend path's directory.
        (
            "a=1",
            "/app/page",
            ["a=1; Path=/.site.wiki/app", ".site~wiki~a=1; Path=/app"],
        ),
        # A Path that is not absolute is ignored (RFC 6265 5.2.4): the default applies.
        ("a=1; Path=rel", "/app/page", ["a=1; Path=/.site.wiki/app", ".site~wiki~a=1; Path=/app"]),
        # Deletion and expiry follow both copies: every attribute goes to each.
        (
            "sid=; Path=/wiki/; Max-Age=0",
            "/wiki/logout",
            ["sid=; Path=/.site.wiki/wiki/; Max-Age=0", ".site~wiki~sid=; Path=/wiki/; Max-Age=0"],
        ),
        (
            "sid=x; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/",
            "/",
            [
                "sid=x; Path=/.site.wiki/; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
                ".site~wiki~sid=x; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
            ],
        ),
        # SameSite is kept.
        (
            "s=1; Path=/; SameSite=Strict",
            "/",
            ["s=1; Path=/.site.wiki/; SameSite=Strict", ".site~wiki~s=1; Path=/; SameSite=Strict"],
        ),
        # A Domain naming a backend is dropped; a foreign one is left to the browser.
        ("d=1; Domain=10.1.2.3; Path=/", "/", ["d=1; Path=/.site.wiki/", ".site~wiki~d=1; Path=/"]),
        ("d=1; domain=.example; Path=/", "/", ["d=1; Path=/.site.wiki/", ".site~wiki~d=1; Path=/"]),
        (
            "d=1; Domain=other.org; Path=/",
            "/",
            [
                "d=1; Path=/.site.wiki/; Domain=other.org",
                ".site~wiki~d=1; Path=/; Domain=other.org",
            ],
        ),
        # A value with "=" and "," in it stays whole.
        ("t=a=b, c; Path=/", "/", ["t=a=b, c; Path=/.site.wiki/", ".site~wiki~t=a=b, c; Path=/"]),
        # A backend cannot set the proxy's names: only a fallback copy, for itself.
        (".site=evil; Path=/", "/", [".site~wiki~.site=evil; Path=/"]),
        (".site~other~sid=x; Path=/", "/", [".site~wiki~.site~other~sid=x; Path=/"]),
        # Nor the login's session: only a fallback copy, whose name the proxy never reads.
        (".proxy-session=x; Path=/", "/", [".site~wiki~.proxy-session=x; Path=/"]),
        # __Host- cookies must keep Path=/: only the fallback copy can exist.
        ("__Host-id=1; Path=/; Secure", "/", [".site~wiki~__Host-id=1; Path=/"]),
    ],
)
def test_scope_set_cookie(set_cookie, request_path, expected):
    assert scope(set_cookie, request_path) == expected


def test_secure_follows_the_client_connection():
    # Over plain http the browser would refuse a Secure cookie, and SameSite=None
    # without Secure: both are dropped there, kept over https.
    value = "s=1; Path=/; Secure; SameSite=None"
    assert scope(value) == ["s=1; Path=/.site.wiki/", ".site~wiki~s=1; Path=/"]
    assert scope(value, secure_client=True) == [
        "s=1; Path=/.site.wiki/; Secure; SameSite=None",
        ".site~wiki~s=1; Path=/; Secure; SameSite=None",
    ]
    # __Secure- needs Secure: over http only the fallback copy (whose name no longer
    # starts with __Secure-) can be stored.
    assert scope("__Secure-x=1; Path=/; Secure") == [".site~wiki~__Secure-x=1; Path=/"]
    assert scope("__Secure-x=1; Path=/; Secure", secure_client=True) == [
        "__Secure-x=1; Path=/.site.wiki/; Secure",
        ".site~wiki~__Secure-x=1; Path=/; Secure",
    ]


def test_cookies_for_site_keeps_sites_apart():
    header = "; ".join(
        [
            ".site=wiki",
            "sid=scoped",  # the scoped copy (sent only under /.site.wiki/...)
            ".site~wiki~sid=fallback",  # its fallback copy: the scoped one wins
            ".site~wiki~lang=en",  # a fallback copy alone: given back by its own name
            ".site~app~sid=other",  # another site's: never sent to this one
            ".site~app~lang=fr",
        ]
    )
    assert cookies_for_site(header, "wiki") == "sid=scoped; lang=en"
    assert cookies_for_site(header, "app") == "sid=scoped; lang=fr"
    assert cookies_for_site(".site=wiki", "wiki") is None
    # The proxy's own session cookie never reaches a backend.
    assert cookies_for_site(".proxy-session=signed; sid=1", "wiki") == "sid=1"
    assert cookies_for_site(None, "wiki") is None
    assert cookies_for_site("", "wiki") is None
    # A site whose name is a prefix of another's does not get the other's cookies.
    assert cookies_for_site(".site~ab~x=1; .site~a~y=2", "a") == "y=2"


def test_expire_fallback_copies_of_the_site_left():
    header = ".site=a; .site~a~sid=1; .site~b~sid=2; plain=3"
    assert expire_fallback_copies(header, "a") == [
        ".site~a~sid=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT"
    ]
    assert expire_fallback_copies(None, "a") == []


names = st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=126, exclude_characters=";=,~"),
    min_size=1,
    max_size=12,
).filter(lambda n: not n.startswith((".site", "__")))
values = st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=126, exclude_characters=";"),
    max_size=12,
)
site_names = st.from_regex(r"[a-z][a-z0-9._-]{0,8}", fullmatch=True)
paths = st.from_regex(r"(/[a-z0-9]{1,5}){0,3}/?", fullmatch=True).map(lambda p: p or "/")


@given(site_names, site_names, names, values, paths)
def test_round_trip_through_the_browser(site, other, name, value, path):
    """Whichever copy the browser sends back, the site gets its own cookie by its own
    name, and no other site gets it."""
    scoped, fallback = scope(f"{name}={value}; Path={path}", site=site)
    for copy in (scoped, fallback):
        pair = copy.split("; Path=")[0]
        assert cookies_for_site(f".site={site}; {pair}", site) == f"{name}={value}"
        if other != site and copy is fallback:
            assert cookies_for_site(pair, other) is None
    assert fallback.startswith(fallback_name(site, name) + "=")
