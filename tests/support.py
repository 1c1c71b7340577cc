"""Real servers on loopback for the tests: backends that record what reaches them, and
the proxy itself, all on one IOLoop in a background thread; tests speak plain HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import shutil
import socket
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.web import Application, RequestHandler

from handlers.app import make_app, make_server
from handlers.config.options import Options
from handlers.config.sites import BackendSite, build_site_table

IN_CI = bool(os.environ.get("CI"))


def require_tool(path_or_name: str) -> str:
    """The tool's path; skip when it is missing, except in CI, where a skip would hide
    that a check never ran, so it fails instead."""
    found = shutil.which(path_or_name) or (path_or_name if os.path.exists(path_or_name) else None)
    if found is None:
        message = f"{path_or_name} is not installed"
        if IN_CI:
            pytest.fail(f"{message} (CI must install it: see .ci/run)")
        pytest.skip(message)
    return found


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
    server: HTTPServer | None = None

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

    async def start() -> None:
        sock = bind_sockets(0, "127.0.0.1")[0]
        backend.port = sock.getsockname()[1]
        app = Application([(r".*", RecordingHandler, {"backend": backend, "routes": routes or {}})])
        backend.server = HTTPServer(app, ssl_options=ssl_options)
        backend.server.add_sockets([sock])

    lt.run(start())
    return backend


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


def start_proxy(lt: LoopThread, forward_list: dict[str, BackendSite], **option_kw: Any) -> Proxy:
    async def start() -> Proxy:
        table = build_site_table(forward_list)
        options = Options(**option_kw)
        app = make_app(table, options)
        sock = bind_sockets(0, "127.0.0.1")[0]
        server = make_server(app, options)
        server.add_sockets([sock])
        return Proxy(sock.getsockname()[1], server)

    return lt.run(start())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def spawn_proxy(args: list[str], timeout: float = 15, log: Any = None) -> tuple[Any, int]:
    """Start proxy.py (with ``args`` after --port and --address) in a process of its
    own; return (Popen, port) once it serves, or as soon as it has exited. Its output
    goes to pipes, or to the open file ``log`` (for long runs: a pipe nobody reads
    would fill up and stall the proxy)."""
    import subprocess
    import sys
    import urllib.request

    port = free_port()
    command = [sys.executable, os.path.join(ROOT, "proxy.py"), f"--port={port}"]
    proc = subprocess.Popen(
        [*command, "--address=127.0.0.1", *args],
        cwd="/",
        stdout=log or subprocess.PIPE,
        stderr=log or subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return proc, port
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/.proxy/health", timeout=1)
            return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("proxy did not start")


def run_proxy_process(config_text: str, tmp_path: Any) -> tuple[Any, int]:
    """proxy.py as users run it, in its own process (so that its memory can be
    measured), serving the settings in ``config_text``. Returns (Popen, port)."""
    path = tmp_path / "settings_under_test.py"
    path.write_text(config_text)
    log_path = tmp_path / "proxy.log"
    proc, port = spawn_proxy([f"--config={path}"], log=open(log_path, "w"))
    if proc.poll() is not None:
        raise AssertionError(f"proxy exited: {log_path.read_text()}")
    return proc, port


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class RssSampler(threading.Thread):
    """Samples a process's resident memory every 50 ms until stopped."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.samples: list[float] = []
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                self.samples.append(rss_mib(self.pid))
            except OSError:
                return
            self._halt.wait(0.05)

    def __enter__(self) -> RssSampler:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._halt.set()
        self.join(2)

    @property
    def peak(self) -> float:
        return max(self.samples, default=0.0)


CHROMIUM = "/usr/bin/chromium"
# Chromium as this machine runs it (see the environment notes): no sandbox as root, no
# background traffic to hosts that the closed network would refuse.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """The system Chromium, headless, driven by Playwright's Python package (no browser
    is downloaded). Skips where either is missing; fails instead in CI."""
    require_tool(CHROMIUM)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if IN_CI:
            pytest.fail("playwright is not installed (requirements-dev.txt)")
        pytest.skip("playwright is not installed")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def spawn_server(
    command: list[str],
    ready_url: str,
    log_path: Any,
    *,
    env: dict[str, str] | None = None,
    cwd: Any = None,
    timeout: float = 60,
) -> Any:
    """Start a server process (its output to ``log_path``) and return its Popen once
    ``ready_url`` answers; if it exits or stays silent, fail with its log."""
    import subprocess
    import urllib.request

    with open(log_path, "w") as log:
        server = subprocess.Popen(command, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(ready_url, timeout=2)
            return server
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                with open(log_path) as log:
                    raise AssertionError(log.read()) from None
            time.sleep(0.25)
