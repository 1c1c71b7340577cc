"""Rewriting one buffered body: choose the transforms, decode once, apply, encode once."""

from __future__ import annotations

import codecs
from collections.abc import Sequence

from filters.rules import SubsFilterRules

_TEXT_SUBTYPES = frozenset(
    {
        "javascript",
        "x-javascript",
        "ecmascript",
        "json",
        "xml",
        "xhtml+xml",
        "rss+xml",
        "atom+xml",
        "svg+xml",
        "manifest+json",
        "ld+json",
    }
)


def media_type(content_type: str | None) -> tuple[str, str | None]:
    """``text/html; charset=GBK`` -> ``("text/html", "gbk")``."""
    if not content_type:
        return "", None
    main, _, params = content_type.partition(";")
    charset = None
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip("'\"").lower() or None
    return main.strip().lower(), charset


def is_text_type(mtype: str) -> bool:
    """Is a body of this media type text that links can live in?"""
    top, _, sub = mtype.partition("/")
    if top == "text":
        return True
    if top != "application" and mtype != "image/svg+xml":
        return False
    return sub in _TEXT_SUBTYPES or sub.endswith(("+xml", "+json"))


class BodyRewriter:
    """The transforms that apply to one response body, run over it in order."""

    __slots__ = ("charset", "rules")

    def __init__(self, rules: Sequence[SubsFilterRules], charset: str | None) -> None:
        self.rules = rules
        self.charset = _known_codec(charset) or "utf-8"

    @classmethod
    def for_response(
        cls, rules: Sequence[SubsFilterRules], uri: str, content_type: str | None
    ) -> BodyRewriter | None:
        """A rewriter when at least one rule applies to this URI and the body is text."""
        if not rules:
            return None
        chosen = [r for r in rules if r.applies_to(uri)]
        if not chosen:
            return None
        mtype, charset = media_type(content_type)
        if not is_text_type(mtype):
            return None
        return cls(chosen, charset)

    def rewrite(self, body: bytes) -> bytes:
        # surrogateescape keeps bytes that do not decode: a page that lies about its
        # charset still comes out byte-exact outside the matches.
        text = body.decode(self.charset, "surrogateescape")
        for rule in self.rules:
            text = rule.src_pattern.sub(rule.str_dst, text)
        return text.encode(self.charset, "surrogateescape")


def _known_codec(charset: str | None) -> str | None:
    if not charset:
        return None
    try:
        return codecs.lookup(charset).name
    except LookupError:
        return None
