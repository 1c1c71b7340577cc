"""Root-relative links in XML bodies: WebDAV answers, feeds, sitemaps.

A WebDAV server answers PROPFIND with ``<D:href>/dir/file</D:href>``; through the proxy
that path must read ``/.site.<name>/dir/file``, or clients go looking for resources
that are not there. The same holds for Atom and RSS ``<link href="/x">``, sitemap
``<loc>/x</loc>`` and ``xlink:href="/x"``. Elements and attributes are matched with any
namespace prefix (``D:``, ``d:``, ``ns0:`` or none). Only the prefix is inserted: the
path itself, percent-escapes included, is left byte for byte as the backend wrote it.
Absolute backend URLs in the same places are handled by filters/links.py.
"""

from __future__ import annotations

import re
from typing import Any

from filters.names import NOT_PREFIXED, SITE_PREFIX

# What follows the slash must not make it a scheme-relative URL or an already
# prefixed one.
_ROOT = "/" + NOT_PREFIXED
_SOURCE = (
    # <D:href>/x</D:href>, <loc>/x</loc>: the element's text.
    rf"(<(?:[\w.-]+:)?(?:href|loc)\s*>\s*){_ROOT}"
    # <link href="/x"/>, xlink:href='/x': the attribute.
    rf"|(\s(?:[\w.-]+:)?href\s*=\s*[\"']){_ROOT}"
)


class XmlLinks:
    """Gives root-relative links in XML this site's prefix. The same interface as
    filters.rootlinks.RootLinks, so the pipeline applies either the same way."""

    def __init__(self, name: str) -> None:
        prefix = f"{SITE_PREFIX}{name}/"
        self._text = re.compile(_SOURCE)
        self._bytes = re.compile(_SOURCE.encode("ascii"))
        self._text_repl = _replacement(prefix)
        self._bytes_repl = _replacement(prefix.encode("ascii"))

    def rewrite(self, text: str, html: bool = False) -> str:
        if "href" not in text and "loc" not in text:
            return text
        return self._text.sub(self._text_repl, text)

    def rewrite_bytes(self, body: bytes, html: bool = False) -> bytes:
        if b"href" not in body and b"loc" not in body:
            return body
        return self._bytes.sub(self._bytes_repl, body)


def _replacement(prefix: Any) -> Any:
    def replace(m: re.Match[Any]) -> Any:
        return (m.group(1) if m.group(1) is not None else m.group(2)) + prefix

    return replace


__all__ = ["XmlLinks"]
