"""The relay on its own: a fake sink, no network (tests/support/relay.py). Each test starts
one Relay with a client that never answers, drives it through headers_received /
data_received / finish / fail as the upstream client would, and checks what the client
side (the sink) was asked to do, in order. Streamed bodies: test_relay_stream.py."""

from __future__ import annotations

import pycurl
import pytest

from handlers.relay.modes import Mode
from handlers.upstream.errors import UpstreamError
from tests.support.relay import FakeSink, run

HTML = "text/html; charset=utf-8"
PNG = "image/png"


def test_head_and_bodyless_statuses_send_the_head_alone():
    def check(make_relay):
        relay, sink = make_relay("HEAD")
        relay.headers_received(200, "OK", [("Content-Length", "1234"), ("Content-Type", PNG)])
        assert relay.body.mode is Mode.HEADERS_ONLY and sink.calls == []
        relay.finish()
        assert sink.kinds() == ["respond", "flush", "finish"]
        assert sink.head()[1]["content-length"] == "1234"  # HEAD keeps the GET's length

        relay, sink = make_relay("GET")
        relay.headers_received(304, "Not Modified", [("Content-Length", "99"), ("ETag", '"x"')])
        relay.finish()
        status, head = sink.head()
        assert status == 304 and "content-length" not in head and head["etag"] == '"x"'
        assert sink.kinds() == ["respond", "flush", "finish"]

    run(check)


PAGE = b'<p><a href="http://10.1.2.3:8080/docs/x">x</a></p>'
PLAIN = b"<p>nothing to rewrite</p>"


@pytest.mark.parametrize(
    "content_type, body, length, head_has_length",
    [
        (HTML, PAGE, len(PAGE), False),  # rewritten: the GET's length is not the backend's
        (HTML, PLAIN, len(PLAIN), False),  # rewritable: its HEAD cannot know it is unchanged
        (HTML, PAGE, None, False),
        (PNG, PAGE, len(PAGE), True),  # never rewritten: the backend's length is the GET's
        (HTML, PAGE, 99_999_999, True),  # above the rewrite cap: the GET streams it as is
    ],
)
def test_head_never_contradicts_the_get(content_type, body, length, head_has_length):
    """Issue 17: HEAD of a page the proxy rewrites answered the backend's Content-Length
    (103) while the GET's body was 175 bytes. The HEAD takes the GET's decision: where
    the GET would rewrite, the fields computed from the backend's bytes go (RFC 9110
    section 9.3.2 lets a HEAD omit them; nginx's sub_filter does the same); elsewhere
    they stay. The ETag stays either way: conditions are the backend's to judge."""

    def check(make_relay):
        fields = [("Content-Type", content_type), ("ETag", '"v1"'), ("Accept-Ranges", "bytes")]
        if length is not None:
            fields.append(("Content-Length", str(length)))
        relay, sink = make_relay("GET")
        relay.headers_received(200, "OK", fields)
        if relay.body.mode is not Mode.STREAM:  # (a stream's head is out at once)
            relay.data_received(body)
            relay.finish()
        get = sink.head()[1]
        relay, sink = make_relay("HEAD")
        relay.headers_received(200, "OK", fields)
        relay.finish()
        head = sink.head()[1]
        assert ("content-length" in head) is head_has_length
        # Whatever length the HEAD gives, the GET's body has it.
        assert "content-length" not in head or head["content-length"] == get["content-length"]
        assert head["etag"] == '"v1"' and head["content-type"] == content_type

    run(check)


def test_a_small_body_leaves_in_one_write_with_its_head():
    def check(make_relay):
        relay, sink = make_relay()
        relay.headers_received(200, "OK", [("Content-Length", "10"), ("Content-Type", "image/png")])
        assert relay.body.mode is Mode.SMALL
        assert relay.data_received(b"01234") is None
        assert relay.data_received(b"56789") is None
        assert sink.calls == []  # nothing before the body is whole
        relay.finish()
        assert sink.kinds() == ["respond", "write", "finish"]
        assert sink.body() == b"0123456789"

    run(check)


