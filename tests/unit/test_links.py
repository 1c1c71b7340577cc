"""Automatic link rewriting, on text and on bytes."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from filters import links
from filters.links import BackendLinks, Origin
from filters.rootlinks import RootLinks
from filters.xmllinks import XmlLinks
from tests.support.properties import examples

LINKS = BackendLinks(
    [
        Origin("a", "http", "10.1.2.3", 80, True),
        Origin("b", "http", "10.1.2.30", 8080, False),
        Origin("c", "https", "secure.example", 443, True),
        Origin("d", "http", "10.1.2.3", 8081, False),
    ]
)


@pytest.mark.parametrize(
    "source, expected",
    [
        ('<a href="http://10.1.2.3/x">', '<a href="/.site.a/x">'),
        ("http://10.1.2.3", "/.site.a"),
        ("http://10.1.2.3:80/y", "/.site.a/y"),
        ("http://10.1.2.3?q=1", "/.site.a?q=1"),
        ("http://10.1.2.3#top", "/.site.a#top"),
        ("http://10.1.2.30:8080/z", "/.site.b/z"),
        ("http://10.1.2.3:8081/w", "/.site.d/w"),
        ("https://secure.example/q", "/.site.c/q"),
        ("https://secure.example:443/q", "/.site.c/q"),
        ('src="//10.1.2.3/s.js"', 'src="/.site.a/s.js"'),
        ("url(//10.1.2.3/bg.png)", "url(/.site.a/bg.png)"),
        ('{"u":"http:\\/\\/10.1.2.3\\/j"}', '{"u":"\\/.site.a\\/j"}'),
        ('{"u":"\\/\\/10.1.2.3\\/j"}', '{"u":"\\/.site.a\\/j"}'),
        ("?next=http%3A%2F%2F10.1.2.3%2Fp", "?next=%2F.site.a%2Fp"),
        ("?next=http%3a%2f%2f10.1.2.3%2fp", "?next=%2f.site.a%2fp"),
        # Not ours: other hosts, ports, schemes and look-alikes stay as they are.
        ("http://10.1.2.30/no", "http://10.1.2.30/no"),
        ("http://10.1.2.3:8080/no", "http://10.1.2.3:8080/no"),
        ("http://10.1.2.3.evil.example/no", "http://10.1.2.3.evil.example/no"),
        ("http://10.1.2.34/no", "http://10.1.2.34/no"),
        ("http://secure.example/no", "http://secure.example/no"),
        ("https://10.1.2.3/no", "https://10.1.2.3/no"),
        ("ftp://10.1.2.3/no", "ftp://10.1.2.3/no"),
        ("http://evil.example//10.1.2.3/no", "http://evil.example//10.1.2.3/no"),
        ("http://user@10.1.2.3/no", "http://user@10.1.2.3/no"),
        ("Visit http://10.1.2.3.", "Visit /.site.a."),
    ],
)
def test_backend_links(source, expected):
    assert LINKS.rewrite(source) == expected
    assert LINKS.rewrite_bytes(source.encode()) == expected.encode()


def test_backend_links_idempotent_and_never_double_prefixed():
    page = 'a http://10.1.2.3/x b //10.1.2.3/y c http://10.1.2.30:8080/z "http:\\/\\/10.1.2.3"'
    once = LINKS.rewrite(page)
    assert LINKS.rewrite(once) == once
    assert ".site.a/.site" not in once and "/.site./.site" not in once


# Hosts that overlap themselves ("127.0.0.1" begins and ends with "1"), one inside
# another, an IPv6 literal, two ports on one host, and each origin's twin scheme.
TRICKY = BackendLinks(
    Origin(name, scheme, host, port, default)
    for name, host, port, default in [
        ("a", "127.0.0.1", 8080, False),
        ("b", "example.org", 80, True),
        ("c", "a.example.org", 80, True),
        ("d", "[::1]", 9000, False),
        ("e", "127.0.0.1", 80, True),
        ("wiki", "wiki", 80, True),  # a site named like its host: "/.site.wiki" holds it
    ]
    for scheme in ("http", "https")
)
_SPELLINGS = [
    f"{pre}{host}{port}{post}"
    for host in ("127.0.0.1", "example.org", "a.example.org", "[::1]", "127.0.0.127.0.0.1", "wiki")
    for pre in ("http://", "https://", "//", "http:\\/\\/", "http%3A%2F%2F", "x/", "ftp://")
    for port in ("", ":8080", ":80", ":9000", ":808", "%3A8080")
    for post in ("/", '"', "'", "", "0", ".x", "-", "?", " ")
]
_PIECES = st.lists(
    st.one_of(st.sampled_from(_SPELLINGS), st.text("/:.%\\\"' ahtp13F", max_size=6)),
    max_size=12,
)


def _exact_only(data, hosts):
    """What every spelling's own pattern gives, without the fast path for plain spellings."""
    for h in hosts:
        if h.host in data:
            data = links._exact(data, h, range(len(h.plain)))
    return data


@settings(max_examples=examples(600), deadline=None)
@given(_PIECES)
def test_plain_replacement_gives_what_the_patterns_give(pieces):
    text = "".join(pieces)
    assert TRICKY.rewrite(text) == _exact_only(text, TRICKY._text)
    raw = text.encode()
    assert TRICKY.rewrite_bytes(raw) == _exact_only(raw, TRICKY._bytes)


ROOT = RootLinks("a")


