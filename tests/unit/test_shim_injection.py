"""The shim's parts that need no socket: the script and its version, the backend origins
it maps, where its tag goes in a page, and the CSP amendment that admits it."""

from __future__ import annotations

import pytest

from filters.inject import insert_tag
from filters.names import SHIM_PATH
from handlers.config.sites import BackendSite, build_site_table
from handlers.mapping.csp import admit_shim
from handlers.mapping.shim import Shim, backend_origins


def test_backend_origins_both_schemes_default_ports_left_out():
    table = build_site_table(
        {
            "a": BackendSite("a", "http://10.1.2.3"),
            "b": BackendSite("b", "https://x.example:8443"),
            "alias": BackendSite("alias", "http://10.1.2.3:80"),
        }
    )
    assert backend_origins(table) == {
        "http://10.1.2.3": "a",
        "https://x.example:8443": "b",
        # Each backend's netloc as its URL spells it, in the other scheme too.
        "https://10.1.2.3": "a",
        "http://x.example:8443": "b",
    }


def test_shim_is_small_and_versioned():
    table = build_site_table({"a": BackendSite("a", "http://10.1.2.3")})
    shim = Shim(table)
    assert len(shim.body) < 8 * 1024
    assert b"//" not in shim.body.split(b"\n", 1)[0]  # comments are not served
    assert b'"http://10.1.2.3":"a"' in shim.body
    other = Shim(build_site_table({"a": BackendSite("a", "http://10.1.2.4")}))
    assert other.version != shim.version
    assert shim.tag("a") == f'<script src="{SHIM_PATH}?v={shim.version}" data-site="a"></script>'
    assert shim.tag("a", "n0nce").endswith(' data-site="a" nonce="n0nce"></script>')


@pytest.mark.parametrize(
    "document, expected",
    [
        ("<!doctype html><html><head><title>", "<!doctype html><html><head>TAG<title>"),
        ('<HTML lang=en><HEAD id="h">x', '<HTML lang=en><HEAD id="h">TAGx'),
        ("<html><header>x", "<html>TAG<header>x"),
        ("<!DOCTYPE html>\n<title>t</title>", "<!DOCTYPE html>TAG\n<title>t</title>"),
        ("\ufeff<html><body>", "\ufeff<html>TAG<body>"),
        ("<div>a fragment</div>", None),
        ("<p>just <b>text</b>", None),
    ],
)
def test_insert_tag(document, expected):
    assert insert_tag(document, "TAG") == expected
    raw = insert_tag(document.encode("utf-8"), b"TAG")
    assert raw == (expected.encode("utf-8") if expected is not None else None)


def test_insert_tag_refuses_bytes_that_are_not_ascii_compatible():
    # UTF-16 (NULs) and an ISO-2022 shift (ESC) before the head: decode first.
    assert insert_tag("<html><head>".encode("utf-16-le"), b"TAG") is None
    assert insert_tag(b"\x1b$B<head>", b"TAG") is None
    # After the insertion point, they do not matter.
    assert insert_tag(b"<head>\x1b$B", b"TAG") == b"<head>TAG\x1b$B"


SOURCE = "proxy.example/.proxy/shim.js"


@pytest.mark.parametrize(
    "policy, expected, allows, nonce",
    [
        # Nothing restricts script elements: unchanged.
        ("img-src 'self'", "img-src 'self'", True, False),
        ("frame-ancestors 'none'", "frame-ancestors 'none'", True, False),
        # 'self' already admits the same-origin shim.
        ("script-src 'self' cdn.example", "script-src 'self' cdn.example", True, False),
        ("default-src 'self'", "default-src 'self'", True, False),
        # A nonce for the shim alone.
        (
            "script-src cdn.example; img-src *",
            "script-src cdn.example 'nonce-N'; img-src *",
            True,
            True,
        ),
        (
            "default-src https:; object-src 'none'",
            "default-src https: 'nonce-N'; object-src 'none'",
            True,
            True,
        ),
        # 'strict-dynamic' ignores 'self' and hosts: only a nonce works.
        (
            "script-src 'strict-dynamic' 'nonce-abc' 'self'",
            "script-src 'strict-dynamic' 'nonce-abc' 'self' 'nonce-N'",
            True,
            True,
        ),
        # 'unsafe-inline' alone: a nonce would switch it off for the page's own inline
        # scripts, so the shim's exact URL is added instead.
        (
            "script-src 'unsafe-inline' cdn.example",
            f"script-src 'unsafe-inline' cdn.example {SOURCE}",
            True,
            False,
        ),
        # ... unless a nonce or hash already switched it off.
        (
            "script-src 'unsafe-inline' 'sha256-xyz='",
            "script-src 'unsafe-inline' 'sha256-xyz=' 'nonce-N'",
            True,
            True,
        ),
        # script-src-elem governs script elements when present.
        (
            "script-src 'self'; script-src-elem cdn.example",
            "script-src 'self'; script-src-elem cdn.example 'nonce-N'",
            True,
            True,
        ),
        # No scripts at all: no shim either, and the policy untouched.
        ("script-src 'none'", "script-src 'none'", False, False),
        ("default-src 'none'; img-src 'self'", "default-src 'none'; img-src 'self'", False, False),
        # Two policies in one field: each amended on its own.
        (
            "script-src 'self', script-src cdn.example",
            "script-src 'self', script-src cdn.example 'nonce-N'",
            True,
            True,
        ),
    ],
)
def test_admit_shim(policy, expected, allows, nonce):
    result = admit_shim(policy, "N", SOURCE)
    assert (result.policy, result.allows_shim, result.uses_nonce) == (expected, allows, nonce)
