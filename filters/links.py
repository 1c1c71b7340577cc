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
    literal_b: bytes
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
        literal.encode("ascii"),
        # ASCII classes, so that text and bytes agree on what continues a host name.
        re.compile(source, re.ASCII),
        re.compile(source.encode("ascii")),
        replacement,
        replacement.encode("ascii"),
    )


@dataclass
class _HostForms:
    """Every spelling of the origins on one host, grouped by how they are looked for."""

    host: str
    host_b: bytes
    plain: list[tuple[_Form, re.Pattern[str], re.Pattern[bytes]]]  # with their "unsafe" check
    escaped: list[_Form]
    relative: list[_Form]
    escaped_guard: re.Pattern[str]
    escaped_guard_b: re.Pattern[bytes]


def _compile_both(source: str) -> tuple[re.Pattern[str], re.Pattern[bytes]]:
    return re.compile(source, re.ASCII), re.compile(source.encode("ascii"))


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
        hosts: dict[str, _HostForms] = {}
        seen: set[tuple[str, str]] = set()
        # Longest host first, so that of two hosts one of which ends the other, the
        # longer is tried first (the host-end check makes this belt and braces).
        for o in sorted(origins, key=lambda o: (-len(o.host), o.host, o.port)):
            forms = hosts.get(o.host)
            if forms is None:
                # What the plain spellings leave: the host after "/" ("//host",
                # "\\/\\/host") or after a percent-encoded slash.
                escaped = "|".join(f"(?<={re.escape(pre + o.host)})" for pre in ("/", "%2F", "%2f"))
                guard, guard_b = _compile_both(f"{re.escape(o.host)}(?:{escaped})")
                forms = _HostForms(o.host, o.host.encode(), [], [], [], guard, guard_b)
                hosts[o.host] = forms
            port = "" if o.default_port else f":{o.port}"
            optional_port = rf"(?::{o.port})?" if o.default_port else ""
            prefix = f"{SITE_PREFIX}{o.name}"
            end = optional_port + _HOST_END
            literal = f"{o.scheme}://{o.host}{port}"
            unsafe = _compile_both(re.escape(literal) + r"(?=[\w-]|\.[\w-]|:\d)")
            forms.plain.append((_form(literal, end, prefix), *unsafe))
            # JSON/JS-escaped and percent-encoded (both cases) spellings.
            for slash, colon in (("\\/", ":"), ("%2F", "%3A"), ("%2f", "%3a")):
                literal = f"{o.scheme}{colon}{slash}{slash}{o.host}{port}"
                forms.escaped.append(_form(literal, end, prefix.replace("/", slash, 1)))
            # Scheme-relative "//host": the page's own scheme, which for a backend's
            # page is the backend's. The first origin to claim host[:port] keeps it.
            if (o.host, port) in seen:
                continue
            seen.add((o.host, port))
            for slash, group in (("/", forms.relative), ("\\/", forms.escaped)):
                literal = f"{slash}{slash}{o.host}{port}"
                # Not after a scheme ("ftp://host") or inside a path ("a//host").
                before = rf"(?<![\w:/\\.-]{re.escape(literal)})"
                group.append(_form(literal, end, prefix.replace("/", slash, 1), before))
        self._hosts = list(hosts.values())

    def __bool__(self) -> bool:
        return bool(self._hosts)

    def rewrite(self, text: str) -> str:
        for h in self._hosts:
            if h.host not in text:
                continue
            for form, unsafe, _ in h.plain:
                if form.literal in text:
                    if unsafe.search(text):
                        text = form.pattern.sub(form.replacement, text)
                    else:
                        text = text.replace(form.literal, form.replacement)
            if h.escaped_guard.search(text):
                for form in h.relative + h.escaped:
                    text = form.pattern.sub(form.replacement, text)
        return text

    def rewrite_bytes(self, body: bytes) -> bytes:
        for h in self._hosts:
            if h.host_b not in body:
                continue
            for form, _, unsafe in h.plain:
                if form.literal_b in body:
                    if unsafe.search(body):
                        body = form.pattern_b.sub(form.replacement_b, body)
                    else:
                        body = body.replace(form.literal_b, form.replacement_b)
            if h.escaped_guard_b.search(body):
                for form in h.relative + h.escaped:
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


@dataclass(frozen=True)
class _Opener:
    """One way a root-relative URL is introduced: ``literal`` ends with the slash."""

    literal: str
    literal_b: bytes
    pattern: re.Pattern[str]
    pattern_b: re.Pattern[bytes]


