"""Automatic link rewriting: absolute URLs of any backend (root-relative links are
filters/rootlinks.py).

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
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

from filters.names import SITE_PREFIX

# After a host (and port), the next character must not continue the host name or the
# port: "10.1.2.3" must not match "10.1.2.30", "10.1.2.3.example" or "10.1.2.3:8080"
# (nor "10.1.2.3%3A8080", percent-encoded).
_HOST_END = r"(?![\w-]|\.[\w-]|:\d|%3[Aa]\d)"


@dataclass(frozen=True)
class Origin:
    """A backend origin as pages spell it."""

    name: str  # the site's name in /.site.<name>
    scheme: str
    host: str
    port: int
    default_port: bool


class Sub(NamedTuple):
    """One rule: where ``literal`` occurs, ``pattern`` may match; it becomes
    ``replacement``. Fields are all str or all bytes."""

    literal: Any
    pattern: re.Pattern[Any]
    replacement: Any


class Both:
    """Compiles the same source for text and for bytes. ASCII classes, so that both
    agree on what continues a host name."""

    @staticmethod
    def pattern(source: str) -> tuple[re.Pattern[str], re.Pattern[bytes]]:
        return re.compile(source, re.ASCII), re.compile(source.encode("ascii"))

    @staticmethod
    def sub(literal: str, source: str, replacement: str) -> tuple[Sub, Sub]:
        text, raw = Both.pattern(source)
        return (
            Sub(literal, text, replacement),
            Sub(literal.encode("ascii"), raw, replacement.encode("ascii")),
        )


# --- backend links --------------------------------------------------------------------


# What most often follows an origin in a page; none of them continues a host or a port.
_FOLLOWERS = ("/", '"', "'")


class _Host(NamedTuple):
    """Every spelling of the origins on one host, for text or for bytes."""

    host: Any
    plain: list[tuple[Sub, re.Pattern[Any]]]  # scheme://host, with its "unsafe" check
    guard: re.Pattern[Any]  # finds the host after a slash: other spellings may be there
    others: list[Sub]  # //host, the JSON-escaped and the percent-encoded spellings
    # For each plain spelling, (literal + follower, replacement + follower) pairs.
    followed: list[list[tuple[Any, Any]]]
    # What every spelling holds: the host after "//" or "\/", or after a percent-encoded
    # "//".
    slashed: tuple[Any, Any]
    percent: tuple[Any, Any]


class BackendLinks:
    """Rewrites ``http://host[:port]``, ``https://...``, ``//host``, their JSON/JS
    escaped forms (``http:\\/\\/host``) and percent-encoded forms (``http%3A%2F%2Fhost``)
    of every configured origin to ``/.site.<name>``.

    The common spelling, ``scheme://host`` followed by "/", '"' or "'", is replaced with
    ``str.replace`` (the fastest scan there is), and that is all when no spelling of the
    host remains (_plain_only); otherwise every spelling is rewritten by its own pattern
    from the original text (_exact), the other spellings only once a search anchored on
    the host has seen it after a slash.

    Each origin (scheme, host, port) may be given once: two names for one origin would
    make the two ways disagree on which name it gets (the site table keeps the first).
    """

    def __init__(self, origins: Iterable[Origin]) -> None:
        origins = list(origins)
        given = [(o.scheme, o.host, o.port) for o in origins]
        if len(set(given)) != len(given):
            raise ValueError("an origin is given twice: each (scheme, host, port) once")
        hosts: dict[str, tuple[_Host, _Host]] = {}
        seen: set[tuple[str, str]] = set()
        # Longest host first, so that of two hosts one of which ends the other, the
        # longer is tried first (the host-end check makes this belt and braces).
        for o in sorted(origins, key=lambda o: (-len(o.host), o.host, o.port)):
            if o.host not in hosts:
                # What the plain spellings leave: the host after "/" ("//host",
                # "\/\/host") or after a percent-encoded slash.
                after = "|".join(f"(?<={re.escape(pre + o.host)})" for pre in ("/", "%2F", "%2f"))
                guards = Both.pattern(f"{re.escape(o.host)}(?:{after})")
                # What every spelling holds (a path segment "/wiki/" does not).
                slashed = ("//" + o.host, "\\/" + o.host)
                percent = ("%2F%2F" + o.host, "%2f%2f" + o.host)
                hosts[o.host] = (
                    _Host(o.host, [], guards[0], [], [], slashed, percent),
                    _Host(
                        o.host.encode("ascii"),
                        [],
                        guards[1],
                        [],
                        [],
                        (slashed[0].encode("ascii"), slashed[1].encode("ascii")),
                        (percent[0].encode("ascii"), percent[1].encode("ascii")),
                    ),
                )
            text, raw = hosts[o.host]
            port = "" if o.default_port else f":{o.port}"
            end = (rf"(?::{o.port})?" if o.default_port else "") + _HOST_END
            prefix = f"{SITE_PREFIX}{o.name}"
            literal = f"{o.scheme}://{o.host}{port}"
            subs = Both.sub(literal, re.escape(literal) + end, prefix)
            unsafe = Both.pattern(re.escape(literal) + r"(?=[\w-]|\.[\w-]|:\d)")
            text.plain.append((subs[0], unsafe[0]))
            raw.plain.append((subs[1], unsafe[1]))
            pairs = [(literal + f, prefix + f) for f in _FOLLOWERS]
            text.followed.append(pairs)
            raw.followed.append([(a.encode("ascii"), b.encode("ascii")) for a, b in pairs])
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
        subs = Both.sub(literal, re.escape(literal) + rest, replacement)
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
        data = _plain_only(data, h)
    return data


def _plain_only(data: Any, h: _Host) -> Any:
    """``data`` rewritten, the fast way when every occurrence of the host is in a plain
    ``scheme://host[:port]`` spelling followed by one of _FOLLOWERS (the common page).

    Each such spelling + follower is replaced with ``str.replace``, the fastest scan
    there is, which does what _exact's patterns would do: these followers cannot
    continue a host or a port. Once the host no longer occurs after "//", "\\/" or a
    percent-encoded "//" (_spelled), nothing is left for the search for unsafe
    continuations or for other spellings, since every spelling has it there (the host
    alone may remain: a site named like its host, "/.site.wiki", a path "/wiki/Page", or
    a word of the text). While it still
    occurs so, the work is dropped and _exact does all from the original: a replacement
    begins with "/", and may have made a safe follower of an occurrence just before it
    that _exact, in one pass, leaves as it is."""
    original = data
    present = []
    for i, (sub, _) in enumerate(h.plain):
        if sub.literal not in original:
            continue
        present.append(i)
        for needle, replacement in h.followed[i]:
            data = data.replace(needle, replacement)
            if not _spelled(data, h):
                return data
    return _exact(original, h, present)


def _spelled(data: Any, h: _Host) -> bool:
    """Whether ``data`` may still hold a spelling of the host: the host after "//" or
    "\\/" (every plain, scheme-relative and JSON-escaped spelling has one), or after
    "%2F%2F"/"%2f%2f" (the percent-encoded ones; looked for only where a "%" is)."""
    if any(m in data for m in h.slashed):
        return True
    percent = "%" if isinstance(data, str) else b"%"
    return percent in data and any(p in data for p in h.percent)


def _exact(data: Any, h: _Host, plain: Iterable[int]) -> Any:
    """Every spelling of the host rewritten, each by its own pattern; ``plain`` says
    which plain spellings to look for."""
    for i in plain:
        sub, unsafe = h.plain[i]
        if sub.literal in data:
            if unsafe.search(data):
                data = sub.pattern.sub(sub.replacement, data)
            else:
                data = data.replace(sub.literal, sub.replacement)
    if h.guard.search(data):
        for sub in h.others:
            data = sub.pattern.sub(sub.replacement, data)
    return data
