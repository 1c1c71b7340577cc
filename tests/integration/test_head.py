"""HEAD over real HTTP: what it answers never contradicts the GET of the same resource
(issue 17: HEAD of a rewritten page answered the backend's Content-Length, 103, while
the GET's body was 175 bytes)."""

from __future__ import annotations

import pytest

from handlers.config.sites import BackendSite
from tests.support import start_backend, start_proxy

PIXELS = bytes(range(256)) * 8


@pytest.fixture(scope="module")
def proxy(loop_thread):
    own = {}

    def page(h) -> None:
        # An absolute link to the backend itself: the proxy rewrites it, and the body's
        # length changes with it.
        h.set_header("Content-Type", "text/html; charset=utf-8")
        h.set_header("ETag", '"page-v1"')
        h.finish(f'<p><a href="{own["url"]}/docs/a">a</a> <img src="/i.png"></p>'.encode())

    def image(h) -> None:
        h.set_header("Content-Type", "image/png")
        h.set_header("ETag", '"img-v1"')
        h.finish(PIXELS)

    backend = start_backend(loop_thread, "app", {"/page": page, "/image": image})
    own["url"] = backend.url
    sites = {"app": BackendSite("app", backend.url, None, [], shim=False)}
    return start_proxy(loop_thread, sites), backend


def _fields(resp) -> dict[str, str]:
    return {k.lower(): v for k, v in resp.getheaders()}


def test_head_of_a_rewritten_page_omits_the_backends_length(proxy):
    proxy, backend = proxy
    direct = len(f'<p><a href="{backend.url}/docs/a">a</a> <img src="/i.png"></p>')
    got, body = proxy.request("GET", "/.site.app/page")
    assert got.status == 200 and b'href="/.site.app/docs/a"' in body
    assert len(body) != direct  # rewritten: the backend's length is not the GET's
    get = _fields(got)
    assert get["content-length"] == str(len(body)) and "etag" not in get
    answered, empty = proxy.request("HEAD", "/.site.app/page")
    head = _fields(answered)
    assert answered.status == 200 and empty == b""
    # Not the backend's length, which the GET contradicts: RFC 9110 section 9.3.2 lets a
    # HEAD omit what only the content determines. The backend's ETag stays: the
    # conditions a client sends with it go to the backend, which judges them.
    assert "content-length" not in head and head["etag"] == '"page-v1"'
    assert head["content-type"] == get["content-type"]
    assert [s.method for s in backend.seen[-2:]] == ["GET", "HEAD"]


def test_head_of_an_unrewritten_body_keeps_the_backends_length(proxy):
    proxy, _ = proxy
    got, body = proxy.request("GET", "/.site.app/image")
    assert got.status == 200 and body == PIXELS
    answered, empty = proxy.request("HEAD", "/.site.app/image")
    head = _fields(answered)
    assert answered.status == 200 and empty == b""
    assert head["content-length"] == _fields(got)["content-length"] == str(len(PIXELS))
    assert head["etag"] == _fields(got)["etag"] == '"img-v1"'
