"""Sites a and b for the shim's browser tests: each serves pages, scripts, styles, images,
an event stream and a WebSocket echo, and records every request as it arrived."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from tornado.web import RequestHandler

from tests.support import EchoSocket

PAGE = (
    "<!doctype html><html><head><title>{name}</title>{inline}</head>"
    "<body><h1>{name}</h1><form id=f method=post action='/hook/form-markup'></form></body></html>"
)
GIF = (
    b"GIF89a\x01\x00\x01\x00\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,"
    b"\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)


@dataclass
class Got:
    """A request as the backend received it."""

    method: str
    headers: dict[str, str]  # names in lower case
    body: bytes


@dataclass
class Site:
    name: str
    url: str = ""
    seen: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Referer)
    got: dict[str, Got] = field(default_factory=dict)  # by path, the last one


class Any(RequestHandler):
    SUPPORTED_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE")

    def initialize(self, site: Site) -> None:
        self.site = site

    def prepare(self) -> None:
        r = self.request
        self.site.seen.append((r.path, r.headers.get("Referer")))
        headers = {k.lower(): v for k, v in r.headers.get_all()}
        self.site.got[r.path] = Got(r.method or "", headers, r.body or b"")

    async def get(self) -> None:
        path = self.request.path
        if path.endswith("/redirect"):
            self.redirect(path.removesuffix("redirect") + "target")
        elif path.endswith("/slow"):
            await asyncio.sleep(2)
            self.finish("late")
        elif path.endswith(".html"):
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
            self.finish(GIF)

    post = head = put = delete = get


class Echo(EchoSocket):
    def initialize(self, site: Site) -> None:
        self.site = site

    def prepare(self) -> None:
        self.site.seen.append((self.request.path, None))
