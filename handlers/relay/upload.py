"""Request bodies that are held whole so that the proxy's URLs in them go back to the
backend as the backend's own (filters/requestbody.py), and the choice of which ones.

Only text bodies of a site that maps requests are held (forms, multipart forms, JSON,
XML, text), each up to ``request_map_max_bytes`` and all of a process's together up to
HELD_BUDGET such bodies; files, binary bodies, larger bodies, compressed ones and those
past the budget stream to the backend as they arrive. Every body looked at leaves a
``BodyResult`` in the access record and the metrics.
"""

from __future__ import annotations

import enum
import logging

from tornado.httputil import HTTPHeaders
from tornado.ioloop import IOLoop

from filters.requestbody import BodyMapper, Undecodable, body_kind

log = logging.getLogger(__name__)

# How many bodies of the largest size a process may hold at once: past that, memory
# matters more than mapping, and bodies stream unchanged (counted "busy").
HELD_BUDGET = 16
# A held body larger than this is mapped in a thread (about 0.1 ms per 100 KB of text).
_MAP_IN_THREAD = 256 << 10
# Checksums of the body as the client sent it: wrong once it is mapped.
_DIGESTS = frozenset({"content-md5", "digest", "content-digest", "repr-digest"})


class BodyResult(enum.Enum):
    """What became of a request body the proxy looked at (the metric's label)."""

    MAPPED = "mapped"
    UNCHANGED = "unchanged"  # read, and nothing of the proxy's was in it
    TOO_LARGE = "too_large"  # above request_map_max_bytes: streamed as sent
    ENCODED = "encoded"  # compressed (Content-Encoding): streamed as sent
    BUSY = "busy"  # the process holds as much as it may: streamed as sent
    UNDECODABLE = "undecodable"  # its charset would not give its bytes back: sent as is
    ERROR = "error"  # mapping failed (a bug: the log has the traceback): sent as is


def is_mappable(mapper: BodyMapper | None, headers: HTTPHeaders) -> bool:
    """Whether this request's body is one that mapping reads."""
    return mapper is not None and body_kind(headers.get("Content-Type")) is not None


def why_not_held(headers: HTTPHeaders, length: int | None, limit: int) -> BodyResult | None:
    """Why a mappable body must stream as it is; None when it can be held."""
    if headers.get("Content-Encoding", "identity").strip().lower() != "identity":
        return BodyResult.ENCODED
    if length is not None and length > limit:
        return BodyResult.TOO_LARGE
    return None


class HeldBytes:
    """The bytes a process holds in request bodies, against its budget."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.held = 0

    def take(self, size: int) -> bool:
        if self.held + size > self.budget:
            return False
        self.held += size
        return True

    def give_back(self, size: int) -> None:
        self.held -= size


class HeldBody:
    """A request body being read whole, up to ``limit`` bytes and the process's budget.
    Whoever stops holding it calls ``release``."""

    __slots__ = ("budget", "chunks", "limit", "size")

    def __init__(self, limit: int, budget: HeldBytes) -> None:
        self.chunks: list[bytes] = []
        self.size = 0
        self.limit = limit
        self.budget = budget

    def add(self, chunk: bytes) -> BodyResult | None:
        """Keep ``chunk``; or why the body cannot be held any more (one sent without
        Content-Length can only tell when it grows)."""
        if self.size + len(chunk) > self.limit:
            return BodyResult.TOO_LARGE
        if not self.budget.take(len(chunk)):
            return BodyResult.BUSY
        self.chunks.append(chunk)
        self.size += len(chunk)
        return None

    def release(self) -> bytes:
        """The body held so far; its bytes no longer count against the budget."""
        body = b"".join(self.chunks)
        self.chunks = []
        self.budget.give_back(self.size)
        self.size = 0
        return body


def map_body(
    body: bytes, mapper: BodyMapper, content_type: str | None, where: str
) -> tuple[bytes, BodyResult]:
    """The body to send upstream, and what became of it. Pure, and safe to run in
    another thread."""
    try:
        mapped = mapper.body(body, content_type)
    except Undecodable as exc:
        log.warning("%s: request body sent unchanged: %s", where, exc)
        return body, BodyResult.UNDECODABLE
    except Exception:
        log.exception("%s: mapping the request body failed; sent unchanged", where)
        return body, BodyResult.ERROR
    if mapped is None:
        return body, BodyResult.UNCHANGED
    log.debug("%s: request body mapped (%d -> %d bytes)", where, len(body), len(mapped))
    return mapped, BodyResult.MAPPED


async def map_held(
    body: bytes, mapper: BodyMapper, content_type: str | None, where: str
) -> tuple[bytes, BodyResult]:
    """``map_body``; a large body in a thread, so that the other requests of this process
    go on meanwhile."""
    if len(body) <= _MAP_IN_THREAD:
        return map_body(body, mapper, content_type, where)
    loop = IOLoop.current()
    return await loop.run_in_executor(None, map_body, body, mapper, content_type, where)


def drop_digests(headers: dict[str, str]) -> None:
    """Remove the upstream request's checksums of the body the client sent."""
    for name in [name for name in headers if name.lower() in _DIGESTS]:
        del headers[name]


def log_unheld(result: BodyResult, where: str, limit: int) -> None:
    if result is BodyResult.TOO_LARGE:
        log.warning(
            "%s: request body larger than request_map_max_bytes (%d): sent unchanged",
            where,
            limit,
        )
    elif result is BodyResult.BUSY:
        log.warning("%s: %d bodies' worth held already: sent unchanged", where, HELD_BUDGET)
    else:
        log.info("%s: compressed request body: sent unchanged", where)


__all__ = [
    "HELD_BUDGET",
    "BodyResult",
    "HeldBody",
    "HeldBytes",
    "drop_digests",
    "is_mappable",
    "log_unheld",
    "map_body",
    "map_held",
    "why_not_held",
]
