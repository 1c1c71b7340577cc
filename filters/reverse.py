"""The proxy's URLs in what a client sends, back to the backends' own: the inverse of
filters/links.py, for request bodies and query strings (filters/requestbody.py).

What a page showed the user comes back when they save it: a settings form, a JSON
document from a rich-text editor, a menu item's URL field. The response side gave each
backend URL one of the spellings on the left; each comes back as the one on the right:

======================================================  ==============================
the client sends                                        the backend is sent
======================================================  ==============================
``/.site.<name>/x``                                     ``<name's base URL>/x``
``<scheme>://<proxy host>/.site.<name>/x``              ``<name's base URL>/x``
``//<proxy host>/.site.<name>/x``                       ``//<name's host[:port]>/x``
any of these JSON-escaped (``\\/``) or percent-encoded  the same, escaped alike
======================================================  ==============================

A bare prefixed URL becomes absolute. The response side writes both ``http://backend/x``
(anywhere in a text body) and ``/x`` (in HTML attributes and CSS) as ``/.site.<name>/x``;
of the two, the absolute form is the one stored content holds (rich text, settings,
menus, JSON from an API), while root-relative links live in a page's own markup, which is
seldom sent back. One exception is exact too: in XML, an ``href`` or ``loc`` element or an
``href`` attribute that filters/xmllinks.py prefixed gets its root-relative path back
(WebDAV and CalDAV clients send back the hrefs they were given). docs/translation.md,
"What comes back exactly", lists what is and is not invertible.

A prefixed URL of a site that is not configured, or on a host that is not the proxy's, is
left as it is. Everything here is pure; patterns and replacements are ASCII, so text
decoded as Latin-1 from any ASCII-compatible charset maps correctly without decoding.
"""

from __future__ import annotations

import functools
import re
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from typing import NamedTuple

from filters.names import SITE_MARK, SITE_MARK_RE
from filters.urls import split_url

# A prefixed URL: its first slash (plain, JSON-escaped or percent-encoded) is looked at
# once this is found. Led by a literal, so that the engine skips from one to the next.
_MARK = SITE_MARK_RE
# How each spelling of the mark's slash writes "//" and ":" before an authority, and what
# an authority may hold in it (percent-encoded, a port's colon is "%3A").
_DOUBLE = {"/": ("//",), "\\/": ("\\/\\/",), "%": ("%2F%2F", "%2f%2f")}
_COLON = {"/": ":", "\\/": ":", "%": "%3a"}
_HOST_CHARS = {
    "/": re.compile(r"[A-Za-z0-9.\-\[\]:]+"),
    "\\/": re.compile(r"[A-Za-z0-9.\-\[\]:]+"),
    "%": re.compile(r"[A-Za-z0-9.\-%]+"),
}
# A character before a bare "/.site." that makes it part of a longer path or word,
# not the start of a root-relative URL.
_CONTINUES = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._~%:@-/")
# A JSON or JavaScript escape just before the mark stands for one character: "\n" or
# "\u0022" (JSON_HEX_QUOT) end a word as much as a newline or a quote does.
_ESCAPED = re.compile(r"\\(?:u([0-9A-Fa-f]{4})|[nrtbf\"\\'])\Z")
_CONTINUES_OR_ESCAPE = _CONTINUES | {"\\"}
# What continues a scheme's name ("xhttp:" is not "http:").
_IN_SCHEME = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-")
_HEX = re.compile(r"[0-9A-Fa-f]{2}")
# The last characters of "\\uXXXX", "\\n" and "%XX": only after one of them can an
# escape end.
_MAY_END_ESCAPE = frozenset("0123456789abcdefABCDEFnrtbf\"'\\")
# XML places whose root-relative paths filters/xmllinks.py prefixed.
_XML_HREF = re.compile(
    r"""(?:<(?:[\w.-]+:)?(?:href|loc)\s*>\s*|\s(?:[\w.-]+:)?href\s*=\s*["'])\Z"""
)


class Backend(NamedTuple):
    base_url: str  # scheme://host[:port]
    netloc: str  # host[:port]


