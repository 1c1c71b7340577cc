"""The in-page URL shim: its mapping (in Node), the CSP amendment, where its tag goes,
and the proxy serving and loading it over real HTTP."""

from __future__ import annotations

import gzip
import json
import re
import subprocess
from pathlib import Path

import pytest

from filters.inject import insert_tag
from filters.names import SHIM_PATH
from handlers.config.sites import BackendSite, build_site_table
from handlers.mapping.csp import admit_shim
from handlers.mapping.shim import Shim, backend_origins
from tests.support import require_tool, start_backend, start_proxy

HERE = Path(__file__).parent.parent
SHIM_SOURCE = HERE.parent / "handlers" / "assets" / "shim.js"
CASES = json.loads((HERE / "data" / "shim_cases.json").read_text())


def expand(text: str, proxy: str, a: str, b: str) -> str:
    """Fill a case's placeholders for a proxy origin and two backend origins."""
    a_host, b_host = a.split("//")[1], b.split("//")[1]
    return (
        text.replace("{proxy}", proxy)
        .replace("{ws}", proxy.replace("http", "ws", 1))
        .replace("{a_host}", a_host)
        .replace("{A_HOST}", a_host.upper())
        .replace("{b_host}", b_host)
        .replace("{a}", a)
        .replace("{b}", b)
    )


def expanded_cases(proxy: str, a: str, b: str) -> list[tuple[str, str]]:
    return [(expand(i, proxy, a, b), expand(o, proxy, a, b)) for i, o in CASES["cases"]]


# --- the mapping, in Node ------------------------------------------------------------

NODE_RUNNER = """
const {mapper} = require(process.argv[1]);
const input = JSON.parse(require("fs").readFileSync(0, "utf8"));
const map = mapper(input.site, input.origins, input.page);
process.stdout.write(JSON.stringify(input.urls.map(map)));
"""


def test_mapping_cases_in_node():
    node = require_tool("node")
    a, b = "http://wiki.intranet", "http://127.0.0.1:8080"
    table = build_site_table({"a": BackendSite("a", a), "b": BackendSite("b", b)})
    proxy = "http://proxy.test:8000"
    cases = expanded_cases(proxy, a, b)
    page = {
        "protocol": "http:",
        "host": "proxy.test:8000",
        "href": proxy + CASES["page_path"],
    }
    request = {
        "site": "a",
        "origins": backend_origins(table),
        "page": page,
        "urls": [i for i, _ in cases],
    }
    out = subprocess.run(
        [node, "-e", NODE_RUNNER, str(SHIM_SOURCE)],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    got = json.loads(out)
    wrong = [(i, want, g) for (i, want), g in zip(cases, got, strict=True) if g != want]
    assert wrong == []


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


# --- where the tag goes -----------------------------------------------------------------


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


# --- the CSP amendment --------------------------------------------------------------------

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


# --- over real HTTP -------------------------------------------------------------------------

PAGE = "<!doctype html><html><head><title>t</title></head><body><a href='/x'>x</a></body></html>"


def _routes():
    def page(h):
        h.set_header("Content-Type", "text/html; charset=utf-8")
        csp = h.get_argument("csp", None)
        if csp:
            h.set_header("Content-Security-Policy", csp)
        h.finish(PAGE)

    def fragment(h):
        h.set_header("Content-Type", "text/html")
        h.finish("<li>an item</li>")

    def utf16(h):
        h.set_header("Content-Type", "text/html; charset=utf-16")
        h.finish(PAGE.encode("utf-16"))

    return {"/page": page, "/fragment": fragment, "/utf16": utf16}


@pytest.fixture(scope="module")
def stack(loop_thread):
    backend = start_backend(loop_thread, "s", _routes())
    sites = {
        "s": BackendSite("s", backend.url),
        "off": BackendSite("off", backend.url, shim=False),
    }
    proxy = start_proxy(loop_thread, sites)
    return {"proxy": proxy, "shim": Shim(build_site_table(sites))}


def _script_tags(data: bytes) -> list[str]:
    return re.findall(r"<script[^>]*>", data.decode())


def test_pages_load_the_shim_first(stack):
    resp, data = stack["proxy"].request("GET", "/.site.s/page")
    tag = stack["shim"].tag("s")
    assert data.decode().startswith(f"<!doctype html><html><head>{tag}<title>")
    assert int(resp.headers["Content-Length"]) == len(data)
    # The page's own links are rewritten as before; the shim's URL is not touched.
    assert "href='/.site.s/x'" in data.decode()
    # The cookie route gets it too, naming the site the cookie chose.
    resp, data = stack["proxy"].request("GET", "/page", headers={"Cookie": ".site=s"})
    assert _script_tags(data) == [tag.removesuffix("</script>")]


def test_utf16_pages_get_the_shim_in_their_own_charset(stack):
    _, data = stack["proxy"].request("GET", "/.site.s/utf16")
    text = data.decode("utf-16")
    assert text.startswith("<!doctype html><html><head>" + stack["shim"].tag("s") + "<title>")


def test_no_shim_for_fetches_fragments_or_sites_that_turn_it_off(stack):
    proxy = stack["proxy"]
    for path, headers in [
        ("/.site.s/page", {"Sec-Fetch-Dest": "empty", "Sec-Fetch-Mode": "cors"}),
        ("/.site.s/fragment", {}),
        ("/.site.off/page", {}),
    ]:
        _, data = proxy.request("GET", path, headers=headers)
        assert _script_tags(data) == [], path
    _, data = proxy.request("GET", "/.site.s/page", headers={"Sec-Fetch-Dest": "iframe"})
    assert len(_script_tags(data)) == 1


def test_csp_admits_the_shim_with_a_nonce_and_nothing_else(stack):
    proxy = stack["proxy"]
    resp, data = proxy.request("GET", "/.site.s/page?csp=script-src%20cdn.example")
    policy = resp.headers["Content-Security-Policy"]
    nonce = re.fullmatch(r"script-src cdn\.example 'nonce-([\w-]+)'", policy).group(1)
    assert _script_tags(data) == [stack["shim"].tag("s", nonce).removesuffix("</script>")]
    # A fresh nonce for every response.
    resp2, _ = proxy.request("GET", "/.site.s/page?csp=script-src%20cdn.example")
    assert resp2.headers["Content-Security-Policy"] != policy
    # A page that may run no script gets no shim and its policy as it was.
    resp, data = proxy.request("GET", "/.site.s/page?csp=script-src%20%27none%27")
    assert resp.headers["Content-Security-Policy"] == "script-src 'none'"
    assert _script_tags(data) == []


def test_shim_script_is_served_cacheable_and_valid(stack):
    proxy, shim = stack["proxy"], stack["shim"]
    resp, data = proxy.request("GET", shim.url)
    assert resp.status == 200 and data == shim.body
    assert resp.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert resp.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    resp, _ = proxy.request("GET", SHIM_PATH + "?v=stale")
    assert resp.headers["Cache-Control"] == "no-cache"
    resp, packed = proxy.request("GET", shim.url, headers={"Accept-Encoding": "gzip, br"})
    assert resp.headers["Content-Encoding"] == "gzip" and resp.headers["Vary"] == "Accept-Encoding"
    assert gzip.decompress(packed) == shim.body and len(packed) < len(shim.body) / 2
    node = require_tool("node")
    subprocess.run([node, "--check", "-"], input=data, check=True, timeout=30)
