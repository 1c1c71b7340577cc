"""WebSockets through the real proxy: echo, subprotocols, close codes, pings, Origin."""

from __future__ import annotations

import asyncio

import pytest
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.web import Application
from tornado.websocket import WebSocketHandler, websocket_connect

from handlers.config.sites import BackendSite
from tests.support import free_port, serve_app, start_proxy


class Seen:
    def __init__(self) -> None:
        self.origin = None
        self.cookie = None
        self.close_code = None
        self.close_reason = None
        self.pings: list[bytes] = []
        self.closed = asyncio.Event()


class Echo(WebSocketHandler):
    def initialize(self, seen: Seen) -> None:
        self.seen = seen

    def check_origin(self, origin: str) -> bool:
        # Like many backends: only its own origin may connect. (Tornado asks only when
        # the Origin does not match the Host.)
        return False

    def select_subprotocol(self, subprotocols):
        return "chat.v2" if "chat.v2" in subprotocols else None

    def open(self):
        self.seen.origin = self.request.headers.get("Origin")
        self.seen.cookie = self.request.headers.get("Cookie")
        self.seen.closed = asyncio.Event()

    def on_message(self, message):
        if message == "close-me":
            self.close(4001, "bye")
        else:
            self.write_message(message, binary=isinstance(message, bytes))

    def on_ping(self, data):
        self.seen.pings.append(data)

    def on_close(self):
        self.seen.close_code, self.seen.close_reason = self.close_code, self.close_reason
        self.seen.closed.set()


@pytest.fixture(scope="module")
def ws(loop_thread):
    seen = Seen()

    port = serve_app(loop_thread, Application([(r"/ws", Echo, {"seen": seen})]))
    sites = {
        "chat": BackendSite("chat", f"http://127.0.0.1:{port}", None, []),
        "down": BackendSite("down", f"http://127.0.0.1:{free_port()}", None, []),
    }
    proxy = start_proxy(loop_thread, sites)
    return {"proxy": proxy, "seen": seen, "backend_port": port}


def run(loop_thread, coro):
    return loop_thread.run(coro, timeout=20)


def connect(ws, path, headers=None, subprotocols=None):
    request = HTTPRequest(
        f"ws://127.0.0.1:{ws['proxy'].port}{path}",
        headers={"Origin": f"http://127.0.0.1:{ws['proxy'].port}", **(headers or {})},
    )
    return websocket_connect(request, subprotocols=subprotocols)


@pytest.mark.parametrize("how", ["prefix", "cookie"])
def test_echo_text_and_binary(loop_thread, ws, how):
    path, headers = (
        ("/.site.chat/ws", {}) if how == "prefix" else ("/ws", {"Cookie": ".site=chat; sid=7"})
    )

    async def go():
        conn = await connect(ws, path, headers)
        await conn.write_message("hello")
        text = await conn.read_message()
        await conn.write_message(b"\x00\x01\xff" * 1000, binary=True)
        binary = await conn.read_message()
        conn.close()
        return text, binary

    text, binary = run(loop_thread, go())
    assert text == "hello"
    assert binary == b"\x00\x01\xff" * 1000
    # The backend saw its own origin, and no .site cookie.
    assert ws["seen"].origin == f"http://127.0.0.1:{ws['backend_port']}"
    if how == "cookie":
        assert ws["seen"].cookie == "sid=7"


def test_subprotocol_is_the_backends_choice(loop_thread, ws):
    async def go():
        conn = await connect(ws, "/.site.chat/ws", subprotocols=["chat.v1", "chat.v2"])
        chosen = conn.selected_subprotocol
        conn.close()
        return chosen

    assert run(loop_thread, go()) == "chat.v2"


def test_backend_close_code_reaches_the_client(loop_thread, ws):
    async def go():
        conn = await connect(ws, "/.site.chat/ws")
        await conn.write_message("close-me")
        message = await conn.read_message()
        return message, conn.close_code, conn.close_reason

    assert run(loop_thread, go()) == (None, 4001, "bye")


def test_client_close_code_reaches_the_backend(loop_thread, ws):
    async def go():
        conn = await connect(ws, "/.site.chat/ws")
        await conn.write_message("x")
        await conn.read_message()
        conn.close(4002, "done here")
        await asyncio.wait_for(ws["seen"].closed.wait(), 5)
        return ws["seen"].close_code, ws["seen"].close_reason

    assert run(loop_thread, go()) == (4002, "done here")


def test_pings_are_relayed(loop_thread, ws):
    async def go():
        conn = await connect(ws, "/.site.chat/ws")
        conn.ping(b"are you there")
        await conn.write_message("sync")
        await conn.read_message()
        conn.close()

    run(loop_thread, go())
    assert b"are you there" in ws["seen"].pings


def test_unreachable_backend_is_502_before_the_handshake(loop_thread, ws):
    async def go():
        with pytest.raises(HTTPClientError) as info:
            await connect(ws, "/.site.down/ws")
        return info.value.code

    assert run(loop_thread, go()) == 502


def test_unknown_site_is_404(loop_thread, ws):
    async def go():
        with pytest.raises(HTTPClientError) as info:
            await connect(ws, "/.site.nope/ws")
        return info.value.code

    assert run(loop_thread, go()) == 404


def test_a_foreign_origin_is_not_passed_off_as_the_backends(loop_thread, ws):
    """Only the proxy's own origin becomes the backend's: a page elsewhere that opens a
    WebSocket through the proxy (cross-site WebSocket hijacking) is still seen as
    foreign by the backend, which refuses it."""

    async def go():
        with pytest.raises(HTTPClientError) as info:
            await connect(ws, "/.site.chat/ws", {"Origin": "http://evil.example"})
        return info.value.code

    # The same backend accepts the proxy's own origin (test_echo_text_and_binary).
    assert run(loop_thread, go()) == 403
