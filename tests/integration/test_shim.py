"""The in-page URL shim running: its mapping cases in Node, and the proxy serving it and
loading it first in pages over real HTTP."""

from __future__ import annotations

import gzip
import json
import re
import subprocess
from pathlib import Path

import pytest

from filters.names import SHIM_PATH
from handlers.config.sites import BackendSite, build_site_table
from handlers.mapping.shim import Shim, backend_origins
from tests.support import require_tool, start_backend, start_proxy
from tests.support.shim_cases import CASES, expanded_cases

HERE = Path(__file__).parent.parent
SHIM_SOURCE = HERE.parent / "handlers" / "assets" / "shim.js"
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
