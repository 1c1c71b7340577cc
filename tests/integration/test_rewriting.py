"""Rewriting through the real proxy: codings, charsets, rules, JSON, the size cap."""

import gzip
import json
import zlib

import brotli
import pytest

from filters.rules import SubsFilterRules
from handlers.config.sites import BackendSite, build_site_table
from handlers.mapping.shim import Shim
from tests.support import start_backend, start_proxy

GBK_TEXT = '<html><head>{meta}<title>中文页面</title></head><body><p>这是中文。</p><a href="{url}/doc">文档</a><img src="/logo.png"></body></html>'


def _routes(own):
    def page(h):
        return (
            f'<p>café <a href="{own()}/a">a</a> <img src="{own()}/i.png"> <a href="/rel">r</a></p>'
        )

    def coded(coding, compress):
        def handler(h):
            h.set_header("Content-Type", "text/html; charset=utf-8")
            h.set_header("Content-Encoding", coding)
            h.set_header("Vary", "Accept-Encoding")
            h.finish(compress(page(h).encode()))

        return handler

    def gbk(meta_only):
        def handler(h):
            if meta_only:
                h.set_header("Content-Type", "text/html")
                meta = '<meta http-equiv="Content-Type" content="text/html; charset=gb2312">'
            else:
                h.set_header("Content-Type", "text/html; charset=GBK")
                meta = ""
            h.finish(GBK_TEXT.format(meta=meta, url=own()).encode("gbk"))

        return handler

    def as_json(h):
        h.set_header("Content-Type", "application/json")
        # Escaped slashes, as PHP's json_encode writes them.
        doc = {"next": f"{own()}/api/next", "html": f'<a href="{own()}/x">'}
        h.finish(json.dumps(doc).replace("/", "\\/"))

    def big(with_length):
        def handler(h):
            h.set_header("Content-Type", "text/html")
            body = (f'<a href="{own()}/x">x</a>' * 400).encode()
            if not with_length:
                h.flush()
            h.finish(body)

        return handler

    def etagged(changed):
        def handler(h):
            h.set_header("Content-Type", "text/html")
            h.set_header("Etag", '"v1"')
            h.finish(f'<a href="{own()}/x">x</a>' if changed else "<p>nothing to rewrite</p>")

        return handler

    def raw_deflate(h):
        c = zlib.compressobj(6, zlib.DEFLATED, -15)
        h.set_header("Content-Type", "text/html")
        h.set_header("Content-Encoding", "deflate")
        h.finish(c.compress(page(h).encode()) + c.flush())

    return {
        "/gzip": coded("gzip", gzip.compress),
        "/deflate": coded("deflate", zlib.compress),
        "/rawdeflate": raw_deflate,
        "/br": coded("br", brotli.compress),
        "/gbk-header": gbk(False),
        "/gbk-meta": gbk(True),
        "/json": as_json,
        "/big": big(True),
        "/big-chunked": big(False),
        "/etag-changed": etagged(True),
        "/etag-same": etagged(False),
    }


@pytest.fixture(scope="module")
def site(loop_thread):
    holder = {}
    backend = start_backend(loop_thread, "w", _routes(lambda: holder["b"].url))
    holder["b"] = backend
    rule = SubsFilterRules(r"^/\.site\.w/gbk", "中文", "汉语")
    sites = {"w": BackendSite("w", backend.url, None, [rule])}
    return backend, start_proxy(loop_thread, sites, rewrite_max_bytes=4096)


def expected_page():
    return '<p>café <a href="/.site.w/a">a</a> <img src="/.site.w/i.png"> <a href="/.site.w/rel">r</a></p>'.encode()


DECODE = {
    "gzip": gzip.decompress,
    "deflate": zlib.decompress,
    "br": brotli.decompress,
}


@pytest.mark.parametrize(
    "path, coding", [("/gzip", "gzip"), ("/deflate", "deflate"), ("/br", "br")]
)
def test_compressed_pages_are_rewritten(site, path, coding):
    _, proxy = site
    resp, data = proxy.request(
        "GET", f"/.site.w{path}", headers={"Accept-Encoding": "gzip, deflate, br"}
    )
    assert resp.headers["Content-Encoding"] == coding
    assert int(resp.headers["Content-Length"]) == len(data)
    assert DECODE[coding](data) == expected_page()
    assert resp.headers["Vary"] == "Accept-Encoding"


def test_raw_deflate_is_understood(site):
    _, proxy = site
    resp, data = proxy.request("GET", "/.site.w/rawdeflate")
    assert resp.headers["Content-Encoding"] == "deflate"
    assert zlib.decompress(data) == expected_page()


def test_upstream_is_asked_only_for_codings_we_decode(site):
    backend, proxy = site
    proxy.request("GET", "/.site.w/echo", headers={"Accept-Encoding": "zstd, br;q=0.9, gzip"})
    assert backend.seen[-1].header("Accept-Encoding") == "br;q=0.9, gzip"
    proxy.request("GET", "/.site.w/echo", headers={"Accept-Encoding": "zstd"})
    assert backend.seen[-1].header("Accept-Encoding") is None


@pytest.mark.parametrize("path", ["/gbk-header", "/gbk-meta"])
def test_gbk_pages_rewritten_and_otherwise_byte_identical(site, path):
    backend, proxy = site
    resp, data = proxy.request("GET", f"/.site.w{path}")
    meta = (
        '<meta http-equiv="Content-Type" content="text/html; charset=gb2312">'
        if "meta" in path
        else ""
    )
    original = GBK_TEXT.format(meta=meta, url=backend.url)
    expected = (
        original.replace("中文", "汉语")
        .replace(f'href="{backend.url}/doc"', 'href="/.site.w/doc"')
        .replace('src="/logo.png"', 'src="/.site.w/logo.png"')
    )
    # The shim's script comes first in the head (GBK pages are rewritten as text).
    tag = Shim(build_site_table({"w": BackendSite("w", backend.url)})).tag("w")
    expected = expected.replace("<head>", "<head>" + tag, 1)
    assert data == expected.encode("gbk")
    assert data.decode("gbk").count("汉语") == 2


def test_rule_uri_regex_chooses_pages(site):
    # The rule's uri regex names /gbk pages only: elsewhere "中文" stays.
    backend, proxy = site
    resp, data = proxy.request("GET", "/.site.w/json")
    assert "汉语" not in data.decode()


def test_json_with_escaped_urls(site):
    backend, proxy = site
    resp, data = proxy.request("GET", "/.site.w/json")
    raw = data.decode()
    assert "\\/.site.w\\/api\\/next" in raw and backend.netloc not in raw
    doc = json.loads(raw)
    assert doc == {"next": "/.site.w/api/next", "html": '<a href="/.site.w/x">'}


@pytest.mark.parametrize("path", ["/big", "/big-chunked"])
def test_page_over_the_cap_passes_unchanged(site, path, caplog):
    backend, proxy = site
    resp, data = proxy.request("GET", f"/.site.w{path}")
    assert data == (f'<a href="{backend.url}/x">x</a>' * 400).encode()
    assert len(data) > 4096
    assert "larger than rewrite_max_bytes" in caplog.text


def test_validators_dropped_only_when_the_body_changed(site):
    _, proxy = site
    resp, data = proxy.request("GET", "/.site.w/etag-changed")
    assert b"/.site.w/x" in data and resp.headers.get("Etag") is None
    resp, data = proxy.request("GET", "/.site.w/etag-same")
    assert data == b"<p>nothing to rewrite</p>" and resp.headers["Etag"] == '"v1"'
