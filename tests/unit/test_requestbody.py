"""The request-body mapping, per content type and charset (pure: no sockets)."""

import json
import urllib.parse

import pytest

from filters.requestbody import BodyMapper, Undecodable, body_kind
from filters.reverse import ReverseLinks

LINKS = ReverseLinks({"cms": "http://10.1.2.3", "wiki": "https://wiki.corp:8443"})
MAP = BodyMapper(LINKS, ["Proxy.Example"], None)


@pytest.mark.parametrize(
    ("content_type", "kind"),
    [
        ("application/x-www-form-urlencoded; charset=UTF-8", "form"),
        ("multipart/form-data; boundary=x", "multipart"),
        ("application/json", "json"),
        ("application/merge-patch+json", "json"),
        ("text/xml; charset=utf-8", "xml"),
        ("application/atom+xml", "xml"),
        ("text/plain", "text"),
        ("text/html", "text"),
        ("application/octet-stream", None),
        ("image/svg+xml", None),
        ("image/png", None),
        (None, None),
    ],
)
def test_which_bodies_are_read(content_type, kind):
    assert body_kind(content_type) == kind


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/.site.cms/x", "http://10.1.2.3/x"),
        ("/.site.cms", "http://10.1.2.3"),
        ("/.site.wiki/a?b=1#c", "https://wiki.corp:8443/a?b=1#c"),
        ("http://proxy.example/.site.cms/x", "http://10.1.2.3/x"),
        ("HTTPS://PROXY.EXAMPLE/.site.cms/x", "http://10.1.2.3/x"),
        ("//proxy.example/.site.wiki/x", "//wiki.corp:8443/x"),
        ("\\/.site.cms\\/x", "http:\\/\\/10.1.2.3\\/x"),
        ("http:\\/\\/proxy.example\\/.site.cms", "http:\\/\\/10.1.2.3"),
        ("%2F.site.cms%2Fx", "http%3A%2F%2F10.1.2.3%2Fx"),
        ("%2f.site.wiki%2fx", "https%3a%2f%2fwiki.corp%3a8443%2fx"),
        ("https%3A%2F%2Fproxy.example%2F.site.cms%2Fx", "http%3A%2F%2F10.1.2.3%2Fx"),
        # Left alone: other hosts, unknown sites, the middle of a path or word.
        ("http://elsewhere/.site.cms/x", "http://elsewhere/.site.cms/x"),
        ("/.site.nope/x", "/.site.nope/x"),
        ("/a/.site.cms/x", "/a/.site.cms/x"),
        ("x.site.cms", "x.site.cms"),
        ("my/.site.cms", "my/.site.cms"),
        # A name runs to the first character that cannot be in one.
        ("(/.site.cms)", "(http://10.1.2.3)"),
        ("/.site.cms.", "http://10.1.2.3."),
        ("/.site.cmsx/y", "/.site.cmsx/y"),
    ],
)
def test_every_spelling_of_a_proxy_url(text, expected):
    assert LINKS.map(text, ["proxy.example"]) == expected


def test_a_form_is_mapped_as_sent_and_keeps_every_other_byte():
    body = b"a=%2F.site.cms%2Fx&b=caf%C3%A9+%2F.site.cms&c=%7e%20+&d&e=/.site.cms/p"
    out = MAP.body(body, "application/x-www-form-urlencoded")
    assert out == (
        b"a=http%3A%2F%2F10.1.2.3%2Fx&b=caf%C3%A9+http%3A%2F%2F10.1.2.3&c=%7e%20+&d"
        b"&e=http://10.1.2.3/p"
    )


def test_a_form_value_holding_json_with_escaped_slashes_is_decoded_and_mapped():
    value = '{"src": "\\/.site.cms\\/a.png", "t": "~ é"}'
    body = b"json=" + urllib.parse.quote_plus(value).encode() + b"&keep=%7E"
    out = MAP.body(body, "application/x-www-form-urlencoded")
    fields = urllib.parse.parse_qs(out.decode())
    assert fields["json"] == ['{"src": "http:\\/\\/10.1.2.3\\/a.png", "t": "~ é"}']
    assert out.endswith(b"&keep=%7E")  # the fields that did not change keep their bytes


def test_a_form_in_a_charset_that_is_not_ascii_compatible_is_decoded():
    mapper = BodyMapper(LINKS, [], "shift_jis")
    # "ソ" is 0x83 0x5C in Shift_JIS: its second byte is a backslash.
    value = "ソ\\/.site.cms\\/x ソ"
    body = b"f=" + urllib.parse.quote_plus(value.encode("shift_jis")).encode()
    out = mapper.body(body, "application/x-www-form-urlencoded")
    got = urllib.parse.parse_qs(out.decode(), encoding="shift_jis")["f"][0]
    assert got == "ソ\\/.site.cms\\/x ソ".replace("\\/.site.cms\\/x", "http:\\/\\/10.1.2.3\\/x")


def test_json_strings_keep_their_escaping_and_the_rest_its_bytes():
    body = (
        b'{ "a" : "\\/.site.cms\\/x",\n  "b": "\\u4e2d /.site.cms", "n": 1.50, "k/.site.cms": 0 }'
    )
    out = MAP.body(body, "application/json")
    doc = json.loads(out)
    assert doc["a"] == "http://10.1.2.3/x"
    assert doc["b"] == "中 http://10.1.2.3"
    assert b'"n": 1.50' in out  # numbers are not re-serialized
    assert b'"a" : "http:\\/\\/10.1.2.3\\/x"' in out


