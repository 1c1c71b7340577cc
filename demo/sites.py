"""The demo sites on loopback, for ``python proxy.py --demo``.

They behave like the intranet sites users put behind the proxy: their pages name their
own absolute address (which a browser outside could not reach) in links, images,
stylesheets and scripts, use protocol-relative and root-relative links, keep a login in
a session cookie, redirect, serve a page in GBK, echo over a WebSocket and stream a
clock as server-sent events. The proxy needs no rules for any of it.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import struct
import time
import zlib
from dataclasses import dataclass
from html import escape

from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.web import Application, RequestHandler
from tornado.websocket import WebSocketHandler

from demo.apps import DemoApp, notes_app, team_app
from handlers.config.sites import BackendSite


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A solid-colour PNG, made here so the demo needs no files."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" + bytes(rgb) * width
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


class _Site:
    """One demo site's identity and state."""

    def __init__(self, name: str, title: str, colour: tuple[int, int, int]) -> None:
        self.name, self.title, self.colour = name, title, colour
        self.own = ""  # http://127.0.0.1:PORT, once bound
        self.other = ""
        self.sessions: dict[str, str] = {}


class _Page(RequestHandler):
    def initialize(self, site: _Site) -> None:
        self.site = site

    def user(self) -> str | None:
        return self.site.sessions.get(self.get_cookie("demo_session", "") or "")

    def page(self, heading: str, body: str, script: str = "") -> None:
        s = self.site
        user = self.user()
        who = f"Signed in as <b id=user>{escape(user)}</b>" if user else "Not signed in"
        self.finish(
            "<!doctype html><html><head><meta charset=utf-8>"
            f"<title>{escape(s.title)}: {escape(heading)}</title>"
            f'<link rel="stylesheet" href="{s.own}/static/site.css"></head><body>'
            f'<header><img class=logo alt="logo" width=32 height=32 src="{s.own}/static/logo.png">'
            f"<span class=brand>{escape(s.title)}</span><span class=who>{who}</span></header>"
            "<nav>"
            f'<a href="{s.own}/">Home</a> <a href="/about">About</a> '
            f'<a href="//{s.own.split("//")[1]}/account">Account</a> '
            f'<a href="{s.own}/live">Live</a> <a href="{s.own}/gbk">GBK page</a> '
            f'<a href="{s.own}/old-page">Old link</a> '
            f'<a id=other href="{s.other}/">The other site</a></nav>'
            f"<main><h1>{escape(heading)}</h1>{body}</main>{script}</body></html>"
        )


class Index(_Page):
    def get(self) -> None:
        s = self.site
        self.page(
            s.title,
            f"<p>This page lives at <code>{s.own}/</code>. Its links, images, stylesheet "
            "and script name that address; through the proxy they all work.</p>"
            f'<p><img id=photo alt="photo" width=120 height=80 src="{s.own}/static/photo.png">'
            f' <img id=relative alt="root-relative" width=80 height=80 src="/static/logo.png"></p>'
            "<p>Server time, fetched by a script from the absolute backend URL: "
            "<b id=time>…</b></p><div class=banner>A background image from CSS url()</div>",
            f'<script src="{s.own}/static/app.js"></script>',
        )


class About(_Page):
    def get(self) -> None:
        s = self.site
        self.page("About", f"<p id=about>Served by {escape(s.title)} at {s.own}.</p>")


class Login(_Page):
    def get(self) -> None:
        self.page(
            "Sign in",
            f'<form id=login method=post action="{self.site.own}/login">'
            '<label>Name <input name=user value="alice"></label> '
            "<button type=submit>Sign in</button></form>",
        )

    def post(self) -> None:
        token = secrets.token_hex(8)
        self.site.sessions[token] = self.get_body_argument("user", "guest")
        self.set_cookie("demo_session", token, httponly=True, path="/")
        self.redirect(f"{self.site.own}/account")


class Account(_Page):
    def get(self) -> None:
        user = self.user()
        if user is None:
            self.redirect(f"{self.site.own}/login")
            return
        self.page("Account", f"<p id=account>Welcome back, {escape(user)}.</p>")


class OldPage(_Page):
    def get(self) -> None:
        self.redirect(f"{self.site.own}/about")


class Gbk(_Page):
    def get(self) -> None:
        self.set_header("Content-Type", "text/html; charset=GBK")
        html = (
            "<!doctype html><html><head><title>中文页面</title></head><body>"
            f"<h1 id=gbk>你好，世界</h1><p>这个页面用 GBK 编码。</p>"
            f'<p><a id=home href="{self.site.own}/">返回首页</a></p></body></html>'
        )
        self.finish(html.encode("gbk"))


class Live(_Page):
    def get(self) -> None:
        self.page(
            "Live",
            "<p>WebSocket echo: <b id=echo>…</b></p><p>Server clock (SSE): <b id=clock>…</b></p>",
            f'<script src="{self.site.own}/static/live.js"></script>',
        )


class Api(_Page):
    def get(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"site": self.site.name, "time": time.strftime("%H:%M:%S")}))


