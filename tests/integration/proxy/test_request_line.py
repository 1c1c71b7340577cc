"""The request line reaches the backend as sent: every method with its body, the target's
bytes and escapes; what cannot be relayed (a fragment, TRACE) is refused."""

import pytest

from tests.integration.proxy.backends import last


@pytest.mark.parametrize("target", ["/.site.b/dir/#frag", "/.site.b/#", "/x#y"])
def test_a_fragment_in_the_target_is_refused(stack, target):
    before = len(stack["b"].seen)
    answer = stack["proxy"].raw(
        f"DELETE {target} HTTP/1.1\r\nHost: p\r\nCookie: .site=b\r\n\r\n".encode()
    )
    assert answer.startswith(b"HTTP/1.1 400 ") and b"fragment" in answer
    assert len(stack["b"].seen) == before


def test_escapes_keep_their_case(stack):
    target = "/a/%2e%2E/x%2fy%7e/%c3%A9?q=%2f%aB"
    answer = stack["proxy"].raw(
        f"GET /.site.b{target} HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n".encode()
    )
    assert answer.startswith(b"HTTP/1.1 200")
    assert last(stack["b"]).uri == target


def test_path_and_query_reach_backend_byte_exact(stack):
    target = "/a%2Fb/../c/./d;p=1?x=%20y&z=a+b&e=%E4%B8%AD&&"
    answer = stack["proxy"].raw(
        f"GET /.site.b{target} HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n".encode()
    )
    assert answer.startswith(b"HTTP/1.1 200")
    assert last(stack["b"]).uri == target


@pytest.mark.parametrize(
    "method, body",
    [
        ("GET", None),
        ("POST", b"a=1&b=2"),
        ("PUT", b"\x00\x01binary\xff"),
        ("PATCH", None),
        ("PATCH", b'{"x":1}'),
        ("DELETE", None),
        ("DELETE", b"delete-body"),
        ("OPTIONS", None),
        ("PROPFIND", b"<propfind/>"),
        ("POST", b""),
    ],
)
def test_methods_and_bodies(stack, method, body):
    resp, _data = stack["proxy"].request(method, "/.site.b/m", body=body)
    assert resp.status == 200
    seen = last(stack["b"])
    assert seen.method == method
    assert seen.body == (body or b"")


def test_trace_and_connect_are_refused(stack):
    before = len(stack["b"].seen)
    resp, _ = stack["proxy"].request("TRACE", "/.site.b/")
    assert resp.status == 405
    assert len(stack["b"].seen) == before