@pytest.mark.parametrize(
    "source, expected",
    [
        ('<a href="/x">', '<a href="/.site.a/x">'),
        ("<a href='/x'>", "<a href='/.site.a/x'>"),
        ("<img src=/i.png>", "<img src=/.site.a/i.png>"),
        ('<A HREF="/x">', '<A HREF="/.site.a/x">'),
        ('<form action="/post">', '<form action="/.site.a/post">'),
        ('<button formaction="/b">', '<button formaction="/.site.a/b">'),
        ('<video poster="/p.jpg">', '<video poster="/.site.a/p.jpg">'),
        ('<object data="/o.svg">', '<object data="/.site.a/o.svg">'),
        ('<base href="/app/">', '<base href="/.site.a/app/">'),
        ('<div style="background:url(/bg.png)">', '<div style="background:url(/.site.a/bg.png)">'),
        ("<style>@import '/s.css';</style>", "<style>@import '/.site.a/s.css';</style>"),
        (
            '<img srcset="/a.png 1x, b.png 2x,/c.png 3x">',
            '<img srcset="/.site.a/a.png 1x, b.png 2x,/.site.a/c.png 3x">',
        ),
        (
            '<meta http-equiv="refresh" content="0; url=/next">',
            '<meta http-equiv="refresh" content="0; url=/.site.a/next">',
        ),
        # Left alone: relative, scheme-relative, already prefixed, not a URL attribute.
        ('<a href="x/y">', '<a href="x/y">'),
        ('<a href="//cdn.example/x">', '<a href="//cdn.example/x">'),
        ('<a href="/.site.b/x">', '<a href="/.site.b/x">'),
        (
            '<div metadata="/no" data-x="/no" title="/no">',
            '<div metadata="/no" data-x="/no" title="/no">',
        ),
        ("<p>a/b and </p>", "<p>a/b and </p>"),
    ],
)
def test_root_links_in_html(source, expected):
    assert ROOT.rewrite(source, html=True) == expected
    assert ROOT.rewrite_bytes(source.encode(), html=True) == expected.encode()


def test_root_links_in_css_only_touch_urls():
    css = 'a{background:url("/bg.png")} @import "/x.css"; b{x: url(//cdn/x)} .c{content:"/no"}'
    expected = 'a{background:url("/.site.a/bg.png")} @import "/.site.a/x.css"; b{x: url(//cdn/x)} .c{content:"/no"}'
    assert ROOT.rewrite(css, html=False) == expected
    assert ROOT.rewrite(expected, html=False) == expected


XML = XmlLinks("dav")


@pytest.mark.parametrize(
    "xml, expected",
    [
        # WebDAV hrefs, any namespace prefix, escapes kept exactly.
        ("<D:href>/dir/a%20b%2Fc/</D:href>", "<D:href>/.site.dav/dir/a%20b%2Fc/</D:href>"),
        ("<ns0:href>/x</ns0:href>", "<ns0:href>/.site.dav/x</ns0:href>"),
        ('<href xmlns="DAV:">/x</href>', None),  # an attribute in the tag: not href's text
        ("<href>/x</href>", "<href>/.site.dav/x</href>"),
        ("<d:href>\n  /x\n</d:href>", "<d:href>\n  /.site.dav/x\n</d:href>"),
        # Atom/RSS links, xlink, sitemaps.
        (
            '<link rel="alternate" href="/post/1"/>',
            '<link rel="alternate" href="/.site.dav/post/1"/>',
        ),
        ("<image xlink:href='/i.png'/>", "<image xlink:href='/.site.dav/i.png'/>"),
        ("<loc>/page</loc>", "<loc>/.site.dav/page</loc>"),
        # Left alone: relative, scheme-relative, already prefixed, other elements.
        ("<D:href>rel/x</D:href>", None),
        ("<D:href>//cdn/x</D:href>", None),
        ("<D:href>/.site.dav/x</D:href>", None),
        ("<D:hrefs>/x</D:hrefs>", None),
        ("<D:displayname>/x</D:displayname>", None),
        ('<a data-href="/x">', '<a data-href="/x">'),
    ],
)
def test_xml_links(xml, expected):
    expected = xml if expected is None else expected
    assert XML.rewrite(xml) == expected
    assert XML.rewrite_bytes(xml.encode()) == expected.encode()
    assert XML.rewrite(expected) == expected  # idempotent


def test_a_textareas_content_is_text_and_keeps_its_root_relative_links():
    """What a user edits in a <textarea> goes back to the backend as it came: the markup
    around it is rewritten, its content is not (HTML's RCDATA)."""
    page = (
        '<a href="/x"><textarea name=c>&lt;img src="/up/a.png"&gt;</textarea>'
        '<img src="/y"><TEXTAREA rows=3>src=/z</TEXTAREA><link href="/s.css">'
    )
    out = ROOT.rewrite(page, True)
    assert out == (
        '<a href="/.site.a/x"><textarea name=c>&lt;img src="/up/a.png"&gt;</textarea>'
        '<img src="/.site.a/y"><TEXTAREA rows=3>src=/z</TEXTAREA><link href="/.site.a/s.css">'
    )
    assert ROOT.rewrite_bytes(page.encode(), True) == out.encode()


def test_an_origin_given_twice_is_refused():
    with pytest.raises(ValueError, match="given twice"):
        BackendLinks([Origin("a", "http", "h", 80, True), Origin("b", "http", "h", 80, True)])