class ReverseLinks:
    """Maps the proxy's URLs in text back to the backends' (see the module's docstring).

    ``sites`` maps each site's name to its base URL (``scheme://host[:port]``)."""

    def __init__(self, sites: Mapping[str, str]) -> None:
        self._sites: dict[str, Backend] = {}
        for name, url in sites.items():
            parts = split_url(url)
            if parts is None or not parts.scheme:
                raise ValueError(f"{name}: {url!r} is not an http(s) base URL")
            self._sites[name] = Backend(url, parts.authority)

    def __bool__(self) -> bool:
        return bool(self._sites)

    def map(
        self,
        text: str,
        proxy_hosts: Iterable[str] = (),
        xml: bool = False,
        allowed: Callable[[str], bool] | None = None,
    ) -> str:
        """``text`` with every prefixed URL of a configured site written as the backend's.
        ``proxy_hosts`` are the host[:port] values under which clients reach the proxy
        (lower case); absolute URLs on other hosts are left alone. ``allowed`` says which
        site names may be mapped (those the client may open); by default, all."""
        if SITE_MARK not in text:
            return text
        hosts = frozenset(proxy_hosts)
        # How far back an authority of the proxy can start: its longest spelling.
        reach = 3 * max(map(len, hosts), default=0) + len("https%3A%2F%2F")
        out: list[str] = []
        done = 0  # text[:done] is settled
        for m in _MARK.finditer(text):
            dot = m.start()
            if text[dot - 1 : dot] == "/":
                style = slash = "\\/" if text[dot - 2 : dot - 1] == "\\" else "/"
                start = dot - len(style)
            elif text[dot - 3 : dot] in ("%2F", "%2f"):
                style, slash, start = "%", text[dot - 3 : dot], dot - 3
            else:
                continue
            if start < done:
                continue
            found = self._site(m.group(1), allowed)
            if found is None:
                continue
            backend, name_length = found
            end = m.start(1) + name_length
            absolute = _authority(text, max(done, start - reach), start, style)
            if absolute is not None:
                begin, authority, has_scheme = absolute
                if authority.lower() not in hosts:
                    continue  # a URL of some other host that happens to hold the prefix
                url = backend.base_url if has_scheme else f"//{backend.netloc}"
                replacement = _spelled(url, slash)
            else:
                if not _starts_url(text, start):
                    continue  # inside a longer path ("/a/.site.x") or word
                begin = start
                if xml and style == "/" and _XML_HREF.search(text, max(done, start - 80), start):
                    # The root-relative href the backend wrote: only the prefix goes.
                    replacement = "" if text.startswith("/", end) else "/"
                else:
                    replacement = _spelled(backend.base_url, slash)
            out.append(text[done:begin])
            out.append(replacement)
            done = end
        if not out:
            return text
        out.append(text[done:])
        return "".join(out)

    def _site(self, name: str, allowed: Callable[[str], bool] | None) -> tuple[Backend, int] | None:
        """The site a name after the prefix means, and the name's length. A name may
        end in dots ("/.site.wiki." at the end of a sentence): the longest configured
        one wins."""
        while name:
            backend = self._sites.get(name)
            if backend is not None:
                if allowed is not None and not allowed(name):
                    return None
                return backend, len(name)
            if not name.endswith("."):
                return None
            name = name[:-1]
        return None


def _authority(text: str, low: int, start: int, style: str) -> tuple[int, str, bool] | None:
    """The absolute or scheme-relative URL that the mark at ``start`` continues, if any:
    where it begins, its authority (decoded), and whether it has a scheme. Looked for
    backwards from the mark, no further than ``low``: a "//" and an authority that runs
    up to the mark, and before them "http:" or "https:" or nothing that continues a
    word."""
    pos = max(text.rfind(double, low, start) for double in _DOUBLE[style])
    if pos < 0:
        return None
    authority = text[pos + len(_DOUBLE[style][0]) : start]
    if not _HOST_CHARS[style].fullmatch(authority):
        return None
    if style == "%":
        authority = urllib.parse.unquote(authority)
    colon = _COLON[style]
    before = text[max(0, pos - 5 - len(colon)) : pos].lower()
    for scheme in ("https", "http"):
        if before.endswith(scheme + colon):
            begin = pos - len(scheme) - len(colon)
            if _char_before(text, begin) not in _IN_SCHEME:
                return begin, authority, True
            return None  # "xhttp://": not a URL of ours
    if _char_before(text, pos) in _CONTINUES_OR_ESCAPE:
        return None  # "ftp://host", "a//host": not a URL of ours
    return pos, authority, False


def _starts_url(text: str, start: int) -> bool:
    """Whether a bare mark at ``start`` begins a URL: what stands before it does not
    continue a path or a word."""
    return _char_before(text, start) not in _CONTINUES_OR_ESCAPE


def _char_before(text: str, i: int) -> str:
    """The character that ends just before ``i``, as the reader of the text sees it: a
    JSON escape ("\\u0022", "\\n") or a percent escape ("%22", as in a form or a
    query) counts as the character it stands for; "" at the start. A percent-encoded
    backslash is one: before a mark, it makes a JSON "\\/" in a form field, which is
    mapped once the field is decoded (filters/requestbody.py)."""
    if not i:
        return ""
    last = text[i - 1]
    if last not in _MAY_END_ESCAPE:
        return last
    escaped = _ESCAPED.search(text, max(0, i - 6), i)
    if escaped is not None:
        code = escaped.group(1)
        return chr(int(code, 16)) if code is not None else " "
    if i >= 3 and text[i - 3] == "%" and _HEX.fullmatch(text, i - 2, i):
        return chr(int(text[i - 2 : i], 16))
    return text[i - 1]


@functools.lru_cache(maxsize=1024)
def _spelled(url: str, slash: str) -> str:
    """``url`` spelled as the prefix it replaces was: plain, JSON-escaped (``\\/``) or
    percent-encoded (keeping the case of the client's hex digits)."""
    if slash == "/":
        return url
    if slash == "\\/":
        return url.replace("/", "\\/")
    quoted = urllib.parse.quote(url, safe="")
    return quoted.lower() if slash == "%2f" else quoted


__all__ = ["ReverseLinks"]
