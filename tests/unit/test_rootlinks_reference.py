"""filters/rootlinks.py against a reference: the same rules applied the plain way, every
substitution run over the whole text with no guard or pre-check. The module skips the
scans that cannot find anything (a group whose character is absent, a quote form whose
guard fails, text areas when nothing is to be rewritten); this says that skipping
never changes a byte, on text and on bytes, for HTML and for CSS."""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from filters.names import NOT_PREFIXED
from filters.rootlinks import URL_ATTRIBUTES, RootLinks
from tests.support.properties import examples

NAME = "d"
PREFIX = f"/.site.{NAME}/"
NAMES = [n for attr in URL_ATTRIBUTES for n in (attr, attr.upper())]
LINKS = RootLinks(NAME)


def _rule(literal: str, names: list[str] | None = None) -> re.Pattern[str]:
    """``literal`` (ending in "/") before an unprefixed path; with ``names``, one of
    them (after whitespace) just before it."""
    behind = "|".join(rf"(?<=\s{re.escape(n + literal)})" for n in names or [])
    source = re.escape(literal) + NOT_PREFIXED + (f"(?:{behind})" if behind else "")
    return re.compile(source, re.ASCII)


ATTRIBUTES = [(q, _rule(f"={q}/", NAMES)) for q in ('"', "'", "")]
CSS = [(f"url({q}", _rule(f"url({q}/")) for q in ("", '"', "'")]
CSS += [(f"@import {q}", _rule(f"@import {q}/")) for q in ('"', "'")]
REFRESH = re.compile(rf"""(?i)(;\s*url\s*=\s*['"]?)/{NOT_PREFIXED}""", re.ASCII)
SRCSET = re.compile(r"""(?i)(\ssrcset\s*=\s*)(["'])(.*?)\2""", re.ASCII)
CANDIDATE = re.compile(rf"(^|,)(\s*)/{NOT_PREFIXED}", re.ASCII)
TEXTAREA = re.compile(r"(?is)(<textarea\b.*?</textarea\s*>)", re.ASCII)


def reference(text: str, html: bool) -> str:
    if html and ("<textarea" in text or "<TEXTAREA" in text):
        parts = TEXTAREA.split(text)
        return "".join(p if j % 2 else _markup(p, html) for j, p in enumerate(parts))
    return _markup(text, html)


def _markup(text: str, html: bool) -> str:
    if html:
        seen = re.search("=[\"']?/", text, re.ASCII) is not None
        for quote, rule in ATTRIBUTES:
            text = rule.sub(f"={quote}{PREFIX}", text)
        if seen:
            text = REFRESH.sub(lambda m: m[1] + PREFIX, text)
            if "srcset" in text:
                text = SRCSET.sub(_srcset, text)
    for opener, rule in CSS:
        text = rule.sub(opener + PREFIX, text)
    return text


def _srcset(m: re.Match[str]) -> str:
    urls = CANDIDATE.sub(lambda c: f"{c[1]}{c[2]}{PREFIX}", m[3])
    return f"{m[1]}{m[2]}{urls}{m[2]}"


# Pieces of markup and CSS that open (or almost open) a root-relative link, and the
# characters around them.
FRAGMENTS = [
    *(f" {n}={q}/" for n in ("href", "SRC", "data", "Href", "metadata", "title") for q in "\"'"),
    " action=/", "=/", '="/', "='/", '="//', '="/.site.d/', '="\\', "/.site.", "/x",
    "url(/", 'url("/', "url('/", "URL(/", "url( /", '@import "/', "@import '/", "@import /",
    "<textarea>", "<TEXTAREA x>", "<TextArea>", "</textarea>", "</TEXTAREA >", "</textarea",
    "; url=/n", ";URL='/", "; url = \"/", ' srcset="', " SRCSET='", "a.png 1x, /b.png",
    ",/c", ", //d", " ", "\n", '"', "'", "=", "/", ";", "(", ")", "@", ",", "<", ">", "x", "é",
]  # fmt: skip
documents = st.lists(st.sampled_from(FRAGMENTS), max_size=30).map("".join)

SETTINGS = settings(
    max_examples=examples(400), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@SETTINGS
@given(documents, st.booleans())
def test_text_matches_reference(text, html):
    assert LINKS.rewrite(text, html) == reference(text, html)


@SETTINGS
@given(documents, st.booleans())
def test_bytes_match_reference(text, html):
    # Latin-1 maps each byte to the character of that number: the bytes path must
    # change exactly what the text path does.
    body = text.encode("latin-1")
    assert LINKS.rewrite_bytes(body, html) == reference(text, html).encode("latin-1")


def test_reference_sees_every_construct():
    """The fragments reach every rule (else the comparison would prove little)."""
    page = (
        '<a href="/a"> <img src=\'/b\'> <form action=/c> <textarea> src="/t"</textarea>'
        ' <meta content="0; url=/n"> <img srcset="a.png 1x, /s.png 2x">'
        " <style>url(/u) @import '/i';</style>"
    )
    out = LINKS.rewrite(page, True)
    assert out == reference(page, True)
    assert out.count(PREFIX) == 7 and 'src="/t"' in out
