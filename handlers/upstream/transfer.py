"""One upstream transfer's state inside RelayClient (handlers/upstream/client.py).

libcurl calls ``header_line``, ``write`` and ``read`` from inside its own processing,
where no application code may run: they only record what happened (the header block,
body chunks, room in the upload queue) and mark the transfer as having news. The client
calls ``deliver`` once libcurl has returned, which hands the news to the application's
callbacks, in order: the header block, then the chunks.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from io import BytesIO
from typing import TYPE_CHECKING, Any

import pycurl
from tornado.concurrent import Future
from tornado.httpclient import HTTPRequest, HTTPResponse
from tornado.httputil import HTTPHeaders

if TYPE_CHECKING:
    from handlers.upstream.client import RelayClient

Fields = list[tuple[str, str]]
ResponseCallback = Callable[[int, str, Fields], None]

# An upload is taken from its producer while less than this waits for the backend.
UPLOAD_HIGH_WATER = 1 << 20
# A response is paused once this much has been received and not yet delivered.
DOWNLOAD_QUEUE_MAX = 1 << 20


class Transfer:
    """One request's state inside the client. libcurl calls ``header_line``, ``write``
    and ``read`` from inside its own processing: they only record and never raise."""

    __slots__ = (
        "body",
        "body_bytes",
        "body_ended",
        "buffer",
        "callback",
        "chunks",
        "client",
        "code",
        "curl",
        "delivered_head",
        "fields",
        "head_complete",
        "held",
        "lines",
        "on_chunk",
        "on_response",
        "queued",
        "queued_bytes",
        "reason",
        "recv_paused",
        "request",
        "room",
        "room_due",
        "send_paused",
        "start",
    )

    def __init__(self, client: RelayClient, request: HTTPRequest, callback: Any) -> None:
        self.client = client
        self.request = request
        self.callback = callback
        self.curl: pycurl.Curl | None = None
        self.start = client.io_loop.time()
        self.code = 0
        self.reason = ""
        self.fields: Fields = []
        self.lines: list[bytes] | None = [] if request.header_callback else None
        self.head_complete = False
        self.delivered_head = False
        self.on_response: ResponseCallback | None = getattr(request, "on_response", None)
        # May return a Future: the pause a consumer asks for (see the module docstring).
        self.on_chunk: Callable[[bytes], Future[None] | None] | None
        self.on_chunk = request.streaming_callback  # type: ignore[assignment]
        self.buffer: BytesIO | None = None if self.on_chunk else BytesIO()
        self.chunks: collections.deque[bytes] = collections.deque()
        self.queued_bytes = 0
        self.queued = False  # in the client's list of transfers with news to deliver
        self.held = False  # the consumer asked for a pause
        self.recv_paused = False
        # Upload: pieces waiting for libcurl, and the producer's flow control.
        self.body: collections.deque[memoryview] | None = None
        self.body_bytes = 0
        self.body_ended = False
        self.send_paused = False
        self.room: Future[None] | None = None
        self.room_due = False

    # --- libcurl's callbacks -------------------------------------------------------

    def header_line(self, raw: bytes) -> None:
        if self.lines is not None:
            self.lines.append(raw)
            self._news()
        if raw.startswith(b"HTTP/"):
            parts = raw.split(None, 2)
            self.code = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
            self.reason = parts[2].strip().decode("latin-1") if len(parts) > 2 else ""
            self.fields = []
        elif raw == b"\r\n" or raw == b"\n":
            if self.code >= 200:  # not an interim (1xx) block
                self.head_complete = True
                self._news()
        elif raw[:1] in (b" ", b"\t"):
            if self.fields:  # obsolete line folding (RFC 9112 section 5.2): unfold
                name, value = self.fields[-1]
                self.fields[-1] = (name, f"{value} {raw.strip().decode('latin-1')}")
        else:
            name, sep, value = raw.decode("latin-1").partition(":")
            if sep:
                self.fields.append((name.strip(), value.strip()))

    def write(self, chunk: bytes) -> int | None:
        if self.held or self.queued_bytes >= DOWNLOAD_QUEUE_MAX:
            # Not taken: libcurl keeps it and offers it again once resumed.
            self.recv_paused = True
            return pycurl.WRITEFUNC_PAUSE
        buffer = self.buffer
        if buffer is not None:
            if buffer.tell() + len(chunk) > self.client.max_body_size:
                return 0  # fails the transfer (E_WRITE_ERROR)
            buffer.write(chunk)
            return None
        self.chunks.append(chunk)
        self.queued_bytes += len(chunk)
        self._news()
        return None

    def read(self, size: int) -> bytes | int:
        body = self.body
        if not body:
            if self.body_ended:
                return b""
            self.send_paused = True
            return pycurl.READFUNC_PAUSE
        piece = body[0]
        if len(piece) > size:
            body[0] = piece[size:]
            piece = piece[:size]
        else:
            body.popleft()
        self.body_bytes -= len(piece)
        if self.room is not None and self.body_bytes < UPLOAD_HIGH_WATER // 2:
            self.room_due = True  # resolved after libcurl returns, like everything else
            self._news()
        return piece.tobytes()

    def _news(self) -> None:
        if not self.queued:
            self.queued = True
            self.client.ready.append(self)

    # --- on the IOLoop, outside libcurl ---------------------------------------------

    def deliver(self) -> None:
        """Hand over what libcurl recorded: the header block, then the body chunks."""
        self.queued = False
        if self.lines:
            lines, self.lines = self.lines, []
            header_callback = self.request.header_callback
            assert header_callback is not None
            for line in lines:
                header_callback(line.decode("latin-1"))
        if self.head_complete and not self.delivered_head:
            self.delivered_head = True
            if self.on_response is not None:
                self.on_response(self.code, self.reason, self.fields)
        chunks = self.chunks
        on_chunk = self.on_chunk
        assert on_chunk is not None or not chunks
        while chunks and self.curl is not None:
            chunk = chunks.popleft()
            self.queued_bytes -= len(chunk)
            wait = on_chunk(chunk)  # type: ignore[misc]
            if wait is not None and not wait.done():
                self.held = True
                wait.add_done_callback(self._resume)
        if self.room_due:
            self.room_due = False
            room, self.room = self.room, None
            if room is not None and not room.done():
                room.set_result(None)
        if self.recv_paused and not self.held and self.queued_bytes < DOWNLOAD_QUEUE_MAX:
            self.client.resume(self)

    def _resume(self, _: Any) -> None:
        self.held = False
        if self.recv_paused:
            self.client.resume(self)

    def write_body(self, chunk: bytes) -> Future[None]:
        """The write function given to ``body_producer``."""
        future: Future[None] = Future()
        if self.curl is None and self.body is None:
            future.set_result(None)  # over (failed or aborted): dropped
            return future
        assert self.body is not None
        if chunk:
            self.body.append(memoryview(chunk))
            self.body_bytes += len(chunk)
            if self.send_paused:
                self.client.resume(self)
        if self.body_bytes >= UPLOAD_HIGH_WATER:
            if self.room is None:
                self.room = Future()
            return self.room
        future.set_result(None)
        return future

    def body_produced(self, produced: Future[None]) -> None:
        if produced.exception() is not None:
            self.client.abort(self, f"request body failed: {produced.exception()}")
            return
        self.body_ended = True
        if self.send_paused:
            self.client.resume(self)

    def response(self, error: BaseException | None) -> HTTPResponse:
        headers = None
        if self.on_response is None:
            headers = HTTPHeaders()
            for name, value in self.fields:
                headers.add(name, value)
        return HTTPResponse(
            self.request,
            self.code if error is None else 599,
            headers=headers,
            buffer=self.buffer,
            error=error,
            request_time=self.client.io_loop.time() - self.start,
            reason=self.reason or None,
            start_time=self.start,
        )