def _opener(literal: str, names: Iterable[str] = ()) -> _Opener:
    # After the literal: the next character must not make it "//" or a prefixed link;
    # then, for attributes, one of the names must stand (after whitespace, so that
    # "metadata=" does not pass for "data=") just before it.
    source = re.escape(literal) + r"(?![/\\]|\.site\.)"
    looks = [f"(?<=\\s{re.escape(name + literal)})" for name in names]
    if looks:
        source += f"(?:{'|'.join(looks)})"
    return _Opener(
        literal, literal.encode("ascii"), re.compile(source), re.compile(source.encode("ascii"))
    )


_NAMES = [n for attr in URL_ATTRIBUTES for n in (attr, attr.upper())]


@dataclass(frozen=True)
class _Group:
    """Openers that are only looked for when ``guard`` is found: one scan of the body
    for the group instead of one per opener, where the group is rare."""

    guard: re.Pattern[str] | None
    guard_b: re.Pattern[bytes] | None
    openers: tuple[_Opener, ...]


def _group(guard: str | None, *openers: _Opener) -> _Group:
    if guard is None:
        return _Group(None, None, openers)
    return _Group(re.compile(guard), re.compile(guard.encode("ascii")), openers)


# Each group is looked for with one scan; its openers only once that scan found one.
# (CSS's rare upper-case URL( is not rewritten.)
_HTML_GROUPS = (
    _group("=[\"']?/", *(_opener(f"={q}/", _NAMES) for q in ('"', "'", ""))),
    _group(r"url\(", *(_opener(f"url({q}/") for q in ("", '"', "'"))),
    _group("@import", _opener('@import "/'), _opener("@import '/")),
)
_ATTRIBUTES = _HTML_GROUPS[0]
_CSS_GROUPS = _HTML_GROUPS[1:]
_ALL_OPENERS = tuple(o for g in _HTML_GROUPS for o in g.openers)

# srcset="a.png 1x, /b.png 2x" holds several URLs; <meta http-equiv=refresh
# content="0; url=/next"> holds one after "url=". Both are rare: a callback is fine.
# (srcset is looked for in lower case only: upper case does not occur in practice.)
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
        # Each opener's literal, its slash replaced by the prefixed one.
        self._subs = {
            o: (o.literal[:-1] + self.replacement, (o.literal[:-1] + self.replacement).encode())
            for o in _ALL_OPENERS
        }

    def rewrite(self, text: str, html: bool) -> str:
        for group in _HTML_GROUPS if html else _CSS_GROUPS:
            if group.guard is None or group.guard.search(text):
                for opener in group.openers:
                    text = opener.pattern.sub(self._subs[opener][0], text)
                if group is _ATTRIBUTES:
                    text = self._rare_attributes(text)
        return text

    def rewrite_bytes(self, body: bytes, html: bool) -> bytes:
        for group in _HTML_GROUPS if html else _CSS_GROUPS:
            if group.guard_b is None or group.guard_b.search(body):
                for opener in group.openers:
                    body = opener.pattern_b.sub(self._subs[opener][1], body)
                if group is _ATTRIBUTES:
                    body = self._rare_attributes_b(body)
        return body

    # Looked for only on pages that have root-relative attributes at all: a meta
    # refresh's "url=/next" and srcset's further candidates ("a.png 1x, /b.png 2x").
    def _rare_attributes(self, text: str) -> str:
        text = _REFRESH.sub(lambda m: m.group(1) + self.replacement, text)
        if "srcset" in text:
            text = _SRCSET.sub(self._srcset, text)
        return text

    def _rare_attributes_b(self, body: bytes) -> bytes:
        body = _REFRESH_B.sub(lambda m: m.group(1) + self.replacement_b, body)
        if b"srcset" in body:
            body = _SRCSET_B.sub(self._srcset_b, body)
        return body

    def _srcset(self, m: re.Match[str]) -> str:
        value = _CANDIDATE.sub(lambda c: c.group(1) + c.group(2) + self.replacement, m.group(3))
        return f"{m.group(1)}{m.group(2)}{value}{m.group(2)}"

    def _srcset_b(self, m: re.Match[bytes]) -> bytes:
        value = _CANDIDATE_B.sub(lambda c: c.group(1) + c.group(2) + self.replacement_b, m.group(3))
        return m.group(1) + m.group(2) + value + m.group(2)
