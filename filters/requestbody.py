"""Request bodies and query strings with the proxy's URLs mapped back to the backends'.

Each kind of body is taken apart only as far as needed to see its text as the backend
will read it, mapped with filters/reverse.py, and put together again; everything that
did not change keeps its bytes:

- ``application/x-www-form-urlencoded`` (and a query string): each value is
  percent-decoded, mapped and, if it changed, encoded again as browsers encode forms;
- ``multipart/form-data``: text fields are mapped in the form's charset; a part with a
  file name is a file the user uploads and passes byte for byte, whatever it holds;
- JSON: each string is decoded (``\\/`` and ``\\u`` escapes included), mapped, and
  written again in the escaping style it came in;
- XML and other text: the text, in its declared charset.

Bodies in a charset whose ASCII bytes mean ASCII characters (UTF-8, Latin-1, GBK, ...)
are handled as Latin-1 text: every byte is one character, the patterns are ASCII, so no
real decoding is needed and bytes outside the matches cannot change.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Iterable

from filters import charsets
from filters.pipeline import media_type
from filters.reverse import ReverseLinks

FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
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
    """Maps one request's bodies and query: the site table's ``ReverseLinks`` and the
    hosts under which this client reaches the proxy."""

    __slots__ = ("fallback", "hosts", "links")

    def __init__(self, links: ReverseLinks, hosts: Iterable[str], fallback: str | None) -> None:
        self.links = links
        self.hosts = frozenset(h.lower() for h in hosts)
        self.fallback = fallback  # the site's charset for bodies that declare none

    def query(self, target: str) -> str:
        """A request target with the values of its query mapped (the path is kept)."""
        path, sep, query = target.partition("?")
        if not sep or ".site." not in urllib.parse.unquote(query):
            return target
        return path + sep + self._form(query, "latin-1")

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
        if kind == "form":
            text = self._form(text, codec)
        elif kind == "json":
            text = _JSON_STRING.sub(self._json_string, text)
        else:
            text = self.links.map(text, self.hosts, xml=kind == "xml")
        return text.encode(codec, "surrogateescape")

    def _form(self, data: str, codec: str) -> str:
        pairs = data.split("&")
        for i, pair in enumerate(pairs):
            name, eq, value = pair.partition("=")
            if not eq or "site" not in value:
                continue
            raw = urllib.parse.unquote_to_bytes(value.replace("+", " "))
            text = raw.decode(codec, "surrogateescape")
            mapped = self.links.map(text, self.hosts)
            if mapped != text:
                encoded = mapped.encode(codec, "surrogateescape")
                # As browsers serialize forms (the URL Standard's urlencoded serializer).
                pairs[i] = name + "=" + urllib.parse.quote_plus(encoded, safe="*")
        return "&".join(pairs)

    def _json_string(self, m: re.Match[str]) -> str:
        token = m.group()
        if "site" not in token:
            return token
        try:
            value = json.loads(token)
        except ValueError:
            return token
        mapped = self.links.map(value, self.hosts)
        if mapped == value:
            return token
        # Escaped as it came: \uXXXX for non-ASCII if the client wrote them so, and
        # "\/" for slashes if it did.
        out = json.dumps(mapped, ensure_ascii=token.isascii())
        return out.replace("/", "\\/") if "\\/" in token else out

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
