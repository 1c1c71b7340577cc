"""Which charset a text body is in, and decoding that never loses a byte.

Bodies are decoded with ``surrogateescape``: a byte that does not decode becomes a lone
surrogate and is encoded back to the same byte, so a page that lies about its charset
still comes out byte-exact outside the rewritten spans.
"""

from __future__ import annotations

import codecs
import re

# Labels browsers treat as another, larger charset (WHATWG Encoding Standard): pages
# labelled gb2312 routinely contain GBK characters.
_ALIASES = {"gb2312": "gbk", "x-gbk": "gbk", "gb_2312-80": "gbk", "x-sjis": "shift_jis"}

# Codecs in which a byte below 0x80 always stands for that ASCII character, so ASCII
# patterns can be matched on the raw bytes. Not so in GBK, Big5 or Shift_JIS, whose
# second bytes reach into the ASCII range. Names as codecs.lookup() spells them, with
# "-" read as "_".
_ASCII_SAFE_PREFIXES = ("utf_8", "ascii", "latin_1", "iso8859_", "cp125", "koi8_", "mac_")
_ASCII_SAFE = frozenset({"euc_kr", "euc_jp", "gb2312"})

_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_META = re.compile(rb"""<meta\s[^>]*?charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
_CSS_CHARSET = re.compile(rb"""@charset\s+["']([A-Za-z0-9_.:-]+)["']""")
PRESCAN_BYTES = 4096


def codec_name(label: str | None) -> str | None:
    """Python's codec name for a charset label, or None for an unknown label."""
    if not label:
        return None
    label = label.strip().strip("'\"").lower()
    label = _ALIASES.get(label, label)
    try:
        return codecs.lookup(label).name
    except LookupError:
        return None


def detect(body: bytes, declared: str | None, kind: str, fallback: str | None) -> str:
    """The body's codec: the Content-Type charset, else a BOM, else <meta charset> (HTML)
    or @charset (CSS) near the start, else the site's ``charset=``, else UTF-8."""
    found = codec_name(declared)
    if found:
        return found
    for bom, name in _BOMS:
        if body.startswith(bom):
            return codecs.lookup(name).name
    head = body[:PRESCAN_BYTES]
    match = None
    if kind == "html":
        match = _META.search(head)
    elif kind == "css":
        match = _CSS_CHARSET.match(head.lstrip())
    if match:
        found = codec_name(match.group(1).decode("ascii"))
        if found:
            return found
    return codec_name(fallback) or "utf-8"


def is_ascii_safe(codec: str) -> bool:
    codec = codec.replace("-", "_")
    return codec in _ASCII_SAFE or codec.startswith(_ASCII_SAFE_PREFIXES)


def decode(body: bytes, codec: str) -> str:
    return body.decode(codec, "surrogateescape")


def _escape_or_reference(exc: UnicodeError) -> tuple[str | bytes, int]:
    """Encode errors: escaped bytes go back as they came; a character the charset cannot
    hold (from a replacement) becomes an HTML/XML character reference."""
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    chunk = exc.object[exc.start : exc.end]
    if all("\udc80" <= c <= "\udcff" for c in chunk):
        return bytes(ord(c) - 0xDC00 for c in chunk), exc.end
    out = []
    for c in chunk:
        out.append(chr(ord(c) - 0xDC00) if "\udc80" <= c <= "\udcff" else f"&#{ord(c)};")
    return "".join(out), exc.end


codecs.register_error("web_proxy_markup", _escape_or_reference)


def encode(text: str, codec: str, markup: bool) -> bytes:
    """Encode back; raises UnicodeEncodeError when a replacement holds a character the
    charset cannot express and the body is not markup that could reference it."""
    return text.encode(codec, "web_proxy_markup" if markup else "surrogateescape")


def roundtrips(body: bytes, text: str, codec: str) -> bool:
    """Does decoding and encoding again give back ``body`` exactly? True by construction
    for UTF-8 and single-byte charsets; checked for the others (Big5, for one, maps two
    byte pairs to the same character)."""
    if is_ascii_safe(codec):
        return True
    try:
        return text.encode(codec, "surrogateescape") == body
    except UnicodeError:
        return False
