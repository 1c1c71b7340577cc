"""The response mode, a pure function: every step of it, on its own."""

import pytest

from handlers.relay.modes import Mode, head_fields, response_mode, rewritten_fields

CAP, SMALL = 8 * 1024 * 1024, 64 * 1024


@pytest.mark.parametrize(
    "method, status, length, rewritable, expected",
    [
        # Step 1: no body, whatever the headers say.
        ("HEAD", 200, 1000, True, Mode.HEADERS_ONLY),
        ("HEAD", 200, None, False, Mode.HEADERS_ONLY),
        ("GET", 204, 5, False, Mode.HEADERS_ONLY),
        ("GET", 304, 1000, True, Mode.HEADERS_ONLY),
        # Step 2: rewritten when it can be, held whole up to the cap.
        ("GET", 200, 1000, True, Mode.REWRITE),
        ("GET", 200, None, True, Mode.REWRITE),  # held until it passes the cap
        ("POST", 404, CAP, True, Mode.REWRITE),
        ("GET", 200, CAP + 1, True, Mode.STREAM),  # announced too large: as it comes
        ("GET", 206, 1000, True, Mode.SMALL),  # a range: never rewritten
        ("GET", 206, None, True, Mode.STREAM),
        # Step 3: small and of known length: one write.
        ("GET", 200, 0, False, Mode.SMALL),
        ("GET", 200, SMALL, False, Mode.SMALL),
        # Step 4: the rest is streamed.
        ("GET", 200, SMALL + 1, False, Mode.STREAM),
        ("GET", 200, None, False, Mode.STREAM),  # an event stream, a chunked download
    ],
)
def test_response_mode(method, status, length, rewritable, expected):
    assert response_mode(method, status, length, rewritable, CAP, SMALL) is expected


def test_a_cap_below_the_small_size_still_holds_small_bodies():
    # A body announced above the rewrite cap is not rewritten, but one that is small is
    # still sent in one write.
    assert response_mode("GET", 200, 5000, True, 4096, SMALL) is Mode.SMALL


def test_the_fields_of_the_backends_bytes():
    fields = [
        ("Content-Type", "text/html"),
        ("Content-Length", "103"),
        ("ETag", '"v1"'),
        ("content-md5", "x"),
        ("Accept-Ranges", "bytes"),
        ("Set-Cookie", "a=1"),
    ]
    assert rewritten_fields(fields) == [("Content-Type", "text/html"), ("Set-Cookie", "a=1")]
    # The HEAD of a body that would be rewritten keeps the backend's validator.
    assert head_fields(fields) == [
        ("Content-Type", "text/html"),
        ("ETag", '"v1"'),
        ("Accept-Ranges", "bytes"),
        ("Set-Cookie", "a=1"),
    ]
