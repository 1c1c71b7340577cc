"""Root-relative links (``/path``) in HTML attributes and CSS get the site's prefix, so
that every URL a page holds carries its site and pages of two sites can be open at once.
Built like filters/links.py: literal-led patterns and constant replacements, compiled
for text and for bytes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from filters.links import Both, Sub
from filters.names import NOT_PREFIXED, SITE_PREFIX

# The attributes that hold a URL, in lower and upper case.
URL_ATTRIBUTES = (
    "href",
    "src",
    "action",
    "formaction",
    "poster",
    "data",
    "background",
    "cite",
    "icon",
    "manifest",
)
_NAMES = [n for attr in URL_ATTRIBUTES for n in (attr, attr.upper())]


def _opener(literal: str, names: Iterable[str] = ()) -> str:
    """The pattern for one way of introducing a root-relative URL (``literal`` ends
    with the slash): for attributes, one of ``names`` must stand just before it, after
    whitespace so that "metadata=" does not pass for "data=". The lookbehinds follow the
    literal so that the literal leads the pattern."""
    source = re.escape(literal) + NOT_PREFIXED
    looks = [f"(?<=\\s{re.escape(name + literal)})" for name in names]
    return source + (f"(?:{'|'.join(looks)})" if looks else "")


# Each group is looked for only when a character all its matches hold is in the text
# (one memchr, far cheaper than a scan for a word), then with one scan (its guard); its
# openers only once that scan found something. The attributes' rarer quote forms ('/
# and bare /) have a second guard: one scan for both instead of one sub each. (CSS's
# rare upper-case URL( is not rewritten.)
_ATTRIBUTES = [(f"={q}/", _opener(f"={q}/", _NAMES)) for q in ('"', "'", "")]
_GROUPS = (
    ("=", [("=[\"']?/", _ATTRIBUTES[:1]), ("=['/]", _ATTRIBUTES[1:])]),
    ("(", [(r"url\(", [(f"url({q}/", _opener(f"url({q}/")) for q in ("", '"', "'")])]),
    ("@", [("@import", [(f"@import {q}/", _opener(f"@import {q}/")) for q in ('"', "'")])]),
)
# srcset="a.png 1x, /b.png 2x" holds several URLs; <meta http-equiv=refresh
# content="0; url=/next"> holds one after "url=". Both are rare, and looked for only on
# pages that have root-relative attributes at all: a callback per match is fine there.
# (srcset in upper case does not occur in practice and is not looked for.)
_SRCSET = Both.pattern(r"""(?i)(\ssrcset\s*=\s*)(["'])(.*?)\2""")
_REFRESH = Both.pattern(rf"""(?i)(;\s*url\s*=\s*['"]?)/{NOT_PREFIXED}""")
_CANDIDATE = Both.pattern(rf"(^|,)(\s*)/{NOT_PREFIXED}")


class _Tier(NamedTuple):
    guard: re.Pattern[Any]
    subs: list[Sub]


class _Group(NamedTuple):
    """One way of writing a root-relative URL. The first tier's guard says whether the
    group occurs at all; each later tier's guard is searched only once it does."""

    char: Any  # a character every match holds: absent, the group is skipped
    tiers: list[_Tier]


class _Kind(NamedTuple):
    """Everything RootLinks needs for one of text or bytes."""

    html: list[_Group]
    css: list[_Group]
    srcset_word: Any
    srcset: re.Pattern[Any]
    refresh_char: Any  # the refresh's ";", without which it cannot match
    refresh: re.Pattern[Any]
    candidate: re.Pattern[Any]
    replacement: Any


class RootLinks:
    """Gives root-relative links (``/path``) in HTML attributes and CSS the site's
    prefix, so every page URL carries it and pages of two sites can be open at once."""

    def __init__(self, name: str) -> None:
        replacement = f"{SITE_PREFIX}{name}/"
        groups: tuple[list[_Group], list[_Group]] = ([], [])
        for char, tiers in _GROUPS:
            built: tuple[list[_Tier], list[_Tier]] = ([], [])
            for guard, openers in tiers:
                guards = Both.pattern(guard)
                pairs = [
                    Both.sub(literal, source, literal[:-1] + replacement)
                    for literal, source in openers
                ]
                for i in (0, 1):
                    built[i].append(_Tier(guards[i], [pair[i] for pair in pairs]))
            groups[0].append(_Group(char, built[0]))
            groups[1].append(_Group(char.encode("ascii"), built[1]))
        self._text, self._bytes = (
            _Kind(
                groups[i],
                groups[i][1:],
                ("srcset", b"srcset")[i],
                _SRCSET[i],
                (";", b";")[i],
                _REFRESH[i],
                _CANDIDATE[i],
                (replacement, replacement.encode("ascii"))[i],
            )
            for i in (0, 1)
        )

    def rewrite(self, text: str, html: bool) -> str:
        return _rewrite_roots(text, self._text, html)

    def rewrite_bytes(self, body: bytes, html: bool) -> bytes:
        return _rewrite_roots(body, self._bytes, html)


# A <textarea>'s content is text, not markup (HTML's RCDATA): "src=/x" there is what
# the user edits and sends back, and must stay as the backend wrote it.
_TEXTAREA = Both.pattern(r"(?is)(<textarea\b.*?</textarea\s*>)")
_TEXTAREA_WORDS = (("<textarea", "<TEXTAREA"), (b"<textarea", b"<TEXTAREA"))


def _rewrite_roots(data: Any, kind: _Kind, html: bool) -> Any:
    found = _found(data, kind.html if html else kind.css)
    if not found:
        return data  # nothing to rewrite: no need to look for text areas either
    if html:
        i = 0 if isinstance(data, str) else 1
        if any(word in data for word in _TEXTAREA_WORDS[i]):
            # Odd pieces are the text areas: only the markup between them is rewritten.
            pieces: list[Any] = _TEXTAREA[i].split(data)
            for j in range(0, len(pieces), 2):
                pieces[j] = _rewrite_markup(pieces[j], kind, _found(pieces[j], kind.html))
            return data[:0].join(pieces)
    return _rewrite_markup(data, kind, found)


def _found(data: Any, groups: list[_Group]) -> list[_Group]:
    """The groups that occur in ``data``. Looked for before any is rewritten: every
    insertion follows a "/", which no guard's match holds, so none makes or breaks a
    later group's match."""
    return [g for g in groups if g.char in data and g.tiers[0].guard.search(data)]


def _rewrite_markup(data: Any, kind: _Kind, found: list[_Group]) -> Any:
    for group in found:
        for n, tier in enumerate(group.tiers):
            if n and not tier.guard.search(data):
                continue
            for sub in tier.subs:
                data = sub.pattern.sub(sub.replacement, data)
        if group is kind.html[0]:  # attributes were found: look for the rare ones too
            data = _rare_attributes(data, kind)
    return data


def _rare_attributes(data: Any, kind: _Kind) -> Any:
    prefixed: Callable[[re.Match[Any]], Any] = lambda m: m.group(1) + kind.replacement  # noqa: E731
    if kind.refresh_char in data:
        data = kind.refresh.sub(prefixed, data)
    if kind.srcset_word in data:

        def srcset(m: re.Match[Any]) -> Any:
            value = kind.candidate.sub(
                lambda c: c.group(1) + c.group(2) + kind.replacement, m.group(3)
            )
            return m.group(1) + m.group(2) + value + m.group(2)

        data = kind.srcset.sub(srcset, data)
    return data
