"""Properties of the rewriting pipeline that must hold for every input.

Pages are generated as text in many charsets, with backend URLs placed between runs of
random text; the expected result is the same text with each URL replaced. Comparing
the encoded bytes checks at once that the matches are rewritten and that every byte
outside them is unchanged.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from filters.pipeline import build_plans
from filters.rules import SubsFilterRules
from handlers.config.sites import BackendSite, build_site_table
from handlers.context import plans_for
from tests.support.properties import examples


@dataclass
class FakeSite:
    name: str
    scheme: str
    host: str
    port: int
    filter_rules: list = field(default_factory=list)
    auto_rewrite: bool = True
    prefix_links: bool = True
    charset: str | None = None


# Plans as the proxy builds them, from a site table (each backend in both schemes).
PLANS = plans_for(
    build_site_table(
        {
            "a": BackendSite("a", "http://10.1.2.3"),
            "b": BackendSite("b", "http://10.1.2.30:8080"),
            "c": BackendSite("c", "https://intranet.example"),
        }
    )
)

# (URL as the backend writes it, what it must become)
URLS = [
    ("http://10.1.2.3/img/a.png", "/.site.a/img/a.png"),
    ("http://10.1.2.3", "/.site.a"),
    ("http://10.1.2.3:80/x?y=1", "/.site.a/x?y=1"),
    ("//10.1.2.3/s.js", "/.site.a/s.js"),
    ("http://10.1.2.30:8080/p", "/.site.b/p"),
    ("https://intranet.example/q", "/.site.c/q"),
    ("http:\\/\\/10.1.2.3\\/j", "\\/.site.a\\/j"),
    # Each backend's netloc in the other scheme is the same backend.
    ("https://10.1.2.3/tw", "/.site.a/tw"),
    ("https:\\/\\/10.1.2.3\\/tj", "\\/.site.a\\/tj"),
    ("https://10.1.2.30:8080/tp", "/.site.b/tp"),
    ("http://intranet.example/tq", "/.site.c/tq"),
    ("//intranet.example/tr", "/.site.c/tr"),
    ("https://10.1.2.3:80/x", "https://10.1.2.3:80/x"),  # https on port 80: another server
    ("http://10.1.2.30/other", "http://10.1.2.30/other"),  # no such origin: unchanged
    ("http://example.com/out", "http://example.com/out"),
]

CHARSETS = {
    "utf-8": None,
    "gbk": (0x4E00, 0x9FA5),
    "gb18030": (0x4E00, 0x9FFF),
    "big5": (0x4E00, 0x9FA5),
    "shift_jis": (0x3041, 0x9FA0),
    "euc-kr": (0xAC00, 0xD7A3),
    "iso-8859-1": (0xA0, 0xFF),
    "iso-8859-5": (0x0401, 0x045F),
}


@functools.cache
def alphabet(charset: str) -> list[str]:
    """Characters the charset can hold, with no character that could start or end a
    URL (so that only the generated URLs are links)."""
    ascii_part = [c for c in "abcdefghijklmnopqrstuvwxyzABCDEFGH0123456789 .,;!?<>\"'\n\t" if c]
    if CHARSETS[charset] is None:
        wide = [chr(c) for c in range(0x4E00, 0x4F00)] + ["é", "ß", "€", "😀"]
    else:
        lo, hi = CHARSETS[charset]
        wide = []
        for c in range(lo, hi + 1):
            ch = chr(c)
            try:
                raw = ch.encode(charset)
            except UnicodeEncodeError:
                continue
            if raw.decode(charset) == ch:
                wide.append(ch)
    return ascii_part + wide[:: max(1, len(wide) // 400)]


@st.composite
def pages(draw, charset: str):
    chars = alphabet(charset)
    pieces, expected = [], []
    for _ in range(draw(st.integers(0, 8))):
        text = draw(st.text(alphabet=chars, max_size=40))
        url, rewritten = draw(st.sampled_from(URLS))
        # A space before and after keeps each URL a URL of its own.
        pieces += [text, " ", url, " "]
        expected += [text, " ", rewritten, " "]
    tail = draw(st.text(alphabet=chars, max_size=40))
    return "".join([*pieces, tail]), "".join([*expected, tail])


def rewrite(body: bytes, content_type: str, uri: str = "/", site: str = "a") -> bytes:
    rewriter = PLANS[site].for_response(uri, content_type, None)
    assert rewriter is not None
    out = rewriter.rewrite(body, 10 * 1024 * 1024)
    return body if out is None else out


def _check(charset: str, page: tuple[str, str], bom: bool = False) -> None:
    source, expected = page
    prefix = b"\xef\xbb\xbf" if bom else b""
    body = prefix + source.encode(charset)
    out = rewrite(body, f"text/plain; charset={charset}" if not bom else "text/plain")
    assert out == prefix + expected.encode(charset)
    # Idempotent: a rewritten page is left as it is.
    assert rewrite(out, f"text/plain; charset={charset}" if not bom else "text/plain") == out


SETTINGS = settings(
    max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@SETTINGS
@given(st.data())
def test_every_charset_round_trips_outside_matches(data):
    charset = data.draw(st.sampled_from(sorted(CHARSETS)))
    _check(charset, data.draw(pages(charset)))


@SETTINGS
@given(pages("utf-8"))
def test_utf8_with_bom(page):
    _check("utf-8", page, bom=True)


@SETTINGS
@given(pages("utf-8"), st.binary(min_size=1, max_size=8))
def test_undecodable_bytes_survive(page, junk):
    """A page that lies about its charset: stray bytes pass through exactly."""
    source, expected = page
    junk = bytes(b | 0x80 for b in junk)  # non-ASCII, mostly invalid UTF-8
    body = junk + b" " + source.encode() + b" " + junk
    assert (
        rewrite(body, "text/plain; charset=utf-8") == junk + b" " + expected.encode() + b" " + junk
    )


@SETTINGS
@given(pages("gbk"))
def test_user_rule_with_chinese_on_gbk(page):
    source, _ = page
    rule = SubsFilterRules(".", "中文", "汉语")
    plans = build_plans([FakeSite("g", "http", "10.9.9.9", 80, filter_rules=[rule])])
    body = ("中文 " + source + " 中文").encode("gbk")
    out = plans["g"].for_response("/", "text/html; charset=gbk", None).rewrite(body, 10**7)
    # Only the rule applies here (this table has none of the generated URLs' origins).
    assert out == ("汉语 " + source.replace("中文", "汉语") + " 汉语").encode("gbk")


@SETTINGS
@given(st.lists(st.sampled_from(["/x", "/img/a.png", "page", "//cdn/x", "/.site.b/y"]), max_size=6))
def test_root_links_never_double_prefixed(paths):
    html = "".join(f'<a href="{p}">x</a><img src="{p}">' for p in paths)
    once = rewrite(html.encode(), "text/html")
    assert b"/.site.a/.site." not in once
    assert rewrite(once, "text/html") == once
    for p in paths:
        wanted = f"/.site.a{p}" if p.startswith("/") and not p.startswith(("//", "/.site.")) else p
        assert f'href="{wanted}"'.encode() in once


def test_multibyte_second_bytes_are_not_ascii():
    """In GBK, Big5 and Shift_JIS the second byte of a character can be an ASCII byte
    ("h", "\\"): matching raw bytes would corrupt such characters or miss links."""
    h_char = b"\x81\x68".decode("gbk")  # second byte is "h"
    page = f"{h_char}ttp://10.1.2.3/x".encode("gbk")
    assert rewrite(page, "text/plain; charset=gbk") == page
    for charset, char in (("big5", "許"), ("shift_jis", "表")):
        assert char.encode(charset).endswith(b"\\")
        page = f"{char}//10.1.2.3/x".encode(charset)
        assert rewrite(page, f"text/plain; charset={charset}") == f"{char}/.site.a/x".encode(
            charset
        )
