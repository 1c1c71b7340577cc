"""The in-page shim in the system Chromium: the mapping cases of tests/data/shim_cases.json
(the same that tests/test_shim.py runs in Node), every channel it hooks, and pages under a
Content-Security-Policy. The ``.site`` cookie names the *other* site throughout, so that a
request that is not mapped cannot reach the right backend by luck."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

import pytest
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.web import Application, RequestHandler
from tornado.websocket import WebSocketHandler

from handlers.sites import BackendSite
from tests.support import chromium, start_proxy
from tests.test_shim import CASES, expanded_cases

PAGE = (
    "<!doctype html><html><head><title>{name}</title>{inline}</head>"
    "<body><h1>{name}</h1><form id=f method=post action='/hook/form-markup'></form></body></html>"
)


@dataclass
class Site:
    name: str
    url: str = ""
    seen: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Referer)


class Any(RequestHandler):
    def initialize(self, site: Site) -> None:
        self.site = site

    def prepare(self) -> None:
        self.site.seen.append((self.request.path, self.request.headers.get("Referer")))

    async def get(self) -> None:
        path = self.request.path
        if path.endswith(".html"):
            self.set_header("Content-Type", "text/html; charset=utf-8")
            csp = self.get_argument("csp", None)
            if csp:
                self.set_header("Content-Security-Policy", csp)
            inline = ""
            if self.get_argument("inline", None) is not None:
                nonce = self.get_argument("inline")
                attr = f' nonce="{nonce}"' if nonce else ""
                inline = f"<script{attr}>window.inlineRan = true</script>"
            self.finish(PAGE.format(name=self.site.name, inline=inline))
        elif path == "/hook/worker.js":
            self.set_header("Content-Type", "text/javascript")
            # Inside the worker no shim runs: its root-relative fetch reaches the site
            # by the Referer (the worker's prefixed URL).
            self.finish('fetch("/hook/from-worker").then(() => postMessage("done"));')
        elif path == "/hook/sse":
            self.set_header("Content-Type", "text/event-stream")
            self.finish("data: hello\n\n")
        elif path.endswith(".css"):
            self.set_header("Content-Type", "text/css")
            self.finish("h1 { color: rgb(1, 2, 3) }")
        elif path.endswith(".js"):
            self.set_header("Content-Type", "text/javascript")
            self.finish("window.chunkRan = (window.chunkRan || 0) + 1;")
        else:
            self.set_header("Content-Type", "image/gif")  # a 1x1 GIF: images load
            self.finish(
                b"GIF89a\x01\x00\x01\x00\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,"
                b"\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
            )

    post = head = get


class Echo(WebSocketHandler):
    def initialize(self, site: Site) -> None:
        self.site = site

    def prepare(self) -> None:
        self.site.seen.append((self.request.path, None))

    def on_message(self, message: str | bytes) -> None:
        self.write_message(message)


@pytest.fixture(scope="module")
def shimmed(loop_thread):
    sites = {"a": Site("a"), "b": Site("b")}

    async def start():
        for site in sites.values():
            sock = bind_sockets(0, "127.0.0.1")[0]
            site.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
            app = Application([(r"/hook/ws", Echo, {"site": site}), (r".*", Any, {"site": site})])
            HTTPServer(app).add_sockets([sock])

    loop_thread.run(start())
    proxy = start_proxy(loop_thread, {n: BackendSite(n, s.url) for n, s in sites.items()})
    origin = f"http://127.0.0.1:{proxy.port}"
    with chromium() as browser:
        context = browser.new_context()
        # The cookie fallback points at b: only mapping (or the Referer) reaches a.
        context.add_cookies([{"name": ".site", "value": "b", "url": origin}])
        yield {"origin": origin, "context": context, "sites": sites}
        context.close()


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
