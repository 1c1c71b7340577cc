"""The ``demo`` and ``wiki`` sites of ``--demo``: two intranet sites of the same kind.

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
from html import escape
from typing import ClassVar

from tornado.web import Application, RequestHandler
from tornado.websocket import WebSocketHandler

from demo.apps import application


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


class IntranetSite:
    """One demo site's identity and state."""

    def __init__(self, name: str, title: str, colour: tuple[int, int, int]) -> None:
        self.name, self.title, self.colour = name, title, colour
        self.own = ""  # http://127.0.0.1:PORT, once bound
        self.other = ""
        self.sessions: dict[str, str] = {}


class _Page(RequestHandler):
    route: ClassVar[str]

    def initialize(self, site: IntranetSite) -> None:
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
    route = r"/"

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
    route = r"/about"

    def get(self) -> None:
        s = self.site
        self.page("About", f"<p id=about>Served by {escape(s.title)} at {s.own}.</p>")


class Login(_Page):
    route = r"/login"

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
    route = r"/account"

    def get(self) -> None:
        user = self.user()
        if user is None:
            self.redirect(f"{self.site.own}/login")
            return
        self.page("Account", f"<p id=account>Welcome back, {escape(user)}.</p>")


class OldPage(_Page):
    route = r"/old-page"

    def get(self) -> None:
        self.redirect(f"{self.site.own}/about")


class Gbk(_Page):
    route = r"/gbk"

    def get(self) -> None:
        self.set_header("Content-Type", "text/html; charset=GBK")
        html = (
            "<!doctype html><html><head><title>中文页面</title></head><body>"
            f"<h1 id=gbk>你好，世界</h1><p>这个页面用 GBK 编码。</p>"
            f'<p><a id=home href="{self.site.own}/">返回首页</a></p></body></html>'
        )
        self.finish(html.encode("gbk"))


class Live(_Page):
    route = r"/live"

    def get(self) -> None:
        self.page(
            "Live",
            "<p>WebSocket echo: <b id=echo>…</b></p><p>Server clock (SSE): <b id=clock>…</b></p>",
            f'<script src="{self.site.own}/static/live.js"></script>',
        )


class Api(_Page):
    route = r"/api/time"

    def get(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"site": self.site.name, "time": time.strftime("%H:%M:%S")}))


class Clock(_Page):
    route = r"/clock"

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
    route: ClassVar[str] = r"/ws"

    def initialize(self, site: IntranetSite) -> None:
        self.site = site

    def on_message(self, message: str | bytes) -> None:
        self.write_message(f"echo: {message}" if isinstance(message, str) else message)


class Static(_Page):
    route = r"/static/(.*)"

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


def intranet_app(site: IntranetSite) -> Application:
    pages = (Index, About, Login, Account, OldPage, Gbk, Live, Api, Clock, Echo, Static)
    return application({"site": site}, *pages)


__all__ = ["IntranetSite", "intranet_app", "png"]
