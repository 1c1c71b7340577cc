"""Charset detection and content codings."""

import gzip
import zlib

import brotli
import pytest

from filters import charsets, codings


@pytest.mark.parametrize(
    "body, declared, kind, fallback, expected",
    [
        (b"<p>x</p>", "GBK", "html", None, "gbk"),
        (b"<p>x</p>", "gb2312", "html", None, "gbk"),
        (b'<meta charset="big5"><p>', None, "html", None, "big5"),
        (
            b'<META HTTP-EQUIV="Content-Type" CONTENT="text/html; charset=Shift_JIS">',
            None,
            "html",
            None,
            "shift_jis",
        ),
        (b"\xef\xbb\xbf<meta charset=gbk>", None, "html", None, "utf-8"),
        (b'@charset "euc-kr"; a{}', None, "css", None, "euc_kr"),
        (b'@charset "euc-kr"; a{}', None, "html", None, "utf-8"),
        (b"<p>plain</p>", None, "html", "gbk", "gbk"),
        (b"<p>plain</p>", None, "html", None, "utf-8"),
        (b"<p>plain</p>", "no-such-charset", "html", None, "utf-8"),
        (b"x" * 5000 + b"<meta charset=gbk>", None, "html", None, "utf-8"),
    ],
)
def test_detect(body, declared, kind, fallback, expected):
    assert charsets.detect(body, declared, kind, fallback) == expected


@pytest.mark.parametrize(
    "label, safe",
    [
        ("utf-8", True),
        ("UTF8", True),
        ("latin-1", True),
        ("iso-8859-5", True),
        ("windows-1252", True),
        ("koi8-r", True),
        ("euc-kr", True),
        ("ascii", True),
        ("gbk", False),
        ("gb18030", False),
        ("big5", False),
        ("shift_jis", False),
        ("utf-16", False),
        ("iso-2022-jp", False),
    ],
)
def test_ascii_safe_charsets_may_be_rewritten_as_bytes(label, safe):
    assert charsets.is_ascii_safe(charsets.codec_name(label)) is safe


def test_encode_unrepresentable_in_markup_becomes_reference():
    assert charsets.encode("a\u4e2d\udcffb", "latin-1", markup=True) == b"a&#20013;\xffb"
    with pytest.raises(UnicodeEncodeError):
        charsets.encode("a\u4e2d", "latin-1", markup=False)


def test_big5_duplicates_are_detected_as_not_round_tripping():
    # 0xA2CC and 0xA451 both decode to U+5341: such a body cannot be re-encoded exactly.
    body = b"\xa2\xcc"
    text = charsets.decode(body, "big5")
    assert not charsets.roundtrips(body, text, "big5")
    assert charsets.roundtrips(b"\xa4\x51", charsets.decode(b"\xa4\x51", "big5"), "big5")


@pytest.mark.parametrize(
    "client, expected",
    [
        ("gzip, deflate, br, zstd", "gzip, deflate, br"),
        ("zstd", None),
        ("gzip;q=0.5, identity;q=1", "gzip;q=0.5, identity;q=1"),
        ("*", None),
        (None, None),
    ],
)
def test_accept_encoding(client, expected):
    assert codings.accept_encoding(client) == expected


BODY = b"<p>hello http://10.1.2.3/</p>" * 100


@pytest.mark.parametrize(
    "coding, encoded",
    [
        ("gzip", gzip.compress(BODY)),
        ("deflate", zlib.compress(BODY)),
        ("deflate", zlib.compressobj(6, zlib.DEFLATED, -15).compress(BODY) + b""),
        ("br", brotli.compress(BODY)),
    ],
)
def test_decode(coding, encoded):
    if coding == "deflate" and not encoded.startswith(b"\x78"):
        c = zlib.compressobj(6, zlib.DEFLATED, -15)
        encoded = c.compress(BODY) + c.flush()
    assert codings.decode(encoded, coding, 10**6) == BODY


@pytest.mark.parametrize("coding", ["gzip", "deflate", "br"])
def test_encode_round_trip(coding):
    assert codings.decode(codings.encode(BODY, coding), coding, 10**6) == BODY


@pytest.mark.parametrize("coding, compress", [("gzip", gzip.compress), ("br", brotli.compress)])
def test_decompression_bomb_is_refused(coding, compress):
    bomb = compress(b"\0" * (20 * 1024 * 1024))
    assert len(bomb) < 100_000
    with pytest.raises(codings.TooLarge):
        codings.decode(bomb, coding, 1024 * 1024)
