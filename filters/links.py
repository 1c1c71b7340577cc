"""Automatic link rewriting: absolute URLs of any backend, and root-relative links.

Both are built so that Python's regex engine can do the scanning and the replacing on
its own, in C: each pattern starts with a literal (so the engine jumps between
candidates instead of trying every position), and each replacement is a constant
string (so no Python code runs per match). A 1 MiB page with 10,000 links is rewritten
in a few milliseconds this way; a pattern with one Python callback per match, or one
that must be tried at every position, is several times slower (see bench/rewrite.py).

Every pattern exists for text (``str``) and for raw bytes: when the charset keeps
ASCII bytes for ASCII characters (UTF-8, Latin-1, ...), the body is rewritten as bytes
without being decoded at all.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

SITE_PREFIX = "/.site."

# After a host (and port), the next character must not continue the host name or the
# port: "10.1.2.3" must not match "10.1.2.30", "10.1.2.3.example" or "10.1.2.3:8080".
_HOST_END = r"(?![\w-]|\.[\w-]|:\d)"


@dataclass(frozen=True)
class Origin:
    """A backend origin as pages spell it."""

    name: str  # the site's name in /.site.<name>
    scheme: str
    host: str
    port: int
    default_port: bool


@dataclass(frozen=True)
class _Form:
    literal: str  # what must be in the text for the pattern to have a chance
    pattern: re.Pattern[str]
    pattern_b: re.Pattern[bytes]
    replacement: str
    replacement_b: bytes


def _form(literal: str, rest: str, replacement: str, before: str = "") -> _Form:
    """A pattern ``literal + rest``; ``before`` is a lookbehind placed after the literal
    so that the literal stays the pattern's prefix."""
    source = re.escape(literal) + before + rest
    return _Form(
        literal,
        # ASCII classes, so that text and bytes agree on what continues a host name.
        re.compile(source, re.ASCII),
        re.compile(source.encode("ascii")),
        replacement,
        replacement.encode("ascii"),
    )


class BackendLinks:
    """Rewrites ``http://host[:port]``, ``https://...``, ``//host``, their JSON/JS
    escaped forms (``http:\\/\\/host``) and percent-encoded forms (``http%3A%2F%2Fhost``)
    of every configured origin to ``/.site.<name>``."""

    def __init__(self, origins: Iterable[Origin]) -> None:
        by_host: dict[str, list[_Form]] = {}
        seen: set[tuple[str, str]] = set()
        # Longest host first, so that of two hosts one of which ends the other, the
        # longer is tried first (the host-end check makes this belt and braces).
        for o in sorted(origins, key=lambda o: (-len(o.host), o.host, o.port)):
            forms = by_host.setdefault(o.host, [])
            port = "" if o.default_port else f":{o.port}"
            optional_port = rf"(?::{o.port})?" if o.default_port else ""
            prefix = f"{SITE_PREFIX}{o.name}"
            end = optional_port + _HOST_END
            # Plain, JSON/JS-escaped, and percent-encoded (both cases) spellings.
            for slash, colon in (("/", ":"), ("\\/", ":"), ("%2F", "%3A"), ("%2f", "%3a")):
                literal = f"{o.scheme}{colon}{slash}{slash}{o.host}{port}"
                forms.append(_form(literal, end, prefix.replace("/", slash, 1)))
            # Scheme-relative "//host": the page's own scheme, which for a backend's
            # page is the backend's. The first origin to claim host[:port] keeps it.
            key = (o.host, port)
            if key in seen:
                continue
            seen.add(key)
            for slash in ("/", "\\/"):
                literal = f"{slash}{slash}{o.host}{port}"
                # Not after a scheme ("ftp://host") or inside a path ("a//host").
                before = rf"(?<![\w:/\\.-]{re.escape(literal)})"
                forms.append(_form(literal, end, prefix.replace("/", slash, 1), before))
        self._by_host = [(host, host.encode("ascii"), forms) for host, forms in by_host.items()]

    def __bool__(self) -> bool:
        return bool(self._by_host)

    def rewrite(self, text: str) -> str:
        for host, _, forms in self._by_host:
            if host not in text:
                continue
            for form in forms:
                if form.literal in text:
                    text = form.pattern.sub(form.replacement, text)
        return text

    def rewrite_bytes(self, body: bytes) -> bytes:
        for _, host, forms in self._by_host:
            if host not in body:
                continue
            for form in forms:
                if form.literal.encode("ascii") in body:
                    body = form.pattern_b.sub(form.replacement_b, body)
        return body


