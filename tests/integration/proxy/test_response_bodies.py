"""Response bodies: framing kept (HEAD, no length, no-body statuses), text rewritten by the
site's rules, binary bytes passed exactly, large bodies streamed intact."""

import hashlib

import pytest

from tests.integration.proxy.backends import BIG, PNG_WITH_URL, last


def test_head_carries_upstream_headers_without_body(stack):
    resp, data = stack["proxy"].request("HEAD", "/.site.b/sized")
    assert resp.status == 200 and data == b""
    assert resp.headers["Content-Length"] == "1234"
    assert last(stack["b"]).method == "HEAD"


def test_head_without_length_gets_none_invented(stack):
    answer = stack["proxy"].raw(
        b"HEAD /.site.b/nolength HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n"
    )
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and body == b""
    assert b"content-length" not in head.lower()


def test_unknown_length_body_is_chunked_through(stack):
    resp, data = stack["proxy"].request("GET", "/.site.b/nolength")
    assert data == b"streamed without a length"
    assert resp.headers.get("Content-Length") is None
    assert resp.headers.get("Transfer-Encoding") == "chunked"


@pytest.mark.parametrize("path, status", [("/nocontent", 204), ("/notmodified", 304)])
def test_no_body_statuses(stack, path, status):
    answer = stack["proxy"].raw(
        f"GET /.site.b{path} HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n".encode()
    )
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(f"HTTP/1.1 {status}".encode())
    assert body == b""
    assert b"transfer-encoding" not in head.lower()


def test_text_rewritten_by_rule(stack):
    a = stack["a"]
    resp, data = stack["proxy"].request("GET", "/.site.a/html")
    assert data == '<a href="/.site.a/page">x</a> <img src="/.site.a/i.png"> café'.encode()
    assert int(resp.headers["Content-Length"]) == len(data)
    assert a.url.encode() not in data


def test_binary_passes_byte_exact(stack):
    a = stack["a"]
    _resp, data = stack["proxy"].request("GET", "/.site.a/png")
    assert data == PNG_WITH_URL.replace(b"http://127.0.0.1:1", a.url.encode())


def test_large_binary_streams_intact(stack):
    resp, data = stack["proxy"].request("GET", "/.site.b/big")
    assert resp.status == 200
    assert hashlib.sha256(data).hexdigest() == hashlib.sha256(BIG).hexdigest()
