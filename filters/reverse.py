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
(WebDAV and CalDAV clients send back the hrefs they were given). The README's "What
comes back exactly" lists what is and is not invertible.

A prefixed URL of a site that is not configured, or on a host that is not the proxy's, is
left as it is. Everything here is pure; patterns and replacements are ASCII, so text
decoded as Latin-1 from any ASCII-compatible charset maps correctly without decoding.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import NamedTuple

# Where a prefixed URL starts: its first slash, plain, JSON-escaped or percent-encoded.
_MARK = re.compile(r"(?:\\/|%2[Ff]|/)\.site\.([A-Za-z0-9][A-Za-z0-9._-]*)")
# What may stand just before the mark for it to begin an absolute or scheme-relative URL
# of the proxy, per spelling of the slash. Anchored at the mark (\Z): searched in the
# text just before it.
_ABSOLUTE = {
    style: re.compile(
        rf"(?i)(?:(?<![\w+.-])(https?){colon}|(?<![\w.~/:%\\-])){slashes}({authority})\Z"
    )
    for style, colon, slashes, authority in (
        ("/", ":", "//", r"[A-Za-z0-9.\-\[\]:]+"),
        ("\\/", ":", r"\\/\\/", r"[A-Za-z0-9.\-\[\]:]+"),
        # Percent-encoded, the port's colon and an IPv6 address's brackets are too.
        ("%2F", "%3A", "%2F%2F", r"[A-Za-z0-9.\-%]+"),
    )
}
# A character before a bare "/.site." that makes it part of a longer path or word,
# not the start of a root-relative URL.
_CONTINUES = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._~%:@-")
# XML places whose root-relative paths filters/xmllinks.py prefixed.
_XML_HREF = re.compile(
    r"""(?:<(?:[\w.-]+:)?(?:href|loc)\s*>\s*|\s(?:[\w.-]+:)?href\s*=\s*["'])\Z"""
)
_LOOK_BACK = 300  # an authority longer than this is not one of ours


class Backend(NamedTuple):
    base_url: str  # scheme://host[:port]
    netloc: str  # host[:port]


class ReverseLinks:
    """Maps the proxy's URLs in text back to the backends' (see the module's docstring).

    ``sites`` maps each site's name to its base URL (``scheme://host[:port]``)."""

    def __init__(self, sites: Mapping[str, str]) -> None:
        self._sites = {name: Backend(url, url.partition("://")[2]) for name, url in sites.items()}

    def __bool__(self) -> bool:
        return bool(self._sites)

    def map(self, text: str, proxy_hosts: Iterable[str] = (), xml: bool = False) -> str:
        """``text`` with every prefixed URL of a configured site written as the backend's.
        ``proxy_hosts`` are the host[:port] values under which clients reach the proxy
        (lower case); absolute URLs on other hosts are left alone."""
        if ".site." not in text:
            return text
        hosts = frozenset(proxy_hosts)
        out: list[str] = []
        done = 0  # text[:done] is settled
        for m in _MARK.finditer(text):
            start = m.start()
            if start < done:
                continue
            found = self._site(m.group(1))
            if found is None:
                continue
            backend, name_length = found
            end = m.start(1) + name_length
            style = m.group()[0]
            slash = "/" if style == "/" else "\\/" if style == "\\" else m.group()[:3]
            head = text[max(done, start - _LOOK_BACK) : start]
            absolute = _ABSOLUTE[slash.upper() if style == "%" else slash].search(head)
            if absolute is not None:
                authority = absolute.group(2)
                if style == "%":
                    authority = urllib.parse.unquote(authority)
                if authority.lower() not in hosts:
                    continue  # a URL of some other host that happens to hold the prefix
                begin = start - (len(head) - absolute.start())
                url = backend.base_url if absolute.group(1) else f"//{backend.netloc}"
                replacement = _spelled(url, slash)
            else:
                before = text[start - 1] if start else ""
                if before in _CONTINUES or before == "/":
                    continue  # inside a longer path ("/a/.site.x") or word
                begin = start
                if xml and style == "/" and _XML_HREF.search(head):
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

    def _site(self, name: str) -> tuple[Backend, int] | None:
        """The site a name after the prefix means, and the name's length. A name may
        end in dots ("/.site.wiki." at the end of a sentence): the longest configured
        one wins."""
        while name:
            backend = self._sites.get(name)
            if backend is not None:
                return backend, len(name)
            if not name.endswith("."):
                return None
            name = name[:-1]
        return None


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
