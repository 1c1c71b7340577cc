"""The in-page shim in the system Chromium: the mapping cases of tests/data/shim_cases.json
(the same that tests/integration/test_shim.py runs in Node), every channel it hooks, and
pages under a Content-Security-Policy. The ``.site`` cookie names the *other* site
throughout (conftest.py), so that a request that is not mapped cannot reach the right
backend by luck.
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

import pytest

from tests.support.shim_cases import CASES, expanded_cases


def test_mapping_cases_in_the_browser(shimmed):
    page = shimmed["context"].new_page()
    page.goto(shimmed["origin"] + CASES["page_path"])
    a, b = shimmed["sites"]["a"].url, shimmed["sites"]["b"].url
    cases = expanded_cases(shimmed["origin"], a, b)
    got = page.evaluate(
        "urls => urls.map(u => window.__webProxyShim.map(u))", [i for i, _ in cases]
    )
    wrong = [(i, want, g) for (i, want), g in zip(cases, got, strict=True) if g != want]
    assert wrong == []
    page.close()


HOOKS = """async () => {
  const loaded = el => new Promise(r => { el.onload = el.onerror = r; });
  await fetch("/hook/fetch");
  await fetch(new Request("/hook/request"));
  await fetch(new URL("/hook/url-object", location.origin));
  await new Promise(r => { const x = new XMLHttpRequest(); x.open("GET", "/hook/xhr");
                            x.onload = r; x.send(); });
  await new Promise((r, e) => { const ws = new WebSocket("ws://" + location.host + "/hook/ws");
    ws.onopen = () => ws.send("x"); ws.onmessage = () => { ws.close(); r(); }; ws.onerror = e; });
  await new Promise(r => { const es = new EventSource("/hook/sse");
                            es.onmessage = () => { es.close(); r(); }; });
  await new Promise(r => { new Worker("/hook/worker.js").onmessage = r; });
  navigator.sendBeacon("/hook/beacon", "x");
  let img = new Image(); let done = loaded(img); img.src = "/hook/image-src"; await done;
  const s = document.createElement("script"); done = loaded(s);
  s.src = "/hook/chunk.js"; document.head.appendChild(s); await done;
  const l = document.createElement("link"); l.rel = "stylesheet"; done = loaded(l);
  l.href = "/hook/style.css"; document.head.appendChild(l); await done;
  img = document.createElement("img"); done = loaded(img);
  img.setAttribute("src", "/hook/set-attribute"); document.body.appendChild(img); await done;
  document.body.insertAdjacentHTML("beforeend", '<img id=adj src="/hook/inserted-html">');
  await loaded(document.getElementById("adj"));
  const a = document.createElement("a"); a.href = "/hook/anchor";
  history.pushState({}, "", "/hook/state");
  const frame = document.createElement("iframe"); frame.name = "sink";
  document.body.appendChild(frame);
  const form = document.createElement("form"); form.method = "post"; form.target = "sink";
  form.action = "/hook/form-submit"; document.body.appendChild(form);
  done = loaded(frame); form.submit(); await done;
  const f = document.getElementById("f"); f.target = "sink"; done = loaded(frame);
  f.requestSubmit(); await done;
  document.cookie = "k=v; path=/";
  return {anchor: a.href, path: location.pathname, cookie: document.cookie,
          chunk: window.chunkRan, color: getComputedStyle(document.querySelector("h1")).color};
}"""


def test_every_hooked_channel_reaches_the_pages_site(shimmed):
    context, sites = shimmed["context"], shimmed["sites"]
    a, b = sites["a"], sites["b"]
    a.seen.clear()
    b.seen.clear()
    page = context.new_page()
    urls: list[str] = []
    page.on("request", lambda r: urls.append(r.url))
    page.on("websocket", lambda ws: urls.append(ws.url))
    context.on("request", lambda r: urls.append(r.url))  # the worker's own requests
    page.goto(shimmed["origin"] + "/.site.a/app/docs/page.html")
    result = page.evaluate(HOOKS)
    origin = shimmed["origin"]
    assert result["anchor"] == f"{origin}/.site.a/hook/anchor"
    assert result["path"] == "/.site.a/hook/state"
    assert result["chunk"] == 1 and result["color"] == "rgb(1, 2, 3)"
    # document.cookie shows the script's cookie by its name, scoped to the site.
    assert result["cookie"] == "k=v"
    cookies = {(c["name"], c["path"]) for c in context.cookies()}
    assert {("k", "/.site.a/"), (".site~a~k", "/")} <= cookies
    # A popup and a script's location assignment.
    with context.expect_page() as popup:
        page.evaluate("window.open('/hook/window-open')")
    popup.value.wait_for_load_state()
    assert urlsplit(popup.value.url).path == "/.site.a/hook/window-open"
    popup.value.close()
    with page.expect_navigation():
        page.evaluate("location.href = '/hook/location'")
    assert urlsplit(page.url).path == "/.site.a/hook/location"

    hooks = {
        "fetch", "request", "url-object", "xhr", "ws", "sse", "worker.js", "from-worker",
        "beacon", "image-src", "chunk.js", "style.css", "set-attribute", "inserted-html",
        "form-submit", "form-markup", "window-open", "location",
    }  # fmt: skip
    page.wait_for_timeout(200)  # sendBeacon returns before its request is made
    reached = {p.removeprefix("/hook/") for p, _ in a.seen if p.startswith("/hook/")}
    assert hooks - reached == set()
    assert [p for p, _ in b.seen] == []
    # Each went out with the prefix, but the worker's own fetch: no shim runs in a
    # worker, and that one reached the site by its Referer, the worker's prefixed URL.
    out = {urlsplit(u).path: u for u in urls if "/hook/" in u}
    unprefixed = sorted(p for p in out if not p.startswith("/.site.a/"))
    assert unprefixed == ["/hook/from-worker"]
    # (The backend gets that Referer as a direct client would send it: its own URL.)
    assert dict(a.seen)["/hook/from-worker"] == f"{a.url}/hook/worker.js"
    page.close()


@pytest.mark.parametrize(
    "policy, inline",
    [
        ("script-src 'nonce-abc'", "abc"),
        ("script-src 'strict-dynamic' 'nonce-abc'", "abc"),
        ("script-src 'unsafe-inline' https://cdn.example", ""),
        ("default-src 'self'", None),
    ],
)
def test_shim_runs_under_the_sites_csp_and_the_page_keeps_its_own_scripts(shimmed, policy, inline):
    page = shimmed["context"].new_page()
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security" in m.text else 0)
    query = {"csp": policy} if inline is None else {"csp": policy, "inline": inline}
    page.goto(f"{shimmed['origin']}/.site.a/csp.html?{urlencode(query)}")
    assert page.evaluate("window.__webProxyShim && window.__webProxyShim.site") == "a"
    if inline is not None:
        assert page.evaluate("window.inlineRan") is True
    assert violations == []
    page.close()
