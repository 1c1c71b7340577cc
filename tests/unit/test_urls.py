"""Cutting URLs at the authority (filters/urls.py) and the reserved names' patterns
(filters/names.py): pure, no sockets."""

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from filters.names import NOT_PREFIXED, SITE_MARK_RE, SITE_NAME, SITE_PREFIX
from filters.urls import UrlParts, split_hostport, split_url


@pytest.mark.parametrize(
    ("url", "parts"),
    [
        ("http://h/x?q#f", UrlParts("http", "h", "/x?q#f")),
        ("HTTPS://H:8443", UrlParts("https", "H:8443", "")),
        ("http://h?q=/x", UrlParts("http", "h", "?q=/x")),
        ("http://h#/.site.a/", UrlParts("http", "h", "#/.site.a/")),
        ("//h/x", UrlParts("", "h", "/x")),
        ("http://[::1]:8080/x", UrlParts("http", "[::1]:8080", "/x")),
        ("http://u@h/x", UrlParts("http", "u@h", "/x")),
    ],
)
def test_split_url(url, parts):
    assert split_url(url) == parts


@pytest.mark.parametrize("url", ["/x", "ftp://h/x", "x://h", "mailto:a@b", "", "h/x"])
def test_split_url_refuses_what_is_not_web(url):
    assert split_url(url) is None


@given(st.text(alphabet="abc.:[]@-/?#%", max_size=30))
def test_split_url_keeps_every_character(rest):
    parts = split_url("http://" + rest)
    assert parts is not None
    assert parts.authority + parts.tail == rest
    assert not any(c in parts.authority for c in "/?#")


@pytest.mark.parametrize(
    ("authority", "expected"),
    [
        ("Host", ("host", None)),
        ("h:8080", ("h", 8080)),
        ("[::1]:443", ("[::1]", 443)),
        ("[::1]", ("[::1]", None)),
        ("h:0", (None, None)),
        ("h:65536", (None, None)),
        ("h:x", (None, None)),
        ("[::1]x", (None, None)),
    ],
)
def test_split_hostport(authority, expected):
    assert split_hostport(authority) == expected


def test_patterns_spell_the_prefix():
    assert SITE_NAME.fullmatch("img3.douban") and not SITE_NAME.fullmatch("a~b")
    assert SITE_MARK_RE.search(f"x{SITE_PREFIX}wiki./p").group(1) == "wiki."
    root = re.compile("/" + NOT_PREFIXED)
    assert root.match("/x") and not root.match("//x") and not root.match(SITE_PREFIX + "a/")
