"""The round trip, as properties: whatever a backend serves, read through the proxy and
sent back through it, reaches the backend as the bytes it served.

The response side is the real pipeline (filters/pipeline.py, the same plans the proxy
builds); the request side is the real mapper (filters/requestbody.py). Between them, the
client does what a browser or a script does: parse the page or the JSON, take a field's
value, and send it back as a form, a multipart form or JSON, in the page's charset.
"""

import html
import json
import urllib.parse
from html.parser import HTMLParser

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from filters.requestbody import BodyMapper
from filters.reverse import ReverseLinks
from handlers.config.sites import BackendSite, build_site_table
from handlers.context import plans_for
from handlers.mapping.urlmap import to_backend, to_proxy
from tests.support.properties import examples

SITES = {
    "a": BackendSite("a", "http://10.1.2.3", "10.1.2.3", []),
    "wiki.corp": BackendSite("wiki.corp", "https://wiki.corp:8443", None, []),
    "cms": BackendSite("cms", "http://127.0.0.1:8081", None, []),
}
TABLE = build_site_table(SITES)
PLANS = plans_for(TABLE)
LINKS = ReverseLinks({s.name: s.base_url for s in TABLE})
HOSTS = ("proxy.example", "127.0.0.1:9001")
LIMIT = 8 << 20

# Words of each charset's own script, so that every value can be written in its charset.
_WORDS = {
    "utf-8": "中文 café Ωμέγα",
    "gbk": "中文 汉字",
    "shift_jis": "日本語 かな",
    "big5": "中文 繁體",
    "iso-8859-1": "café ñ",
}
CHARSETS = sorted(_WORDS)
_SEPARATORS = [" ", "\n", '"', "'", "(", ")", ",", ";", "<", ">", "=", "\t", "[", "]"]
_PATH = st.text(alphabet="abcxyz0129-._~/?=&%", max_size=20).map(
    lambda p: "" if not p else "/" + p.lstrip("/")
)


def _urls(draw) -> str:
    """A backend URL in one of the forms the response side maps invertibly."""
    site = draw(st.sampled_from(list(TABLE)))
    url = site.base_url + draw(_PATH)
    form = draw(st.sampled_from(["plain", "percent", "root"]))
    if form == "percent":
        # As a redirect target inside a query: ?redirect_to=http%3A%2F%2F...
        return "?to=" + urllib.parse.quote(url, safe="")
    if form == "root":
        return "/" + draw(_PATH).lstrip("/")  # left alone outside HTML attributes
    return url


@st.composite
def values(draw, charset: str) -> str:
    """A field's value: words of the charset, backend URLs and separators."""
    words = st.text(
        alphabet=st.sampled_from(sorted(set(_WORDS[charset] + "abcXYZ09.-_!"))), max_size=12
    )
    parts = []
    for _ in range(draw(st.integers(0, 6))):
        parts.append(_urls(draw) if draw(st.booleans()) else draw(words))
        parts.append(draw(st.sampled_from(_SEPARATORS)))
    value = "".join(parts)
    assume(".site." not in value)
    return value


def _served(site: str, body: bytes, content_type: str) -> bytes:
    """What the proxy sends the browser for this backend body."""
    rewriter = PLANS[site].for_response("/", content_type, None)
    if rewriter is None:
        return body
    return rewriter.rewrite(body, LIMIT) or body


def _sent_back(site: str, body: bytes, content_type: str, host: str) -> bytes:
    """What the backend is sent for this request body."""
    mapper = BodyMapper(LINKS, [host], TABLE.get(site).charset)
    return mapper.body(body, content_type) or body


def _form(value: str, charset: str) -> tuple[bytes, str]:
    body = urllib.parse.urlencode({"f": value, "n": "1"}, encoding=charset).encode("ascii")
    return body, "application/x-www-form-urlencoded"


def _multipart(value: str, charset: str) -> tuple[bytes, str]:
    body = (
        b'--XbX\r\nContent-Disposition: form-data; name="f"\r\n\r\n'
        + value.encode(charset)
        + b"\r\n--XbX--\r\n"
    )
    return body, "multipart/form-data; boundary=XbX"


def _received(body: bytes, content_type: str, charset: str) -> str:
    """The field's value as the backend reads it."""
    if content_type.startswith("multipart/"):
        return body.split(b"\r\n\r\n", 1)[1].rsplit(b"\r\n--XbX--", 1)[0].decode(charset)
    if "json" in content_type:
        return json.loads(body)["f"]
    return urllib.parse.parse_qs(body.decode("ascii"), keep_blank_values=True, encoding=charset)[
        "f"
    ][0]


