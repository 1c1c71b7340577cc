"""Automatic link rewriting: absolute URLs of any backend, and root-relative links.

Both are built so that Python's regex engine can do the scanning and the replacing on
its own, in C: each pattern starts with a literal (so the engine jumps between
candidates instead of trying every position), and each replacement is a constant
string (so no Python code runs per match). A 1 MiB page with 10,000 links is rewritten
in a few milliseconds this way; a pattern with one Python callback per match, or one
that must be tried at every position, is several times slower (see bench/rewrite.py).

Every rule is written once, as text, and compiled twice: for ``str`` and for raw
``bytes``. When the charset keeps ASCII bytes for ASCII characters (UTF-8, Latin-1,
...), the body is rewritten as bytes without being decoded at all. The code that
applies the rules is the same for both, since both types scan, replace and ``sub``
alike.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

# Defined here, once, for filters/ and handlers/ alike (filters/ imports nothing of
# handlers/).
SITE_PREFIX = "/.site."
DEFAULT_PORTS = {"http": 80, "https": 443}

# After a host (and port), the next character must not continue the host name or the
# port: "10.1.2.3" must not match "10.1.2.30", "10.1.2.3.example" or "10.1.2.3:8080"
# (nor "10.1.2.3%3A8080", percent-encoded).
_HOST_END = r"(?![\w-]|\.[\w-]|:\d|%3[Aa]\d)"
# A root-relative link is "/" not followed by "/" (scheme-relative), "\" or a prefix.
_NOT_PREFIXED = r"(?![/\\]|\.site\.)"


@dataclass(frozen=True)
class Origin:
    """A backend origin as pages spell it."""

    name: str  # the site's name in /.site.<name>
    scheme: str
    host: str
    port: int
    default_port: bool


class _Sub(NamedTuple):
    """One rule: where ``literal`` occurs, ``pattern`` may match; it becomes
    ``replacement``. Fields are all str or all bytes."""

    literal: Any
    pattern: re.Pattern[Any]
    replacement: Any


class _Both:
    """Compiles the same source for text and for bytes. ASCII classes, so that both
    agree on what continues a host name."""

    @staticmethod
    def pattern(source: str) -> tuple[re.Pattern[str], re.Pattern[bytes]]:
        return re.compile(source, re.ASCII), re.compile(source.encode("ascii"))

    @staticmethod
    def sub(literal: str, source: str, replacement: str) -> tuple[_Sub, _Sub]:
        text, raw = _Both.pattern(source)
        return (
            _Sub(literal, text, replacement),
            _Sub(literal.encode("ascii"), raw, replacement.encode("ascii")),
        )


# --- backend links --------------------------------------------------------------------


class _Host(NamedTuple):
    """Every spelling of the origins on one host, for text or for bytes."""

    host: Any
    plain: list[tuple[_Sub, re.Pattern[Any]]]  # scheme://host, with its "unsafe" check
    guard: re.Pattern[Any]  # finds the host after a slash: other spellings may be there
    others: list[_Sub]  # //host, the JSON-escaped and the percent-encoded spellings


class BackendLinks:
    """Rewrites ``http://host[:port]``, ``https://...``, ``//host``, their JSON/JS
    escaped forms (``http:\\/\\/host``) and percent-encoded forms (``http%3A%2F%2Fhost``)
    of every configured origin to ``/.site.<name>``.

    The common spelling, ``scheme://host``, is replaced with ``str.replace`` (the
    fastest scan there is) unless some occurrence continues the host name or carries a
    port, which one anchored search finds first. The other spellings are only looked
    for once a search anchored on the host has seen the host after a slash.
    """

    def __init__(self, origins: Iterable[Origin]) -> None:
        hosts: dict[str, tuple[_Host, _Host]] = {}
        seen: set[tuple[str, str]] = set()
        # Longest host first, so that of two hosts one of which ends the other, the
        # longer is tried first (the host-end check makes this belt and braces).
        for o in sorted(origins, key=lambda o: (-len(o.host), o.host, o.port)):
            if o.host not in hosts:
                # What the plain spellings leave: the host after "/" ("//host",
                # "\/\/host") or after a percent-encoded slash.
                after = "|".join(f"(?<={re.escape(pre + o.host)})" for pre in ("/", "%2F", "%2f"))
                guards = _Both.pattern(f"{re.escape(o.host)}(?:{after})")
                hosts[o.host] = (
                    _Host(o.host, [], guards[0], []),
                    _Host(o.host.encode("ascii"), [], guards[1], []),
                )
            text, raw = hosts[o.host]
            port = "" if o.default_port else f":{o.port}"
            end = (rf"(?::{o.port})?" if o.default_port else "") + _HOST_END
            prefix = f"{SITE_PREFIX}{o.name}"
            literal = f"{o.scheme}://{o.host}{port}"
            subs = _Both.sub(literal, re.escape(literal) + end, prefix)
            unsafe = _Both.pattern(re.escape(literal) + r"(?=[\w-]|\.[\w-]|:\d)")
            text.plain.append((subs[0], unsafe[0]))
            raw.plain.append((subs[1], unsafe[1]))
            # JSON/JS-escaped and percent-encoded (both cases) spellings.
            for slash, colon in (("\\/", ":"), ("%2F", "%3A"), ("%2f", "%3a")):
                # Percent-encoded, the port's colon is encoded too ("%3A8080").
                spelled = port.replace(":", colon)
                literal = f"{o.scheme}{colon}{slash}{slash}{o.host}{spelled}"
                ending = (rf"(?:{colon}{o.port})?" if o.default_port else "") + _HOST_END
                self._add(text, raw, literal, ending, prefix.replace("/", slash, 1))
            # Scheme-relative "//host": the page's own scheme, which for a backend's
            # page is the backend's. The first origin to claim host[:port] keeps it.
            if (o.host, port) in seen:
                continue
            seen.add((o.host, port))
            for slash in ("/", "\\/"):
                literal = f"{slash}{slash}{o.host}{port}"
                # Not after a scheme ("ftp://host") or inside a path ("a//host"); the
                # lookbehind follows the literal so that the literal leads the pattern.
                before = rf"(?<![\w:/\\.-]{re.escape(literal)})"
                self._add(text, raw, literal, before + end, prefix.replace("/", slash, 1))
        self._text = [pair[0] for pair in hosts.values()]
        self._bytes = [pair[1] for pair in hosts.values()]

    @staticmethod
    def _add(text: _Host, raw: _Host, literal: str, rest: str, replacement: str) -> None:
        subs = _Both.sub(literal, re.escape(literal) + rest, replacement)
        text.others.append(subs[0])
        raw.others.append(subs[1])

    def __bool__(self) -> bool:
        return bool(self._text)

    def rewrite(self, text: str) -> str:
        return _rewrite_hosts(text, self._text)

    def rewrite_bytes(self, body: bytes) -> bytes:
        return _rewrite_hosts(body, self._bytes)


def _rewrite_hosts(data: Any, hosts: list[_Host]) -> Any:
    for h in hosts:
        if h.host not in data:
            continue
        for sub, unsafe in h.plain:
            if sub.literal in data:
                if unsafe.search(data):
                    data = sub.pattern.sub(sub.replacement, data)
                else:
                    data = data.replace(sub.literal, sub.replacement)
        if h.guard.search(data):
            for sub in h.others:
                data = sub.pattern.sub(sub.replacement, data)
    return data


# --- root-relative links --------------------------------------------------------------

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
    source = re.escape(literal) + _NOT_PREFIXED
    looks = [f"(?<=\\s{re.escape(name + literal)})" for name in names]
    return source + (f"(?:{'|'.join(looks)})" if looks else "")


# Each group is looked for with one scan (its guard); its openers only once that scan
# found something. (CSS's rare upper-case URL( is not rewritten.)
_GROUPS = (
    ("=[\"']?/", [(f"={q}/", _opener(f"={q}/", _NAMES)) for q in ('"', "'", "")]),
    (r"url\(", [(f"url({q}/", _opener(f"url({q}/")) for q in ("", '"', "'")]),
    ("@import", [(f"@import {q}/", _opener(f"@import {q}/")) for q in ('"', "'")]),
)
# srcset="a.png 1x, /b.png 2x" holds several URLs; <meta http-equiv=refresh
# content="0; url=/next"> holds one after "url=". Both are rare, and looked for only on
# pages that have root-relative attributes at all: a callback per match is fine there.
# (srcset in upper case does not occur in practice and is not looked for.)
_SRCSET = _Both.pattern(r"""(?i)(\ssrcset\s*=\s*)(["'])(.*?)\2""")
_REFRESH = _Both.pattern(rf"""(?i)(;\s*url\s*=\s*['"]?)/{_NOT_PREFIXED}""")
_CANDIDATE = _Both.pattern(rf"(^|,)(\s*)/{_NOT_PREFIXED}")


class _Group(NamedTuple):
    guard: re.Pattern[Any]
    subs: list[_Sub]


class _Kind(NamedTuple):
    """Everything RootLinks needs for one of text or bytes."""

    html: list[_Group]
    css: list[_Group]
    srcset_word: Any
    srcset: re.Pattern[Any]
    refresh: re.Pattern[Any]
    candidate: re.Pattern[Any]
    replacement: Any


class RootLinks:
    """Gives root-relative links (``/path``) in HTML attributes and CSS the site's
    prefix, so every page URL carries it and pages of two sites can be open at once."""

    def __init__(self, name: str) -> None:
        replacement = f"{SITE_PREFIX}{name}/"
        groups: tuple[list[_Group], list[_Group]] = ([], [])
        for guard, openers in _GROUPS:
            guards = _Both.pattern(guard)
            pairs = [
                _Both.sub(literal, source, literal[:-1] + replacement)
                for literal, source in openers
            ]
            for i in (0, 1):
                groups[i].append(_Group(guards[i], [pair[i] for pair in pairs]))
        self._text, self._bytes = (
            _Kind(
                groups[i],
                groups[i][1:],
                ("srcset", b"srcset")[i],
                _SRCSET[i],
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


def _rewrite_roots(data: Any, kind: _Kind, html: bool) -> Any:
    for group in kind.html if html else kind.css:
        if not group.guard.search(data):
            continue
        for sub in group.subs:
            data = sub.pattern.sub(sub.replacement, data)
        if group is kind.html[0]:  # attributes were found: look for the rare ones too
            data = _rare_attributes(data, kind)
    return data


def _rare_attributes(data: Any, kind: _Kind) -> Any:
    prefixed: Callable[[re.Match[Any]], Any] = lambda m: m.group(1) + kind.replacement  # noqa: E731
    data = kind.refresh.sub(prefixed, data)
    if kind.srcset_word in data:

        def srcset(m: re.Match[Any]) -> Any:
            value = kind.candidate.sub(
                lambda c: c.group(1) + c.group(2) + kind.replacement, m.group(3)
            )
            return m.group(1) + m.group(2) + value + m.group(2)

        data = kind.srcset.sub(srcset, data)
    return data