class Clock(_Page):
    async def get(self) -> None:
        self.set_header("Content-Type", "text/event-stream")
        self.set_header("Cache-Control", "no-cache")
        try:
            for _ in range(600):
                self.write(f"data: {time.strftime('%H:%M:%S')} {time.monotonic():.1f}\n\n")
                await self.flush()
                await asyncio.sleep(1)
        except Exception:  # the client went away
            return
        self.finish()


class Echo(WebSocketHandler):
    def on_message(self, message: str | bytes) -> None:
        self.write_message(f"echo: {message}" if isinstance(message, str) else message)


class Static(_Page):
    def get(self, name: str) -> None:
        s = self.site
        if name == "logo.png":
            self.set_header("Content-Type", "image/png")
            self.finish(png(32, 32, (255, 196, 0)))
        elif name == "photo.png":
            self.set_header("Content-Type", "image/png")
            self.finish(png(120, 80, (240, 200, 80)))
        elif name == "banner.png":
            self.set_header("Content-Type", "image/png")
            self.finish(png(8, 8, (220, 235, 250)))
        elif name == "site.css":
            self.set_header("Content-Type", "text/css")
            r, g, b = s.colour
            self.finish(
                "body{font-family:system-ui,sans-serif;margin:0;color:#222}"
                f"header{{display:flex;gap:.75rem;align-items:center;padding:.75rem 1rem;"
                f"background:rgb({r},{g},{b});color:#fff}}"
                ".brand{font-weight:700}.who{margin-left:auto}"
                "nav{padding:.5rem 1rem;border-bottom:1px solid #ddd}nav a{margin-right:.75rem}"
                f"main{{padding:1rem}}h1{{color:rgb({r},{g},{b})}}"
                f".banner{{padding:1rem;background:url({s.own}/static/banner.png)}}"
            )
        elif name == "app.js":
            self.set_header("Content-Type", "application/javascript")
            self.finish(
                f'fetch("{s.own}/api/time").then(r => r.json())'
                '.then(d => { document.getElementById("time").textContent = d.time; })'
                '.catch(e => { document.getElementById("time").textContent = "failed: " + e; });'
            )
        elif name == "live.js":
            self.set_header("Content-Type", "application/javascript")
            self.finish(
                # Relative to the page, so the prefix of /.site.<name>/live is kept.
                'const url = new URL("ws", location.href).href.replace(/^http/, "ws");'
                "const ws = new WebSocket(url);"
                'ws.onopen = () => ws.send("hello");'
                'ws.onmessage = e => { document.getElementById("echo").textContent = e.data; };'
                'const clock = new EventSource("clock");'
                'clock.onmessage = e => { document.getElementById("clock").textContent = e.data; };'
            )
        else:
            self.send_error(404)


def _demo_app(site: _Site) -> Application:
    args = {"site": site}
    return Application(
        [
            (r"/", Index, args),
            (r"/about", About, args),
            (r"/login", Login, args),
            (r"/account", Account, args),
            (r"/old-page", OldPage, args),
            (r"/gbk", Gbk, args),
            (r"/live", Live, args),
            (r"/api/time", Api, args),
            (r"/clock", Clock, args),
            (r"/ws", Echo),
            (r"/static/(.*)", Static, args),
        ]
    )


@dataclass
class DemoSites:
    """The running demo: its site table, its servers, and the request logs of the two
    applications (handlers/demo_apps.py)."""

    forward_list: dict[str, BackendSite]
    servers: list[HTTPServer]
    apps: dict[str, DemoApp]


def start_demo_sites() -> DemoSites:
    """Start the demo sites on free loopback ports (on the running IOLoop) and return
    the site table that puts them behind the proxy."""
    sites = [
        _Site("demo", "Demo intranet", (31, 95, 191)),
        _Site("wiki", "Demo wiki", (46, 140, 67)),
    ]
    apps = {"notes": DemoApp("notes"), "team": DemoApp("team")}
    applications = [
        *(_demo_app(site) for site in sites),
        notes_app(apps["notes"]),
        team_app(apps["team"]),
    ]
    sockets = [bind_sockets(0, "127.0.0.1")[0] for _ in applications]
    urls = [f"http://127.0.0.1:{sock.getsockname()[1]}" for sock in sockets]
    for site, url in zip(sites, urls, strict=False):
        site.own = url
    sites[0].other, sites[1].other = sites[1].own, sites[0].own
    servers = []
    for application, sock in zip(applications, sockets, strict=True):
        server = HTTPServer(application)
        server.add_sockets([sock])
        servers.append(server)
    # No rules needed: links to any of the sites are rewritten automatically.
    names = ["demo", "wiki", "notes", "team"]
    table = {
        name: BackendSite(name, url, url.split("//", 1)[1], [], description=DESCRIPTIONS[name])
        for name, url in zip(names, urls, strict=True)
    }
    return DemoSites(table, servers, apps)


DESCRIPTIONS = {
    "demo": "Pages that name their own address in links, images, CSS and scripts; a login;"
    " a WebSocket echo and a server-sent clock on Live; a GBK page.",
    "wiki": "A second site of the same kind, with the same cookie names: open both at once.",
    "notes": 'A single-page app that builds every URL in script from "baseUrl": "/": API'
    " calls, a WebSocket, a lazily loaded chunk; a cookie session with an XSRF token.",
    "team": "An app installed under /team/, whose session cookie (Path=/team/) has the same"
    " name as the notes app's.",
}
