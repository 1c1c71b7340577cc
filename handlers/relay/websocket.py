"""WebSocket relay: the same sites, the same resolution, frames passed both ways.

The backend's handshake completes before the client's, so that the subprotocol the
backend chose is the one the client is told, and a backend that refuses the
connection gives the client a clear HTTP error instead of a socket that opens and dies.
"""

from __future__ import annotations

import asyncio
import logging
import time

from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.httputil import HTTPServerRequest
from tornado.routing import Matcher
from tornado.websocket import (
    WebSocketClientConnection,
    WebSocketClosedError,
    WebSocketHandler,
    websocket_connect,
)

from handlers.door.pages import PageHandler
from handlers.door.target import Answer, backend_headers, decide
from handlers.ops.record import WebSocketCounts

log = logging.getLogger(__name__)

# Handshake fields the backend handshake makes for itself.
_HANDSHAKE_FIELDS = frozenset(
    {
        "Sec-Websocket-Key",
        "Sec-Websocket-Version",
        "Sec-Websocket-Extensions",
        "Sec-Websocket-Protocol",
        "Sec-Websocket-Accept",
    }
)
# Frames up to this size pass (Tornado's default is 10 MiB).
MAX_MESSAGE_SIZE = 64 * 1024 * 1024


class WebSocketUpgrade(Matcher):
    """Routes requests that ask for a WebSocket to the relay, whatever their path."""

    def match(self, request: HTTPServerRequest) -> dict | None:
        return {} if request.headers.get("Upgrade", "").lower() == "websocket" else None


class WebSocketRelay(PageHandler, WebSocketHandler):
    """One WebSocket session: the client's side is this handler, the backend's a
    WebSocket client connection; frames pass both ways and are counted in the access
    record (handlers/ops/record.py)."""

    backend: WebSocketClientConnection | None = None
    _subprotocol: str | None = None
    opened_at = 0.0  # when the session opened, for its duration
    counts: WebSocketCounts | None = None  # the session's traffic, once it opened

    async def get(self, *args: str, **kwargs: str) -> None:
        target = decide(self.request, self.context)
        if isinstance(target, Answer):
            self.answer(target)
            return
        site, request = target.site, self.request
        self.record.site = site.name
        headers = backend_headers(request, self.context, target)
        for name in _HANDSHAKE_FIELDS:
            headers.pop(name, None)
        protocols = request.headers.get("Sec-WebSocket-Protocol", "").split(",")
        offered = [p.strip() for p in protocols if p.strip()]
        scheme = "wss" if site.scheme == "https" else "ws"
        upstream = HTTPRequest(
            f"{scheme}://{site.host_header}{target.path}",
            headers=headers,
            connect_timeout=site.connect_timeout,
            request_timeout=site.timeout,
            validate_cert=site.validate_cert,
            ca_certs=site.ca_certs,
        )
        try:
            self.backend = await websocket_connect(
                upstream, subprotocols=offered or None, max_message_size=MAX_MESSAGE_SIZE
            )
        except HTTPClientError as exc:
            status = exc.code if 400 <= exc.code < 599 else 502
            log.warning("%s: WebSocket to %s refused: %s", site.name, target.path, exc)
            detail = f"The site {site.name!r} refused the WebSocket ({exc.code})."
            self.send_error_page(status, "WebSocket refused", detail)
            return
        except Exception as exc:
            log.warning("%s: WebSocket to %s failed: %s", site.name, target.path, exc)
            detail = f"The proxy could not open a WebSocket to the site {site.name!r}."
            self.send_error_page(502, "Site unreachable", detail)
            return
        self._subprotocol = self.backend.selected_subprotocol
        await super().get(*args, **kwargs)
        if self.counts is None:  # open() never ran: the client's handshake failed
            self.backend.close()

    def get_compression_options(self) -> None:
        return None

    @property
    def max_message_size(self) -> int:
        return MAX_MESSAGE_SIZE

    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        return self._subprotocol if self._subprotocol in subprotocols else None

    def open(self, *args: str, **kwargs: str) -> None:
        self.opened_at = time.monotonic()
        self.counts = self.record.websocket = WebSocketCounts()
        self.state.websockets.add(self)
        if self.state.metrics.multiprocess:
            self.state.metrics.websockets.inc()  # else read from state.websockets
        # Frames from the backend are read by a task of their own (kept referenced).
        self._pump = asyncio.ensure_future(self._from_backend())

    def going_away(self) -> None:
        """The proxy is shutting down: both sides are told so (1001)."""
        self.close(1001, "proxy shutting down")

    async def _from_backend(self) -> None:
        backend = self.backend
        assert backend is not None
        while True:
            message = await backend.read_message()
            if message is None:
                # The backend closed (or failed): the client learns its code and reason.
                self.close(backend.close_code, backend.close_reason)
                return
            counts = self.counts
            assert counts is not None
            counts.frames_out += 1
            counts.bytes_out += len(message)
            try:
                # Awaited: a slow client slows the reading from the backend.
                await self.write_message(message, binary=isinstance(message, bytes))
            except WebSocketClosedError:
                backend.close()
                return

    async def on_message(self, message: str | bytes) -> None:
        counts = self.counts
        if counts is not None:
            counts.frames_in += 1
            counts.bytes_in += len(message)
        if self.backend is not None:
            try:
                await self.backend.write_message(message, binary=isinstance(message, bytes))
            except WebSocketClosedError:
                self.close(1011, "backend connection lost")

    def on_ping(self, data: bytes) -> None:
        if self.backend is not None:
            self.backend.ping(data)

    def on_close(self) -> None:
        if self.backend is not None:
            self.backend.close(self.close_code, self.close_reason)
        if self in self.state.websockets:
            self.state.websockets.discard(self)
            if self.state.metrics.multiprocess:
                self.state.metrics.websockets.dec()
            # The session's line: its record, with the time it ended and its length.
            record = self.access_record(self.state.access_log.enabled)
            record.time, record.seconds = time.time(), time.monotonic() - self.opened_at
            if self.counts is not None:
                self.counts.code = self.close_code
            self.state.access_log.websocket(record)
