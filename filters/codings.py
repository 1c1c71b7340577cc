"""Content-Encoding: which codings the proxy asks for, decoding them before rewriting and
encoding the result again."""

from __future__ import annotations

import zlib

import brotli

SUPPORTED = frozenset({"gzip", "x-gzip", "deflate", "br", "identity"})


class TooLarge(Exception):
    """The decoded body would exceed the limit: a decompression bomb, or just too big."""


def accept_encoding(value: str | None) -> str | None:
    """The client's Accept-Encoding reduced to codings the proxy can decode, so that any
    text response can be rewritten (RFC 9110 section 12.5.3 syntax, q-values kept)."""
    if not value:
        return None
    kept = []
    for item in value.split(","):
        coding = item.split(";", 1)[0].strip().lower()
        if coding in SUPPORTED:
            kept.append(item.strip())
    return ", ".join(dict.fromkeys(kept)) or None


def decode(body: bytes, coding: str, limit: int) -> bytes:
    """Decode one content coding, refusing to produce more than ``limit`` bytes."""
    if coding in ("gzip", "x-gzip"):
        return _inflate(body, zlib.decompressobj(wbits=31), limit)
    if coding == "deflate":
        # RFC 9110 says zlib format; some servers send raw deflate. Try both.
        try:
            return _inflate(body, zlib.decompressobj(), limit)
        except zlib.error:
            return _inflate(body, zlib.decompressobj(wbits=-15), limit)
    if coding == "br":
        out = brotli.Decompressor()
        result = bytearray()
        step = 64 * 1024
        for i in range(0, len(body), step):
            result += out.process(body[i : i + step])
            if len(result) > limit:
                raise TooLarge
        return bytes(result)
    raise ValueError(f"unsupported content coding {coding!r}")


def _inflate(body: bytes, inflater: zlib._Decompress, limit: int) -> bytes:
    out = inflater.decompress(body, limit + 1)
    if len(out) > limit:
        raise TooLarge
    return out + inflater.flush()


def encode(body: bytes, coding: str) -> bytes:
    """Encode again, at a fast level: the page was compressed for the wire, and the
    proxy's time matters more than the last few percent of size."""
    if coding in ("gzip", "x-gzip"):
        compressor = zlib.compressobj(1, zlib.DEFLATED, 31)
        return compressor.compress(body) + compressor.flush()
    if coding == "deflate":
        return zlib.compress(body, 1)
    if coding == "br":
        return brotli.compress(body, quality=2)
    raise ValueError(f"unsupported content coding {coding!r}")
