"""Rewriting one buffered body: choose the transforms, decode once, apply them in
order, encode once.

The order: the user's SubsFilterRules (the original's semantics, written against the
backend's own text), then root-relative links, then automatic backend links. Each
later step leaves alone what an earlier one produced (``/.site.`` links).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from filters import charsets, codings
from filters.inject import insert_tag
from filters.links import BackendLinks, Origin
from filters.rootlinks import RootLinks
from filters.rules import SubsFilterRules
from filters.urls import DEFAULT_PORTS
from filters.xmllinks import XmlLinks

log = logging.getLogger(__name__)

_SCRIPT_SUBTYPES = frozenset(
    {"javascript", "x-javascript", "ecmascript", "json", "xml", "manifest+json", "ld+json"}
)
_MARKUP = frozenset({"html", "xml"})


def media_type(content_type: str | None) -> tuple[str, str | None]:
    """``text/html; charset=GBK`` -> ``("text/html", "GBK")``."""
    if not content_type:
        return "", None
    main, _, params = content_type.partition(";")
    charset = None
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip("'\"") or None
    return main.strip().lower(), charset


def kind_of(mtype: str) -> str | None:
    """ "html", "css", "xml" or "text" for a rewritable media type; None for the rest,
    which pass byte for byte."""
    if mtype in ("text/html", "application/xhtml+xml"):
        return "html"
    if mtype == "text/event-stream":
        return None  # endless by design: each event must go out as it comes
    if mtype == "text/css":
        return "css"
    top, _, sub = mtype.partition("/")
    if sub.endswith("+xml") or sub == "xml":
        return "xml" if top in ("text", "application", "image") else None
    if top == "text":
        return "text"
    if top == "application" and (sub in _SCRIPT_SUBTYPES or sub.endswith("+json")):
        return "text"
    return None


class SiteLike(Protocol):
    """What a plan needs of a site (read only; handlers.config.sites.Site has it)."""

    @property
    def name(self) -> str: ...

    @property
    def scheme(self) -> str: ...

    @property
    def host(self) -> str: ...

    @property
    def port(self) -> int: ...

    @property
    def filter_rules(self) -> Sequence[SubsFilterRules]: ...

    @property
    def auto_rewrite(self) -> bool: ...

    @property
    def prefix_links(self) -> bool: ...

    @property
    def charset(self) -> str | None: ...


@dataclass(frozen=True)
class SitePlan:
    """What may be done to one site's bodies; built once at start-up."""

    rules: tuple[SubsFilterRules, ...]
    backend_links: BackendLinks | None
    root_links: RootLinks | None
    charset: str | None
    xml_links: XmlLinks | None = None

    def for_response(
        self,
        uri: str,
        content_type: str | None,
        content_encoding: str | None,
        tag: str | None = None,
    ) -> BodyRewriter | None:
        """A rewriter for this response, or None when nothing applies to it. ``tag`` is
        markup to put at the top of an HTML document (the shim's script)."""
        mtype, declared = media_type(content_type)
        kind = kind_of(mtype)
        if kind is None:
            return None
        coding = (content_encoding or "identity").strip().lower()
        if coding not in codings.SUPPORTED:
            return None
        rules = tuple(r for r in self.rules if r.applies_to(uri)) if self.rules else ()
        roots: RootLinks | XmlLinks | None = None
        if kind in ("html", "css"):
            roots = self.root_links
        elif kind == "xml":
            roots = self.xml_links
        if kind != "html":
            tag = None
        if not rules and self.backend_links is None and roots is None and tag is None:
            return None
        return BodyRewriter(
            rules, self.backend_links, roots, kind, declared, self.charset, coding, tag
        )


