"""Request bodies that are held whole so that the proxy's URLs in them go back to the
backend as the backend's own (filters/requestbody.py), and the choice of which ones.

Only text bodies of a site that maps requests are held (forms, multipart forms, JSON,
XML, text), up to ``request_map_max_bytes``; files, binary bodies, larger bodies and
compressed ones stream to the backend as they arrive. Every body looked at leaves its
result in the access record and the metrics: ``mapped``, ``unchanged``, ``too_large``,
``encoded`` or ``undecodable``.
"""

from __future__ import annotations

import logging

from tornado.httputil import HTTPHeaders

from filters.requestbody import BodyMapper, Undecodable, body_kind

log = logging.getLogger(__name__)

# Checksums of the body as the client sent it: wrong once it is mapped.
_DIGESTS = frozenset({"content-md5", "digest", "content-digest", "repr-digest"})


def hold_decision(
    mapper: BodyMapper | None, headers: HTTPHeaders, length: int | None, limit: int
) -> str | None:
    """ "hold" to hold this body for mapping; otherwise why not, as the result to count
    ("too_large", "encoded"), or None when the body is not one that is mapped."""
    if mapper is None or body_kind(headers.get("Content-Type")) is None:
        return None
    if headers.get("Content-Encoding", "identity").strip().lower() != "identity":
        return "encoded"
    if length is not None and length > limit:
        return "too_large"
    return "hold"


class HeldBody:
    """A request body being read whole, up to ``limit`` bytes."""

    __slots__ = ("chunks", "limit", "size")

    def __init__(self, limit: int) -> None:
        self.chunks: list[bytes] = []
        self.size = 0
        self.limit = limit

    def add(self, chunk: bytes) -> bool:
        """Keep ``chunk``; False once the body is larger than the limit (a body sent
        without Content-Length can only tell then)."""
        self.chunks.append(chunk)
        self.size += len(chunk)
        return self.size <= self.limit

    def take(self) -> bytes:
        body = b"".join(self.chunks)
        self.chunks = []
        return body


def map_body(
    body: bytes, mapper: BodyMapper, headers: dict[str, str], where: str
) -> tuple[bytes, str]:
    """The body to send upstream and the result to count. ``headers`` are the upstream
    request's: its checksums of the client's bytes are dropped when they change."""
    try:
        mapped = mapper.body(body, headers.get("Content-Type"))
    except Undecodable as exc:
        log.warning("%s: request body sent unchanged: %s", where, exc)
        return body, "undecodable"
    if mapped is None:
        return body, "unchanged"
    for name in [name for name in headers if name.lower() in _DIGESTS]:
        del headers[name]
    log.debug("%s: request body mapped (%d -> %d bytes)", where, len(body), len(mapped))
    return mapped, "mapped"


def log_unmapped(result: str, where: str, limit: int) -> None:
    if result == "too_large":
        log.warning(
            "%s: request body larger than request_map_max_bytes (%d): sent unchanged",
            where,
            limit,
        )
    else:
        log.info("%s: compressed request body: sent unchanged", where)


__all__ = ["HeldBody", "hold_decision", "log_unmapped", "map_body"]
