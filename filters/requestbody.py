"""Request bodies and query strings with the proxy's URLs mapped back to the backends'.

Each kind of body is taken apart only as far as needed to see its text as the backend
will read it, mapped with filters/reverse.py, and put together again; everything that
did not change keeps its bytes:

- ``application/x-www-form-urlencoded`` and query strings: as sent, percent-encoded
  (a spelling the mapping knows); a form value that still holds a mark once decoded
  is decoded, mapped and encoded again;
- ``multipart/form-data``: text fields are mapped in the form's charset; a part with a
  file name is a file the user uploads and passes byte for byte, whatever it holds;
- JSON: as text; the escapes its strings may use around a URL (``\\/``, ``\\u0022``)
  are spellings the mapping knows, so nothing is decoded and written again;
- XML and other text: the text, in its declared charset.

Bodies in a charset whose ASCII bytes always mean ASCII characters (UTF-8, Latin-1,
EUC-JP, ...) are handled as Latin-1 text: every byte is one character, the patterns are
ASCII, so no real decoding is needed and bytes outside the matches cannot change.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable, Iterable

from filters import charsets
from filters.pipeline import media_type
from filters.reverse import ReverseLinks

FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
_PARAM = re.compile(r"""(?i);\s*([\w*-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;\s]*)""")
_ENCODINGS_KEPT = frozenset({"", "7bit", "8bit", "binary"})


class Undecodable(ValueError):
    """The body's bytes do not survive decoding in its charset: it is sent unchanged."""


def body_kind(content_type: str | None) -> str | None:
    """ "form", "multipart", "json", "xml" or "text" for a body that may hold URLs the
    page showed; None for the rest (files, images, archives), which are never read."""
    mtype, _ = media_type(content_type)
    if mtype == FORM:
        return "form"
    if mtype == MULTIPART:
        return "multipart"
    top, _, sub = mtype.partition("/")
    if sub == "json" or sub.endswith("+json"):
        return "json" if top in ("application", "text") else None
    if sub == "xml" or sub.endswith("+xml"):
        return "xml" if top in ("application", "text") else None
    if top == "text":
        return "text"
    return None