def build_plans(
    sites: Iterable[SiteLike], origins: Iterable[Origin] | None = None
) -> dict[str, SitePlan]:
    """Each site's plan. ``origins`` are every origin under which pages name a backend
    (by default each site's own); the proxy passes its site table's, which holds each
    backend's netloc in both schemes."""
    sites = list(sites)
    if origins is None:
        origins = [
            Origin(s.name, s.scheme, s.host, s.port, s.port == DEFAULT_PORTS[s.scheme])
            for s in sites
        ]
    links = BackendLinks(origins) or None
    return {
        s.name: SitePlan(
            tuple(s.filter_rules),
            links if s.auto_rewrite else None,
            RootLinks(s.name) if s.prefix_links else None,
            s.charset,
            XmlLinks(s.name) if s.prefix_links else None,
        )
        for s in sites
    }


class BodyRewriter:
    """The transforms for one response body."""

    __slots__ = (
        "backend_links",
        "coding",
        "declared",
        "fallback",
        "kind",
        "root_links",
        "rules",
        "tag",
    )

    def __init__(
        self,
        rules: tuple[SubsFilterRules, ...],
        backend_links: BackendLinks | None,
        root_links: RootLinks | XmlLinks | None,
        kind: str,
        declared: str | None,
        fallback: str | None,
        coding: str,
        tag: str | None = None,
    ) -> None:
        self.rules = rules
        self.backend_links = backend_links
        self.root_links = root_links
        self.kind = kind
        self.declared = declared
        self.fallback = fallback
        self.coding = coding
        self.tag = tag

    def rewrite(self, body: bytes, limit: int) -> bytes | None:
        """The rewritten body, encoded as it came; None when it is to be sent unchanged
        (nothing matched, or it cannot be rewritten safely: the log says why)."""
        raw = body
        if self.coding != "identity":
            try:
                raw = codings.decode(body, self.coding, limit)
            except codings.TooLarge:
                log.warning(
                    "a %s body decodes to more than %d bytes: sent unchanged", self.coding, limit
                )
                return None
            except Exception as exc:  # zlib.error, brotli.error: a corrupt body
                log.warning("cannot decode a %s body (%s): sent unchanged", self.coding, exc)
                return None
        out = self._transform(raw)
        if out is None or out == raw:
            return None
        if self.coding != "identity":
            out = codings.encode(out, self.coding)
        return out

    def _transform(self, raw: bytes) -> bytes | None:
        if self.tag is not None and not self.rules and self.root_links is self.backend_links:
            # Only the tag (the links are both None): no need to know the charset, unless
            # the bytes say they are not ASCII-compatible (see insert_tag).
            tagged = insert_tag(raw, self.tag.encode("ascii"))
            if tagged is not None:
                return tagged
        codec = charsets.detect(raw, self.declared, self.kind, self.fallback)
        html = self.kind == "html"
        if not self.rules and charsets.is_ascii_safe(codec):
            # Only ASCII patterns, and a charset in which ASCII bytes mean ASCII: the
            # bytes can be rewritten as they are, without decoding.
            if self.root_links is not None:
                raw = self.root_links.rewrite_bytes(raw, html)
            if self.backend_links is not None:
                raw = self.backend_links.rewrite_bytes(raw)
            if self.tag is not None:
                raw = insert_tag(raw, self.tag.encode("ascii")) or raw
            return raw
        text = charsets.decode(raw, codec)
        if not charsets.roundtrips(raw, text, codec):
            log.warning(
                "a %s body does not survive decoding as %s: sent unchanged", self.kind, codec
            )
            return None
        for rule in self.rules:
            text = rule.src_pattern.sub(rule.str_dst, text)
        # Root-relative links before backend links: the latter's output ("/.site.x/...")
        # would only be more slashes for the former to look at and turn away.
        if self.root_links is not None:
            text = self.root_links.rewrite(text, html)
        if self.backend_links is not None:
            text = self.backend_links.rewrite(text)
        # Last, so that no rule or link rewriting touches the tag's own URL.
        if self.tag is not None:
            text = insert_tag(text, self.tag) or text
        try:
            return charsets.encode(text, codec, markup=self.kind in _MARKUP)
        except UnicodeEncodeError as exc:
            log.warning("a replacement cannot be written in %s (%s): sent unchanged", codec, exc)
            return None


__all__ = ["BodyRewriter", "SitePlan", "build_plans", "kind_of", "media_type"]