def test_a_page_is_rewritten_whole_and_its_stale_fields_go():
    def check(make_relay):
        relay, sink = make_relay()
        page = b'<a href="http://10.1.2.3:8080/docs/x">x</a>'
        relay.headers_received(
            200,
            "OK",
            [
                ("Content-Type", HTML),
                ("Content-Length", str(len(page))),
                ("ETag", '"abc"'),
                ("Accept-Ranges", "bytes"),
            ],
        )
        assert relay.body.mode is Mode.REWRITE
        relay.data_received(page[:10])
        relay.data_received(page[10:])
        relay.finish()
        status, head = sink.head()
        body = sink.body()
        assert b'href="/.site.app/docs/x"' in body
        assert head["content-length"] == str(len(body))
        assert "etag" not in head and "accept-ranges" not in head
        assert sink.kinds() == ["respond", "write", "finish"]

    run(check)


def test_failures_before_and_after_the_head():
    def check(make_relay):
        relay, sink = make_relay()
        relay.fail(UpstreamError(pycurl.E_COULDNT_CONNECT, "refused"))
        assert sink.calls == [("error", 502)]

        relay, sink = make_relay()
        relay.fail(UpstreamError(pycurl.E_OPERATION_TIMEDOUT, "slow"))
        assert sink.calls == [("error", 504)]

        relay, sink = make_relay()  # a held body: nothing was sent, so still a page
        relay.headers_received(200, "OK", [("Content-Type", "image/png"), ("Content-Length", "3")])
        relay.fail(UpstreamError(pycurl.E_RECV_ERROR, "reset"))
        assert sink.calls[-1] == ("error", 502)

        relay, sink = make_relay()  # streamed: the head is out, so the connection ends
        relay.headers_received(200, "OK", [("Content-Type", "application/octet-stream")])
        relay.fail(UpstreamError(pycurl.E_RECV_ERROR, "reset"))
        assert sink.kinds() == ["respond", "flush", "close"]
        relay.finish()  # a late finish changes nothing
        assert sink.kinds() == ["respond", "flush", "close"]

    run(check)


def test_a_client_that_left_gets_nothing_more():
    def check(make_relay):
        relay, sink = make_relay()
        relay.client_left()
        relay.headers_received(200, "OK", [("Content-Length", "3")])
        assert relay.data_received(b"abc") is None
        relay.finish()
        assert sink.calls == [("close",)]

    run(check)


def test_a_header_the_client_side_refuses_becomes_a_502():
    def check(make_relay):
        relay, sink = make_relay(sink=FakeSink(refuse_controls=True))
        relay.headers_received(200, "OK", [("Content-Length", "2"), ("X-Bad", "a\x01b")])
        relay.data_received(b"ok")
        relay.finish()
        assert sink.calls == [("error", 502)]

    run(check)


@pytest.mark.parametrize(
    "method,status,fields,mode",
    [
        ("GET", 200, [("Content-Type", HTML)], Mode.REWRITE),
        ("GET", 206, [("Content-Type", HTML), ("Content-Length", "5")], Mode.SMALL),
        ("GET", 200, [("Content-Type", HTML), ("Content-Length", "99999999")], Mode.STREAM),
        ("GET", 200, [("Content-Type", "text/html"), ("Content-Encoding", "zstd-x")], Mode.STREAM),
        ("HEAD", 200, [("Content-Type", HTML)], Mode.HEADERS_ONLY),
        ("POST", 204, [], Mode.HEADERS_ONLY),
    ],
)
def test_the_mode_follows_the_response(method, status, fields, mode):
    def check(make_relay):
        relay, _ = make_relay(method)
        relay.headers_received(status, "", fields)
        assert relay.body.mode is mode

    run(check)
