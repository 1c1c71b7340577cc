"""What clients send, mapped back: real backends and the real proxy on 127.0.0.1.

A page read through the proxy shows the proxy's addresses; when the user saves what the
page showed, the backend must receive its own addresses, exactly as a direct user's save
would have sent them.
"""

import http.client
import json
import re
import urllib.parse

import pytest

from handlers.config.sites import BackendSite
from tests.support import start_backend, start_proxy

EDITOR = """<!doctype html><meta charset="utf-8">
<form method="post" action="/save">
<input name="siteurl" value="{own}">
<input name="menu" value="{own}/about/">
<textarea name="content">&lt;img src=&quot;{own}/uploads/2026/12/photo.png&quot;&gt;
&lt;a href=&quot;{own}/2026/12/04/first-post/&quot;&gt;first&lt;/a&gt; café</textarea>
</form>"""


@pytest.fixture(scope="module")
def stack(loop_thread):
    def editor(h):
        h.set_header("Content-Type", "text/html; charset=utf-8")
        h.finish(EDITOR.format(own=backend.url))

    def post_json(h):
        h.set_header("Content-Type", "application/json")
        h.finish(
            json.dumps(
                {
                    "id": 5,
                    "link": f"{backend.url}/2026/12/04/first-post/",
                    "content": {
                        "raw": f'<img src="{backend.url}/uploads/a.png" alt="中文">'
                        f'<a href="{backend.url}/?p=4">p</a>'
                    },
                    "relative": "/wp-json/wp/v2/posts/5",
                }
            )
        )

    backend = start_backend(loop_thread, "a", {"/editor": editor, "/api/post": post_json})
    other = start_backend(loop_thread, "b")
    deny = [rf"url=http%3A%2F%2F127\.0\.0\.1%3A{other.port}"]
    forward = {
        "a": BackendSite("a", backend.url, backend.netloc, [], deny=deny),
        "b": BackendSite("b", other.url, other.netloc, []),
        "raw": BackendSite("raw", other.url, other.netloc, [], map_requests=False),
        # A site this client (on loopback) may not open.
        "secret": BackendSite(
            "secret", "http://127.0.0.1:9", None, [], client_allow=["10.0.0.0/8"]
        ),
    }
    proxy = start_proxy(loop_thread, forward, request_map_max_bytes=1024 * 1024)
    return proxy, backend, other


def _fields(page: str) -> dict[str, str]:
    """What a browser would submit for the editor's form: the values as it shows them."""
    fields = dict(re.findall(r'<input name="(\w+)" value="([^"]*)"', page))
    textarea = re.search(r'<textarea name="content">(.*?)</textarea>', page, re.S)
    assert textarea is not None
    fields["content"] = textarea.group(1).replace("&lt;", "<").replace("&gt;", ">")
    fields["content"] = fields["content"].replace("&quot;", '"')
    return fields


def _direct_fields(backend) -> dict[str, str]:
    conn = http.client.HTTPConnection("127.0.0.1", backend.port, timeout=10)
    conn.request("GET", "/editor")
    page = conn.getresponse().read().decode()
    conn.close()
    return _fields(page)


