"""How a response's body travels from the backend to the client: one named mode, chosen
by one pure function (in the manner of h11's ``_body_framing``)."""

from __future__ import annotations

import enum
from collections.abc import Iterable


class Mode(enum.Enum):
    HEADERS_ONLY = "headers only"  # no body may follow the headers
    REWRITE = "rewrite"  # held whole, rewritten, sent with its new length
    SMALL = "small"  # held (it is small and its length known), sent in one write
    STREAM = "stream"  # written as it comes, the backend paused for a slow client


# Responses that have no body, whatever their headers say (RFC 9110 sections 15.3.5 and
# 15.4.5).
NO_BODY_STATUSES = frozenset({204, 304})
# Fields computed from the body's exact bytes. A HEAD answer goes without them when the
# GET's body would be rewritten: a HEAD's Content-Length must be the GET's or absent
# (RFC 9110 section 8.6).
OF_THE_BYTES = frozenset({"content-length", "content-md5"})
# Fields that describe the backend's bytes, not a body the proxy has changed.
STALE_WHEN_REWRITTEN = OF_THE_BYTES | {"etag", "accept-ranges"}


def response_mode(
    method: str,
    status: int,
    length: int | None,
    rewritable: bool,
    rewrite_max_bytes: int,
    small_body_bytes: int,
) -> Mode:
    """The mode of a response to ``method`` with ``status`` and Content-Length ``length``
    (None: unknown), whose body the site's plan would rewrite (``rewritable``)."""
    # Step 1: some responses never have a body: to HEAD, and 204 and 304.
    if method == "HEAD" or status in NO_BODY_STATUSES:
        return Mode.HEADERS_ONLY
    # Step 2: a body to rewrite is held whole, unless it is announced as larger than the
    # cap (one without a length is held until it passes the cap, then streamed), or is
    # a 206, part of a representation, which rewriting would corrupt.
    if rewritable and status != 206 and (length is None or length <= rewrite_max_bytes):
        return Mode.REWRITE
    # Step 3: a small body of known length leaves in one write with its headers.
    if length is not None and length <= small_body_bytes:
        return Mode.SMALL
    # Step 4: everything else is streamed.
    return Mode.STREAM


def rewritten_fields(fields: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The fields of a body the proxy has changed: the backend's less STALE_WHEN_REWRITTEN."""
    return [(k, v) for k, v in fields if k.lower() not in STALE_WHEN_REWRITTEN]


def head_fields(fields: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The fields of a HEAD answer whose GET would be rewritten: the backend's less
    OF_THE_BYTES. (Its ETag stays: conditions go to the backend, which judges them by
    its own tag; WebDAV clients read it with HEAD for an If on their next PUT.)"""
    return [(k, v) for k, v in fields if k.lower() not in OF_THE_BYTES]


__all__ = [
    "NO_BODY_STATUSES",
    "OF_THE_BYTES",
    "STALE_WHEN_REWRITTEN",
    "Mode",
    "head_fields",
    "response_mode",
    "rewritten_fields",
]