class _Field(HTMLParser):
    """The value a browser shows in <input name=f value=...> or <textarea name=f>."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.value: str | None = None
        self._in_textarea = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "input" and attrs.get("name") == "f":
            self.value = attrs.get("value") or ""
        if tag == "textarea" and attrs.get("name") == "f":
            self.value = ""
            self._in_textarea = True

    def handle_data(self, data):
        if self._in_textarea:
            self.value = (self.value or "") + data

    def handle_endtag(self, tag):
        self._in_textarea = False


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_field_of_an_html_page_comes_back_as_served(data):
    charset = data.draw(st.sampled_from(CHARSETS))
    site = data.draw(st.sampled_from(list(SITES)))
    value = data.draw(values(charset))
    host = data.draw(st.sampled_from(HOSTS))
    escaped = html.escape(value, quote=data.draw(st.booleans()))
    holder = data.draw(st.sampled_from(["input", "textarea"]))
    if holder == "input":
        markup = f'<input name=f value="{html.escape(value)}">'
    else:
        markup = f"<textarea name=f>{escaped}</textarea>"
    page = f'<!doctype html><meta charset="{charset}"><form>{markup}</form>'.encode(charset)
    shown = _served(site, page, f"text/html; charset={charset}")
    parser = _Field()
    parser.feed(shown.decode(charset))
    assert parser.value is not None
    encode = data.draw(st.sampled_from([_form, _multipart]))
    body, content_type = encode(parser.value, charset)
    back = _sent_back(site, body, content_type, host)
    assert _received(back, content_type, charset) == value


@settings(max_examples=examples(300), deadline=None)
@given(data=st.data())
def test_a_field_of_a_json_document_comes_back_as_served(data):
    site = data.draw(st.sampled_from(list(SITES)))
    value = data.draw(values("utf-8"))
    host = data.draw(st.sampled_from(HOSTS))
    document = json.dumps({"f": value, "id": 1}, ensure_ascii=data.draw(st.booleans()))
    if data.draw(st.booleans()):
        document = document.replace("/", "\\/")  # as PHP's json_encode writes slashes
    shown = _served(site, document.encode(), "application/json")
    field = json.loads(shown)["f"]
    how = data.draw(st.sampled_from(["json", "form", "multipart"]))
    if how == "json":
        body = json.dumps({"f": field}, ensure_ascii=data.draw(st.booleans())).encode()
        content_type = "application/json"
    else:
        body, content_type = (_form if how == "form" else _multipart)(field, "utf-8")
    back = _sent_back(site, body, content_type, host)
    assert _received(back, content_type, "utf-8") == value


@given(path=_PATH, site=st.sampled_from(list(TABLE)), host=st.sampled_from(HOSTS))
def test_the_body_mapping_agrees_with_the_header_mapping(path, site, host):
    """One mapping both ways: a backend URL made a proxy URL (as in Location) comes back
    the same from a body as from a header (Referer, Destination)."""
    shown = to_proxy(site.base_url + path, TABLE, site)
    for url in (shown, f"http://{host}{shown}", f"https://{host}{shown}"):
        assert LINKS.map(url, [host]) == to_backend(url, TABLE, site, host)


@given(text=st.text(max_size=200), host=st.sampled_from(HOSTS))
def test_text_without_the_proxys_urls_is_never_changed(text, host):
    assume(".site." not in text)
    assert LINKS.map(text, [host]) == text
    mapper = BodyMapper(LINKS, [host], None)
    for content_type in ("text/plain", "application/json", "application/x-www-form-urlencoded"):
        assert mapper.body(text.encode("utf-8", "surrogatepass"), content_type) is None


@settings(max_examples=examples(300), deadline=None)
@given(data=st.data())
def test_a_document_sent_back_as_received_reaches_the_backend_byte_for_byte(data):
    """A script that saves what it loaded (a JSON document, a text file) sends the
    backend the very bytes it served: nothing outside the URLs is decoded or rewritten."""
    site = data.draw(st.sampled_from(list(SITES)))
    host = data.draw(st.sampled_from(HOSTS))
    kind = data.draw(st.sampled_from(["json", "text"]))
    if kind == "json":
        fields = data.draw(st.lists(values("utf-8"), max_size=4))
        document = json.dumps({"f": fields, "n": 1.5}, ensure_ascii=data.draw(st.booleans()))
        if data.draw(st.booleans()):
            document = document.replace("/", "\\/")  # as PHP's json_encode writes slashes
        content_type = "application/json"
        served = document.encode()
    else:
        charset = data.draw(st.sampled_from(CHARSETS))
        served = data.draw(values(charset)).encode(charset)
        content_type = f"text/plain; charset={charset}"
    shown = _served(site, served, content_type)
    assert _sent_back(site, shown, content_type, host) == served