def test_a_form_saved_unchanged_stores_what_a_direct_save_would(stack):
    proxy, backend, _ = stack
    _, page = proxy.request("GET", "/.site.a/editor")
    shown = _fields(page.decode())
    assert shown["siteurl"] == "/.site.a"  # what the user sees through the proxy
    body = urllib.parse.urlencode(shown).encode()
    resp, _ = proxy.request(
        "POST", "/.site.a/save", body, {"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert resp.status == 200
    seen = backend.seen[-1]
    assert urllib.parse.parse_qs(seen.body.decode()) == {
        k: [v] for k, v in _direct_fields(backend).items()
    }
    assert b".site." not in seen.body
    assert seen.header("Content-Length") == str(len(seen.body))


def test_the_proxys_absolute_url_a_user_copied_is_stored_as_the_backends(stack):
    proxy, backend, other = stack
    pasted = f"see http://127.0.0.1:{proxy.port}/.site.b/2026/x?y=1#z and //127.0.0.1:{proxy.port}/.site.a/p"
    body = urllib.parse.urlencode({"content": pasted}).encode()
    proxy.request(
        "POST", "/.site.a/save", body, {"Content-Type": "application/x-www-form-urlencoded"}
    )
    stored = urllib.parse.parse_qs(backend.seen[-1].body.decode())["content"][0]
    assert stored == f"see {other.url}/2026/x?y=1#z and //{backend.netloc}/p"


def test_a_json_document_read_and_written_back_is_what_the_backend_served(stack):
    proxy, backend, _ = stack
    _, shown = proxy.request("GET", "/.site.a/api/post")
    assert b"/.site.a/uploads/a.png" in shown  # the proxy rewrote it for the browser
    served = json.loads(_direct_get(backend, "/api/post"))
    for ensure_ascii in (True, False):
        body = json.dumps(json.loads(shown), ensure_ascii=ensure_ascii).encode()
        proxy.request("PUT", "/.site.a/api/post", body, {"Content-Type": "application/json"})
        assert json.loads(backend.seen[-1].body) == served


def test_json_escaped_slashes_and_unicode_escapes_are_mapped(stack):
    proxy, backend, _ = stack
    body = b'{"a":"\\/.site.a\\/x","b":"\\u003ca href=\\u0022\\/.site.a\\/y\\u0022\\u003e","c":"\\u4e2d /.site.a/z"}'
    proxy.request("POST", "/.site.a/api", body, {"Content-Type": "application/json"})
    got = json.loads(backend.seen[-1].body)
    assert got == {
        "a": f"{backend.url}/x",
        "b": f'<a href="{backend.url}/y">',
        "c": f"中 {backend.url}/z",
    }
    assert b"\\/" in backend.seen[-1].body  # written back in the style it came in


def test_multipart_text_fields_are_mapped_and_files_never_touched(stack):
    proxy, backend, _ = stack
    upload = b"\x89PNG\r\n\x1a\n/.site.a/img\x00\xff" + "/.site.a/中".encode()
    body = (
        b"--b0undary\r\n"
        b'Content-Disposition: form-data; name="title"\r\n\r\n'
        + "café /.site.a/2026/x".encode()
        + b"\r\n--b0undary\r\n"
        b'Content-Disposition: form-data; name="file"; filename="photo.png"\r\n'
        b"Content-Type: image/png\r\n\r\n" + upload + b"\r\n--b0undary\r\n"
        b'Content-Disposition: form-data; name="notes"; filename="notes.txt"\r\n'
        b"Content-Type: text/plain\r\n\r\n/.site.a/kept\r\n--b0undary--\r\n"
    )
    proxy.request(
        "POST",
        "/.site.a/upload",
        body,
        {"Content-Type": "multipart/form-data; boundary=b0undary"},
    )
    seen = backend.seen[-1].body
    expected = body.replace("café /.site.a/2026/x".encode(), f"café {backend.url}/2026/x".encode())
    assert seen == expected  # the two file parts byte for byte, the field mapped


@pytest.mark.parametrize("charset", ["utf-8", "gbk", "shift_jis", "big5", "iso-8859-1", "utf-16"])
def test_text_bodies_in_their_declared_charset(stack, charset):
    proxy, backend, _ = stack
    word = "é" if charset == "iso-8859-1" else "中文"
    text = f"<p>{word} /.site.a/x</p>"
    proxy.request(
        "POST",
        "/.site.a/t",
        text.encode(charset),
        {"Content-Type": f"text/plain; charset={charset}"},
    )
    assert backend.seen[-1].body.decode(charset) == f"<p>{word} {backend.url}/x</p>"


def test_webdav_hrefs_come_back_root_relative(stack):
    proxy, backend, _ = stack
    body = (
        b'<?xml version="1.0"?><C:calendar-multiget xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
        b"<D:href>/.site.a/cal/1.ics</D:href><D:href>/cal/2.ics</D:href>"
        b"<D:prop><D:comment>/.site.a/x</D:comment></D:prop></C:calendar-multiget>"
    )
    proxy.request("PROPFIND", "/.site.a/cal/", body, {"Content-Type": "application/xml"})
    seen = backend.seen[-1].body
    assert b"<D:href>/cal/1.ics</D:href><D:href>/cal/2.ics</D:href>" in seen
    assert f"<D:comment>{backend.url}/x</D:comment>".encode() in seen


def test_a_query_value_holding_the_proxys_url_is_mapped_and_the_rest_kept(stack):
    proxy, backend, _ = stack
    target = "/.site.a/wp-login.php?redirect_to=%2F.site.a%2Fwp-admin%2F&reauth=1&x=%7e%2F"
    proxy.request("GET", target)
    quoted = urllib.parse.quote(backend.url, safe="")
    assert (
        backend.seen[-1].uri
        == f"/wp-login.php?redirect_to={quoted}%2Fwp-admin%2F&reauth=1&x=%7e%2F"
    )


def test_bodies_that_are_not_text_or_of_a_site_that_opts_out_pass_unchanged(stack):
    proxy, backend, other = stack
    body = b"/.site.a/x \x00\xff"
    proxy.request("POST", "/.site.a/bin", body, {"Content-Type": "application/octet-stream"})
    assert backend.seen[-1].body == body
    form = b"u=%2F.site.a%2Fx"
    proxy.request(
        "POST", "/.site.raw/f", form, {"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert other.seen[-1].body == form
    gz = b"/.site.a/x"
    proxy.request(
        "POST", "/.site.a/gz", gz, {"Content-Type": "text/plain", "Content-Encoding": "gzip"}
    )
    assert backend.seen[-1].body == gz


def test_a_body_above_the_limit_streams_unchanged_logged_and_counted(stack, caplog):
    proxy, backend, _ = stack
    large = b"u=%2F.site.a%2Fx&pad=" + b"p" * (1024 * 1024)
    with caplog.at_level("WARNING"):
        proxy.request(
            "POST", "/.site.a/big", large, {"Content-Type": "application/x-www-form-urlencoded"}
        )
        assert backend.seen[-1].body == large
        # Without Content-Length: the proxy holds it until it outgrows the limit, then
        # sends what it held and the rest, unchanged.
        conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
        conn.putrequest("POST", "/.site.a/chunked")
        conn.putheader("Content-Type", "application/x-www-form-urlencoded")
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        for i in range(0, len(large), 10_000):
            piece = large[i : i + 10_000]
            conn.send(b"%x\r\n%s\r\n" % (len(piece), piece))
        conn.send(b"0\r\n\r\n")
        assert conn.getresponse().status == 200
        conn.close()
        assert backend.seen[-1].body == large
    assert sum("request_map_max_bytes" in r.getMessage() for r in caplog.records) == 2
    _, metrics = proxy.request("GET", "/.proxy/metrics")
    line = re.search(
        rb'web_proxy_request_bodies_total\{result="too_large",site="a"\} (\d+)', metrics
    )
    assert line is not None and int(float(line.group(1))) >= 2
    mapped = re.search(
        rb'web_proxy_request_bodies_total\{result="mapped",site="a"\} (\d+)', metrics
    )
    assert mapped is not None and int(float(mapped.group(1))) >= 1


def test_a_chunked_body_under_the_limit_is_mapped_and_sent_with_its_length(stack):
    proxy, backend, _ = stack
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
    conn.putrequest("POST", "/.site.a/chunked")
    conn.putheader("Content-Type", "text/plain")
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    for piece in (b"see /.si", b"te.a/x ", b"ok"):
        conn.send(b"%x\r\n%s\r\n" % (len(piece), piece))
    conn.send(b"0\r\n\r\n")
    assert conn.getresponse().status == 200
    conn.close()
    seen = backend.seen[-1]
    assert seen.body == f"see {backend.url}/x ok".encode()
    assert seen.header("Content-Length") == str(len(seen.body))


def _direct_get(backend, path: str) -> bytes:
    conn = http.client.HTTPConnection("127.0.0.1", backend.port, timeout=10)
    conn.request("GET", path)
    data = conn.getresponse().read()
    conn.close()
    return data


def test_a_deny_rule_sees_the_query_as_the_backend_will_get_it(stack):
    proxy, backend, other = stack
    count = len(backend.seen)
    resp, _ = proxy.request("GET", f"/.site.a/fetch?url=http%3A%2F%2F127.0.0.1%3A{other.port}%2F")
    assert resp.status == 403
    resp, _ = proxy.request("GET", "/.site.a/fetch?url=%2F.site.b%2F")  # the same, spelled ours
    assert resp.status == 403
    assert len(backend.seen) == count


def test_only_sites_the_client_may_open_are_mapped(stack):
    proxy, backend, other = stack
    body = b"t=%2F.site.secret%2Fx+%2F.site.b%2Fy"
    proxy.request("POST", "/.site.a/f", body, {"Content-Type": "application/x-www-form-urlencoded"})
    b_url = urllib.parse.quote(other.url, safe="").encode()
    assert backend.seen[-1].body == b"t=%2F.site.secret%2Fx+" + b_url + b"%2Fy"


def test_json_keeps_every_byte_but_the_urls(stack):
    proxy, backend, _ = stack
    body = '{"t":"café \\u20ac \\u003c /.site.a/x \\ud83d\\ude00","n":1.50,"u":"a\\/b"}'.encode()
    proxy.request("POST", "/.site.a/j", body, {"Content-Type": "application/json"})
    assert backend.seen[-1].body == body.replace(b"/.site.a/x", f"{backend.url}/x".encode())


def test_a_large_body_is_mapped_too(stack):
    """Above the size mapped inline (handlers/relay/handler.py), the mapping runs in a thread."""
    proxy, backend, _ = stack
    items = [{"src": f"/.site.a/uploads/{i}.png", "t": "é" * 20} for i in range(3000)]
    body = json.dumps(items).encode()
    assert 256 * 1024 < len(body) < 1024 * 1024
    resp, _ = proxy.request("PUT", "/.site.a/big", body, {"Content-Type": "application/json"})
    assert resp.status == 200
    got = json.loads(backend.seen[-1].body)
    assert got[2999]["src"] == f"{backend.url}/uploads/2999.png"
