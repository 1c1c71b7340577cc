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
# Fields that describe the backend's bytes, not a body the proxy has changed: a
# rewritten body goes without them, and so does the answer to HEAD of one.
STALE_WHEN_REWRITTEN = frozenset({"etag", "content-md5", "accept-ranges", "content-length"})


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


def without_stale(fields: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """``fields`` less those that describe the backend's bytes (STALE_WHEN_REWRITTEN)."""
    return [(k, v) for k, v in fields if k.lower() not in STALE_WHEN_REWRITTEN]


__all__ = ["NO_BODY_STATUSES", "STALE_WHEN_REWRITTEN", "Mode", "response_mode", "without_stale"]