class BodyMapper:
    """Maps one request's bodies and query: the site table's ``ReverseLinks``, the hosts
    under which this client reaches the proxy, and which sites it may open."""

    __slots__ = ("allowed", "fallback", "hosts", "links")

    def __init__(
        self,
        links: ReverseLinks,
        hosts: Iterable[str],
        fallback: str | None,
        allowed: Callable[[str], bool] | None = None,
    ) -> None:
        self.links = links
        self.hosts = frozenset(h.lower() for h in hosts)
        self.fallback = fallback  # the site's charset for bodies that declare none
        self.allowed = allowed  # the site names this client may open (None: all)

    def _map(self, text: str, xml: bool = False) -> str:
        return self.links.map(text, self.hosts, xml, self.allowed)

    def query(self, target: str) -> str:
        """A request target with the proxy's URLs in its query mapped, as they are spelled
        there (percent-encoded or not): every other byte is kept."""
        path, sep, query = target.partition("?")
        if not sep or "site" not in query:
            return target
        return path + sep + self._map(query)

    def body(self, body: bytes, content_type: str | None) -> bytes | None:
        """The body with the proxy's URLs mapped back; None when nothing changed or the
        kind is not one that is read. Raises Undecodable."""
        kind = body_kind(content_type)
        if kind is None:
            return None
        out = self._body(body, kind, content_type)
        return None if out == body else out

    def _body(self, body: bytes, kind: str, content_type: str | None) -> bytes:
        if kind == "multipart":
            return self._multipart(body, content_type)
        _, declared = media_type(content_type)
        if kind == "json":
            declared = declared or "utf-8"  # RFC 8259 section 8.1
        codec = charsets.codec_name(declared or self.fallback) or "utf-8"
        text, codec = _decode(body, codec)
        if "site" not in text:
            return body
        # JSON is mapped as text: its escapes ("\/", "\u0022") are spellings the
        # mapping knows, so no string is decoded and written again.
        text = self._form(text, codec) if kind == "form" else self._map(text, kind == "xml")
        return text.encode(codec, "surrogateescape")

    def _form(self, data: str, codec: str) -> str:
        r"""As sent, the values are percent-encoded, a spelling the mapping knows; a value
        that still holds a mark of ours once decoded (a JSON text with "\/" in a form
        field) is decoded, mapped and encoded again, as browsers encode forms."""
        pairs = self._map(data).split("&")
        for i, pair in enumerate(pairs):
            name, eq, value = pair.partition("=")
            if not eq or "site" not in value:
                continue
            raw = urllib.parse.unquote_to_bytes(value.replace("+", " "))
            text = raw.decode(codec, "surrogateescape")
            mapped = self._map(text)
            if mapped != text:
                encoded = mapped.encode(codec, "surrogateescape")
                # The URL Standard's urlencoded serializer.
                pairs[i] = name + "=" + urllib.parse.quote_plus(encoded, safe="*")
        return "&".join(pairs)

    def _multipart(self, body: bytes, content_type: str | None) -> bytes:
        boundary = _param(content_type, "boundary")
        if not boundary:
            return body
        delimiter = b"\r\n--" + boundary.encode("latin-1")
        # With a CRLF in front, every delimiter (the first one too) is "\r\n--boundary":
        # pieces[0] is the preamble, each later piece a part or, after "--", the end.
        pieces = (b"\r\n" + body).split(delimiter)
        form_charset = _form_charset(pieces) or self.fallback
        for i in range(1, len(pieces)):
            piece = pieces[i]
            head_end = piece.find(b"\r\n\r\n")
            if piece.startswith(b"--") or head_end < 0:
                continue
            head = piece[:head_end].decode("latin-1")
            headers = dict(_part_headers(head))
            disposition = headers.get("content-disposition", "")
            if (
                _param(disposition, "filename") is not None
                or _param(disposition, "filename*") is not None
            ):
                continue  # a file the user uploads: never read, never changed
            if headers.get("content-transfer-encoding", "").lower() not in _ENCODINGS_KEPT:
                continue
            part_type = headers.get("content-type") or "text/plain"
            if form_charset and "charset" not in part_type.lower():
                part_type += f"; charset={form_charset}"
            kind = body_kind(part_type)
            content = piece[head_end + 4 :]
            if kind is None or kind == "multipart":
                continue
            try:
                mapped = self._body(content, kind, part_type)
            except Undecodable:
                continue  # this field stays as sent; the others are still mapped
            pieces[i] = piece[: head_end + 4] + mapped
        return delimiter.join(pieces)[2:]


def _decode(body: bytes, codec: str) -> tuple[str, str]:
    """The body as text, and the codec to encode it back with."""
    if charsets.is_ascii_safe(codec):
        return body.decode("latin-1"), "latin-1"
    text = charsets.decode(body, codec)
    if not charsets.roundtrips(body, text, codec):
        raise Undecodable(f"the body does not survive decoding as {codec}")
    return text, codec


def _param(header: str | None, name: str) -> str | None:
    """A parameter of a header value (``boundary``, ``filename``), unquoted."""
    for key, value in _PARAM.findall(header or ""):
        if key.lower() == name:
            if value.startswith('"'):
                return re.sub(r"\\(.)", r"\1", value[1:-1])
            return value
    return None


def _part_headers(head: str) -> Iterable[tuple[str, str]]:
    for line in head.split("\r\n"):
        name, colon, value = line.partition(":")
        if colon:
            yield name.strip().lower(), value.strip()


def _form_charset(pieces: list[bytes]) -> str | None:
    """The charset a form names in its ``_charset_`` field (HTML's form submission
    algorithm puts it there when the form asks for it)."""
    for piece in pieces:
        if b'name="_charset_"' in piece[:200]:
            value = piece.partition(b"\r\n\r\n")[2].strip().decode("latin-1")
            if charsets.codec_name(value):
                return value
    return None


__all__ = ["FORM", "MULTIPART", "BodyMapper", "Undecodable", "body_kind"]
