"""Two small demo sites on loopback, for ``python proxy.py --demo``.

They behave like the intranet sites users put behind the proxy: their pages name their
own absolute address (which a browser outside could not reach), link to each other,
redirect, and take a form. The site table that goes with them rewrites those
addresses, so everything works through the proxy.
"""

from __future__ import annotations

import struct
import zlib
from html import escape

from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.web import Application, RequestHandler

from handlers.sites import BackendSite


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


class _DemoPage(RequestHandler):
    def initialize(self, title: str, own: str, other: str, colour: tuple[int, int, int]) -> None:
        self.title, self.own, self.other, self.colour = title, own, other, colour

    def page(self, heading: str, body: str) -> None:
        self.finish(
            f"<!doctype html><html><head><meta charset=utf-8><title>{escape(self.title)}</title>"
            f'<link rel="stylesheet" href="{self.own}/style.css"></head><body>'
            f"<h1>{escape(heading)}</h1>{body}"
            f'<p><a href="{self.own}/">home</a> · <a href="{self.own}/about">about</a> · '
            f'<a href="{self.own}/old-page">an old link (redirects)</a> · '
            f'<a href="{self.other}/">the other site</a></p></body></html>'
        )


class IndexPage(_DemoPage):
    def get(self) -> None:
        self.page(
            self.title,
            f"<p>This page lives at <code>{self.own}/</code>. Its links and images use that "
            f"absolute address; the proxy rewrites them.</p>"
            f'<p><img alt="logo" width=64 height=64 src="{self.own}/logo.png"></p>'
            f'<form method="post" action="{self.own}/echo"><input name="message" value="hello">'
            f"<button>Send</button></form>",
        )


class AboutPage(_DemoPage):
    def get(self) -> None:
        self.page("About", f"<p>Served by the demo site at {self.own}.</p>")


class EchoPage(_DemoPage):
    def post(self) -> None:
        message = self.get_body_argument("message", "")
        self.page("Form received", f"<p>You sent: <strong>{escape(message)}</strong></p>")


class OldPage(_DemoPage):
    def get(self) -> None:
        self.redirect(f"{self.own}/about")


class Logo(_DemoPage):
    def get(self) -> None:
        self.set_header("Content-Type", "image/png")
        self.finish(png(64, 64, self.colour))


class Style(_DemoPage):
    def get(self) -> None:
        self.set_header("Content-Type", "text/css")
        self.finish(
            "body{font-family:sans-serif;max-width:40rem;margin:2rem auto}h1{color:#1f5fbf}"
        )


def _demo_app(title: str, own: str, other: str, colour: tuple[int, int, int]) -> Application:
    args = {"title": title, "own": own, "other": other, "colour": colour}
    return Application(
        [
            (r"/", IndexPage, args),
            (r"/about", AboutPage, args),
            (r"/echo", EchoPage, args),
            (r"/old-page", OldPage, args),
            (r"/logo.png", Logo, args),
            (r"/style.css", Style, args),
        ]
    )


def start_demo_sites() -> tuple[dict[str, BackendSite], list[HTTPServer]]:
    """Start both demo sites on free loopback ports (on the running IOLoop) and return
    the site table that puts them behind the proxy."""
    sockets = [bind_sockets(0, "127.0.0.1")[0] for _ in range(2)]
    urls = [f"http://127.0.0.1:{s.getsockname()[1]}" for s in sockets]
    names = ["demo", "demo2"]
    servers, sites = [], {}
    for i, (name, url, sock) in enumerate(zip(names, urls, sockets, strict=False)):
        title = "Demo site one" if i == 0 else "Demo site two"
        colour = (31, 95, 191) if i == 0 else (46, 160, 67)
        server = HTTPServer(_demo_app(title, url, urls[1 - i], colour))
        server.add_sockets([sock])
        servers.append(server)
        # No rules needed: absolute links to either site are rewritten automatically.
        sites[name] = BackendSite(name, url, url.split("//", 1)[1], [])
    return sites, servers