def test_json_that_does_not_parse_is_mapped_as_the_text_it_is():
    body = b'{"a": "/.site.cms/x", "b": "\\n/.site.cms", "c": "x/.site.cms"'
    out = MAP.body(body, "application/json")
    assert out == b'{"a": "http://10.1.2.3/x", "b": "\\nhttp://10.1.2.3", "c": "x/.site.cms"'


def _multipart(*parts: bytes, boundary: bytes = b"B") -> bytes:
    body = b"".join(b"--" + boundary + b"\r\n" + part + b"\r\n" for part in parts)
    return body + b"--" + boundary + b"--\r\n"


def test_multipart_maps_text_fields_in_the_forms_charset_and_never_files():
    field = 'Content-Disposition: form-data; name="t"\r\n\r\n中 /.site.cms/x'.encode("gbk")
    charset = b'Content-Disposition: form-data; name="_charset_"\r\n\r\ngbk'
    file1 = b'Content-Disposition: form-data; name="f"; filename="a.txt"\r\n\r\n/.site.cms/x'
    file2 = b"Content-Disposition: form-data; name=\"g\"; filename*=UTF-8''b.txt\r\n\r\n/.site.cms"
    base64 = (
        b'Content-Disposition: form-data; name="h"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\nLy5zaXRlLmNtcw=="
    )
    as_json = b'Content-Disposition: form-data; name="j"\r\nContent-Type: application/json\r\n\r\n["\\/.site.cms"]'
    body = _multipart(charset, field, file1, file2, base64, as_json)
    out = MAP.body(body, 'multipart/form-data; boundary="B"')
    assert out == body.replace(
        "中 /.site.cms/x".encode("gbk"), "中 http://10.1.2.3/x".encode("gbk")
    ).replace(b'["\\/.site.cms"]', b'["http:\\/\\/10.1.2.3"]')


def test_a_multipart_body_that_does_not_parse_is_left_alone():
    body = b"--B\r\nno header end /.site.cms/x"
    assert MAP.body(body, "multipart/form-data; boundary=B") is None
    assert MAP.body(body, "multipart/form-data") is None


def test_a_body_that_does_not_survive_its_charset_is_refused():
    # 0xA1FE and 0xA241 are both the fullwidth solidus in Big5: decoded and encoded, the body would change.
    body = b"\xa1\xfe /.site.cms/x"
    with pytest.raises(Undecodable):
        MAP.body(body, "text/plain; charset=big5")


def test_xml_hrefs_get_their_root_relative_paths_back_and_other_text_is_absolute():
    body = (
        b'<D:multistatus xmlns:D="DAV:"><D:href>/.site.cms/d/</D:href>'
        b'<link href="/.site.cms/feed"/><D:owner>/.site.cms/x</D:owner>'
        b"<D:href>http://proxy.example/.site.cms/d/</D:href></D:multistatus>"
    )
    out = MAP.body(body, "application/xml")
    assert out == (
        b'<D:multistatus xmlns:D="DAV:"><D:href>/d/</D:href>'
        b'<link href="/feed"/><D:owner>http://10.1.2.3/x</D:owner>'
        b"<D:href>http://10.1.2.3/d/</D:href></D:multistatus>"
    )


def test_the_query_of_a_target():
    assert MAP.query("/p?x=1&to=%2F.site.cms%2Fa") == "/p?x=1&to=http%3A%2F%2F10.1.2.3%2Fa"
    assert MAP.query("/.site.cms/p?x=1") == "/.site.cms/p?x=1"  # the path is not a query
    assert MAP.query("/p?/.site.cms/&q=%7e+%20") == "/p?http://10.1.2.3/&q=%7e+%20"


def test_held_bodies_count_against_the_process_budget():
    from handlers.relay.upload import BodyResult, HeldBody, HeldBytes

    budget = HeldBytes(10)
    one, two = HeldBody(8, budget), HeldBody(8, budget)
    assert one.add(b"12345") is None
    assert two.add(b"1234") is None
    assert two.add(b"12") is BodyResult.BUSY  # 11 bytes held would pass the budget
    assert one.add(b"6789") is BodyResult.TOO_LARGE  # 9 bytes pass this body's limit
    assert one.release() == b"12345" and budget.held == 4
    assert two.add(b"12") is None and two.release() == b"123412" and budget.held == 0


def test_a_mapping_that_fails_sends_the_body_unchanged_and_says_so():
    from handlers.relay.upload import BodyResult, map_body

    class Broken(BodyMapper):
        def body(self, body, content_type):
            raise RuntimeError("a bug")

    body = b"/.site.cms/x"
    assert map_body(body, Broken(LINKS, [], None), "text/plain", "t") == (body, BodyResult.ERROR)
    out = map_body(body, MAP, "text/plain", "t")
    assert out == (b"http://10.1.2.3/x", BodyResult.MAPPED)


def test_a_percent_encoded_delimiter_before_a_prefixed_url_ends_the_word_before_it():
    body = b"c=%3Cimg+src%3D%22%2F.site.cms%2Fa.png%22%3E+x%2F.site.cms+%7e&d=%252F.site.cms"
    out = MAP.body(body, "application/x-www-form-urlencoded")
    assert out == (
        b"c=%3Cimg+src%3D%22http%3A%2F%2F10.1.2.3%2Fa.png%22%3E+x%2F.site.cms+%7e"
        # The text "%2F.site.cms" typed into a field: its own spelling, mapped.
        b"&d=http%253A%252F%252F10.1.2.3"
    )
