"""Real servers on loopback for the tests: backends that record what reaches them, and
the proxy itself, all on one IOLoop in a background thread; tests speak plain HTTP."""

from __future__ import annotations

import asyncio
import dataclasses
import http.client
import json
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.web import Application, RequestHandler
from tornado.websocket import WebSocketHandler

from handlers.app import make_app, make_server
from handlers.config.options import Options
from handlers.config.signin import SignInOptions
from handlers.config.sites import BackendSite, build_site_table


class LoopThread:
    """An asyncio loop in a daemon thread; ``run`` executes a coroutine on it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn: Callable[[], Any]) -> Any:
        async def wrapper() -> Any:
            return fn()

        return self.run(wrapper())

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@dataclass
class Seen:
    method: str
    uri: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        values = [v for k, v in self.headers if k.lower() == name.lower()]
        return ", ".join(values) if values else None


@dataclass
class Backend:
    """A backend that records every request; ``routes`` maps a path to a handler fn."""

    name: str
    port: int = 0
    seen: list[Seen] = field(default_factory=list)

    @property
    def netloc(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.netloc}"


class RecordingHandler(RequestHandler):
    SUPPORTED_METHODS = (
        *("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"),
        *("PROPFIND", "COPY", "MOVE"),
    )

    def initialize(self, backend: Backend, routes: dict[str, Callable[..., Any]]) -> None:
        self.backend = backend
        self.routes = routes

    def compute_etag(self) -> None:
        return None

    async def _any(self) -> None:
        r = self.request
        self.backend.seen.append(
            Seen(r.method or "", r.uri or "", list(r.headers.get_all()), r.body or b"")
        )
        route = self.routes.get(r.path)
        if route is not None:
            result = route(self)
            if asyncio.iscoroutine(result):
                await result
            return
        self.set_header("Content-Type", "application/json")
        self.finish(
            json.dumps(
                {
                    "backend": self.backend.name,
                    "method": r.method,
                    "uri": r.uri,
                    "headers": list(r.headers.get_all()),
                    "body": (r.body or b"").decode("latin-1"),
                }
            )
        )

    get = head = post = put = delete = patch = options = propfind = copy = move = _any


def start_backend(
    lt: LoopThread,
    name: str,
    routes: dict[str, Callable[..., Any]] | None = None,
    ssl_options: Any = None,
) -> Backend:
    backend = Backend(name)
    app = Application([(r".*", RecordingHandler, {"backend": backend, "routes": routes or {}})])
    backend.port = serve_app(lt, app, ssl_options=ssl_options)
    return backend


def serve_app(lt: LoopThread, app: Application, port: int = 0, **server_kw: Any) -> int:
    """Serve a Tornado ``app`` on 127.0.0.1 from the loop thread, on ``port`` or a free
    one (``server_kw`` go to its HTTPServer); return the port."""

    async def start() -> int:
        sock = bind_sockets(port, "127.0.0.1")[0]
        HTTPServer(app, **server_kw).add_sockets([sock])
        return sock.getsockname()[1]

    return lt.run(start())


def serve_raw(
    lt: LoopThread, handle: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
) -> int:
    """Serve every connection to a free port of 127.0.0.1 with ``handle(reader, writer)``:
    a backend that writes its answer byte by byte, broken ones included. Returns the port."""

    async def start() -> int:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        return server.sockets[0].getsockname()[1]

    return lt.run(start())


class EchoSocket(WebSocketHandler):
    """A WebSocket backend that sends every message back as it came."""

    def on_message(self, message: str | bytes) -> None:
        self.write_message(message, binary=isinstance(message, bytes))


@dataclass
class Proxy:
    port: int
    server: HTTPServer

    def request(
        self,
        method: str,
        target: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 20,
    ) -> tuple[http.client.HTTPResponse, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, target, body=body, headers=headers or {})
            resp = conn.getresponse()
            data = resp.read()
            return resp, data
        finally:
            conn.close()

    def raw(self, data: bytes, timeout: float = 10) -> bytes:
        """Send raw bytes, return everything the proxy answers until it closes."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as sock:
            sock.sendall(data)
            chunks = []
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                try:
                    chunk = sock.recv(65536)
                except TimeoutError:
                    break
                if not chunk:
                    break
                chunks.append(chunk)
                if b"\r\n\r\n" in b"".join(chunks) and _complete(b"".join(chunks)):
                    break
            return b"".join(chunks)


def _complete(data: bytes) -> bool:
    head, _, body = data.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":", 1)[1])
    return False


def start_proxy(
    lt: LoopThread, forward_list: dict[str, BackendSite], port: int = 0, **option_kw: Any
) -> Proxy:
    """The proxy on 127.0.0.1 (``port`` 0: any free one), with ``option_kw`` as its
    settings; the sign-in settings (handlers/config/signin.py) may be among them."""
    signin_fields = {f.name for f in dataclasses.fields(SignInOptions)}
    signin = {k: option_kw.pop(k) for k in list(option_kw) if k in signin_fields}

    async def start() -> Proxy:
        table = build_site_table(forward_list)
        options = Options(**option_kw, signin=SignInOptions(**signin))
        app = make_app(table, options)
        sock = bind_sockets(port, "127.0.0.1")[0]
        server = make_server(app, options)
        server.add_sockets([sock])
        return Proxy(sock.getsockname()[1], server)

    return lt.run(start())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