# Root-relative URLs in markup: the attributes that hold a URL, and CSS url()/@import.
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
_CSS_OPENERS = ("url(", 'url("', "url('", "URL(", 'URL("', "URL('", '@import "', "@import '")


def _root_link_pattern(html: bool) -> str:
    openers = [re.escape(o) for o in _CSS_OPENERS]
    if html:
        for attr in URL_ATTRIBUTES:
            for name in (attr, attr.upper()):
                # Whitespace before the name: "metadata=" must not pass for "data=".
                openers += [rf"\s{name}=\"", rf"\s{name}='", rf"\s{name}="]
    # The slash comes first so that it is the literal the engine scans for; the cheap
    # one-character lookbehind then discards most slashes before the long alternation.
    looks = "|".join(f"(?<={o}/)" for o in openers)
    return rf"/(?<=[=\"'(]/)(?:{looks})(?![/\\]|\.site\.)"


_ROOT_HTML = re.compile(_root_link_pattern(html=True))
_ROOT_HTML_B = re.compile(_root_link_pattern(html=True).encode("ascii"))
_ROOT_CSS = re.compile(_root_link_pattern(html=False))
_ROOT_CSS_B = re.compile(_root_link_pattern(html=False).encode("ascii"))

# srcset="a.png 1x, /b.png 2x" holds several URLs; <meta http-equiv=refresh
# content="0; url=/next"> holds one after "url=". Both are rare: a callback is fine.
_SRCSET = re.compile(r"""(\ssrcset\s*=\s*)(["'])(.*?)\2""", re.IGNORECASE | re.DOTALL)
_SRCSET_B = re.compile(rb"""(\ssrcset\s*=\s*)(["'])(.*?)\2""", re.IGNORECASE | re.DOTALL)
_REFRESH = re.compile(r"""(;\s*url\s*=\s*['"]?)/(?![/\\]|\.site\.)""", re.IGNORECASE)
_REFRESH_B = re.compile(rb"""(;\s*url\s*=\s*['"]?)/(?![/\\]|\.site\.)""", re.IGNORECASE)
_CANDIDATE = re.compile(r"(^|,)(\s*)/(?![/\\]|\.site\.)")
_CANDIDATE_B = re.compile(rb"(^|,)(\s*)/(?![/\\]|\.site\.)")


class RootLinks:
    """Gives root-relative links (``/path``) in HTML attributes and CSS the site's
    prefix, so every page URL carries it and pages of two sites can be open at once."""

    def __init__(self, name: str) -> None:
        self.replacement = f"{SITE_PREFIX}{name}/"
        self.replacement_b = self.replacement.encode("ascii")

    def rewrite(self, text: str, html: bool) -> str:
        text = (_ROOT_HTML if html else _ROOT_CSS).sub(self.replacement, text)
        if html:
            if "srcset" in text or "SRCSET" in text:
                text = _SRCSET.sub(self._srcset, text)
            if "efresh" in text or "EFRESH" in text:
                text = _REFRESH.sub(lambda m: m.group(1) + self.replacement, text)
        return text

    def rewrite_bytes(self, body: bytes, html: bool) -> bytes:
        body = (_ROOT_HTML_B if html else _ROOT_CSS_B).sub(self.replacement_b, body)
        if html:
            if b"srcset" in body or b"SRCSET" in body:
                body = _SRCSET_B.sub(self._srcset_b, body)
            if b"efresh" in body or b"EFRESH" in body:
                body = _REFRESH_B.sub(lambda m: m.group(1) + self.replacement_b, body)
        return body

    def _srcset(self, m: re.Match[str]) -> str:
        value = _CANDIDATE.sub(lambda c: c.group(1) + c.group(2) + self.replacement, m.group(3))
        return f"{m.group(1)}{m.group(2)}{value}{m.group(2)}"

    def _srcset_b(self, m: re.Match[bytes]) -> bytes:
        value = _CANDIDATE_B.sub(lambda c: c.group(1) + c.group(2) + self.replacement_b, m.group(3))
        return m.group(1) + m.group(2) + value + m.group(2)
