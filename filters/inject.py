"""Putting one tag at the top of an HTML document: where the shim's script goes.

The tag must run before any script of the page, and must not change how the page is
parsed: it goes right after ``<head ...>``, else after ``<html ...>``, else after the
doctype (never before it: a script ahead of the doctype puts the page in quirks
mode). A body with none of the three is not a document but a fragment (a partial
that a page's script will insert somewhere) and is left alone.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

T = TypeVar("T", str, bytes)

# Documents name these early; a fragment that has none of them in its first 64 KiB is
# not searched to its end.
_WINDOW = 64 * 1024
_SOURCES = (r"<head(?:\s[^>]*)?>", r"<html(?:\s[^>]*)?>", r"<!doctype[^>]*>")
_TEXT = [re.compile(s, re.IGNORECASE) for s in _SOURCES]
_BYTES = [re.compile(s.encode("ascii"), re.IGNORECASE) for s in _SOURCES]
_NOT_ASCII = re.compile(b"[\x00\x1b]")


def insert_tag(document: T, tag: T) -> T | None:
    """``document`` with ``tag`` inserted at the top; None when it is a fragment.

    Given bytes, the document need not be decoded: an ASCII tag after an ASCII ``<head>``
    reads the same in every charset whose bytes up to there mean ASCII. That rules out
    only UTF-16/32 (NUL bytes) and an ISO-2022 shift (ESC) before that point, for which
    None is returned too: such a body must be decoded first."""
    patterns: list[re.Pattern[Any]] = _TEXT if isinstance(document, str) else _BYTES
    for pattern in patterns:
        found = pattern.search(document, 0, _WINDOW)
        if found is not None:
            at = found.end()
            if isinstance(document, bytes) and _NOT_ASCII.search(document, 0, at):
                return None
            return document[:at] + tag + document[at:]
    return None


__all__ = ["insert_tag"]
