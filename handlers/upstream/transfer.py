"""One upstream transfer's state, and libcurl's callbacks for it.

A transfer knows nothing of the client that drives it: it is given four hooks at birth
(``on_news``, ``kick``, ``on_abort``, ``on_done``) and talks through them only. Its life,
in the order of the slot groups below:

1. **made**: the exchange (handlers/upstream/exchange.py), what to call with the head and
   the chunks, the hooks;
2. **running**: ``attach`` gives it a libcurl handle (``curl``); libcurl calls
   ``header_line``, ``write`` and ``read`` from inside its own processing, where no
   application code may run, so they only record (the head, body chunks, room in the
   upload queue) and raise ``on_news`` once;
3. **delivering**: the client calls ``deliver`` after libcurl has returned, which hands
   the news to the application in order: the header block, then the chunks. A consumer
   that returns a pending Future pauses the download; an upload producer that fills the
   queue is given a Future that resolves once libcurl has taken half of it;
4. **done**: ``finish`` drops what is left and calls ``on_done`` with the error, if any
   (the head and a buffered body stay, for a response to be made of them).
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from io import BytesIO
from typing import Any

import pycurl
from tornado.concurrent import Future
from tornado.gen import convert_yielded

from handlers.upstream.exchange import ChunkCallback, Exchange, Fields, ResponseCallback

# An upload is taken from its producer while less than this waits for the backend.
UPLOAD_HIGH_WATER = 1 << 20
# A response is paused once this much has been received and not yet delivered.
DOWNLOAD_QUEUE_MAX = 1 << 20


def _cannot_seek(offset: int, origin: int) -> int:
    return pycurl.SEEKFUNC_CANTSEEK  # a streamed body cannot be sent again


class Transfer:
    """One request's state inside the client (see the module's docstring)."""

    # 1. made: what the transfer is for, fixed from the start
    spec: Exchange
    on_response: ResponseCallback | None  # the final header block, once
    on_chunk: ChunkCallback | None  # may return a Future: the pause a consumer asks for
    max_body_size: int  # of a response that is not streamed
    # ... and the hooks into whoever drives it
    on_news: Callable[[Transfer], None]  # has something to deliver (called inside libcurl)
    kick: Callable[[], None]  # libcurl should act soon (a pause was lifted)
    on_abort: Callable[[Transfer, str], None]  # end it now, with this reason
    on_done: Callable[[BaseException | None], None] | None  # the end (error or None), once
    # 2. running: libcurl's handle, None before and after
    curl: pycurl.Curl | None
    # the response head as libcurl reports it
    code: int
    reason: str
    fields: Fields
    head_lines: list[bytes]  # of the header block still coming in
    head_complete: bool
    # the response body: whole in ``buffer``, or in ``chunks`` for ``on_chunk``
    buffer: BytesIO | None
    chunks: collections.deque[bytes]
    queued_bytes: int
    recv_paused: bool
    # the request body on its way to libcurl (None: it has none), and flow control
    body: collections.deque[memoryview] | None
    body_bytes: int
    body_ended: bool
    send_paused: bool
    room: Future[None] | None  # what a producer that filled the queue waits on
    room_due: bool
    # 3. delivering: news waiting, the head handed over, the consumer's pause
    queued: bool
    delivered_head: bool
    held: bool
    __slots__ = tuple(__annotations__)  # exactly the fields above, nothing else

    def __init__(
        self,
        spec: Exchange,
        *,
        max_body_size: int,
        on_news: Callable[[Transfer], None],
        kick: Callable[[], None],
        on_abort: Callable[[Transfer, str], None],
    ) -> None:
        self.spec = spec
        self.on_response = spec.on_response
        self.on_chunk = spec.on_chunk
        self.max_body_size = max_body_size
        self.on_news, self.kick, self.on_abort = on_news, kick, on_abort
        self.on_done = None  # the client's to set
        self.curl = None
        self.code, self.reason, self.fields, self.head_complete = 0, "", [], False
        self.head_lines = []
        self.buffer = None if self.on_chunk else BytesIO()
        self.chunks = collections.deque()
        self.queued_bytes, self.recv_paused = 0, False
        self.body, self.body_bytes, self.body_ended = None, 0, False
        self.send_paused, self.room, self.room_due = False, None, False
        self.queued = self.delivered_head = self.held = False

    def take_body(self, has_body: bool) -> None:
        """Make ready the request body: a producer's (which starts now), or the whole
        one, or an empty one when the method carries a body (``has_body``)."""
        spec = self.spec
        if spec.body_producer is not None:
            self.body = collections.deque()
            write: Any = self.write_body  # returns a Future, as Tornado's own does
            produced = convert_yielded(spec.body_producer(write))
            produced.add_done_callback(self.body_produced)
        elif has_body:
            self.body = collections.deque([memoryview(spec.body or b"")])
            self.body_bytes = len(spec.body or b"")
            self.body_ended = True

    @property
    def body_size(self) -> int | None:
        """None: no body; -1: length not known yet (streamed); else its length."""
        if self.body is None:
            return None
        return self.body_bytes if self.body_ended else -1

    def attach(self, curl: pycurl.Curl) -> None:
        """Run on ``curl``, whose options are set: libcurl calls back into this transfer."""
        curl.setopt(pycurl.HEADERFUNCTION, self.header_line)
        curl.setopt(pycurl.WRITEFUNCTION, self.write)
        if self.body is not None:
            curl.setopt(pycurl.READFUNCTION, self.read)
            curl.setopt(pycurl.SEEKFUNCTION, _cannot_seek)
        self.curl = curl

    def abort(self, why: str = "aborted") -> None:
        self.on_abort(self, why)

    # --- libcurl's callbacks: record, never raise ------------------------------------

    def header_line(self, raw: bytes) -> None:
        if raw != b"\r\n" and raw != b"\n":
            self.head_lines.append(raw)  # read once the block is whole
            return
        lines, self.head_lines = self.head_lines, []
        fields = self.fields
        if lines and lines[0].startswith(b"HTTP/"):
            parts = lines[0].split(None, 2)
            self.code = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
            self.reason = parts[2].strip().decode("latin-1") if len(parts) > 2 else ""
            self.fields = fields = []
            del lines[0]
        # (Without a status line: trailers, added to the fields.)
        for line in lines:
            if line[:1] in (b" ", b"\t"):
                if fields:  # obsolete line folding (RFC 9112 section 5.2): unfold
                    name, value = fields[-1]
                    fields[-1] = (name, f"{value} {line.strip().decode('latin-1')}")
                continue
            name, sep, value = line.decode("latin-1").partition(":")
            if sep:
                fields.append((name.strip(), value.strip()))
        if self.code >= 200:  # not an interim (1xx) block
            self.head_complete = True
            if not self.queued:
                self.queued = True
                self.on_news(self)

    def write(self, chunk: bytes) -> int | None:
        if self.held or self.queued_bytes >= DOWNLOAD_QUEUE_MAX:
            # Not taken: libcurl keeps it and offers it again once resumed.
            self.recv_paused = True
            return pycurl.WRITEFUNC_PAUSE
        buffer = self.buffer
        if buffer is not None:
            if buffer.tell() + len(chunk) > self.max_body_size:
                return 0  # fails the transfer (E_WRITE_ERROR)
            buffer.write(chunk)
            return None
        self.chunks.append(chunk)
        self.queued_bytes += len(chunk)
        if not self.queued:
            self.queued = True
            self.on_news(self)
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
            if not self.queued:
                self.queued = True
                self.on_news(self)
        return piece.tobytes()

    # --- on the IOLoop, outside libcurl ---------------------------------------------

    def deliver(self) -> None:
        """Hand over what libcurl recorded: the header block, then the body chunks."""
        self.queued = False
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
                wait.add_done_callback(self._unhold)
        if self.room_due:
            self.room_due = False
            room, self.room = self.room, None
            if room is not None and not room.done():
                room.set_result(None)
        if self.recv_paused and not self.held and self.queued_bytes < DOWNLOAD_QUEUE_MAX:
            self.resume()

    def _unhold(self, _: Any) -> None:
        self.held = False
        if self.recv_paused:
            self.resume()

    def resume(self) -> None:
        """Lift the pauses no longer wanted."""
        curl = self.curl
        if curl is None:
            return
        recv = self.recv_paused and (self.held or self.queued_bytes >= DOWNLOAD_QUEUE_MAX)
        send = self.send_paused and not (self.body or self.body_ended)
        self.recv_paused, self.send_paused = recv, send
        state = (pycurl.PAUSE_RECV if recv else 0) | (pycurl.PAUSE_SEND if send else 0)
        try:
            curl.pause(state)  # may deliver held data into write() right away
        except pycurl.error:
            pass  # the transfer failed meanwhile; the multi handle reports it
        self.kick()

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
                self.resume()
        if self.body_bytes >= UPLOAD_HIGH_WATER:
            if self.room is None:
                self.room = Future()
            return self.room
        future.set_result(None)
        return future

    def body_produced(self, produced: Future[None]) -> None:
        if produced.exception() is not None:
            self.abort(f"request body failed: {produced.exception()}")
            return
        self.body_ended = True
        if self.send_paused:
            self.resume()

    def finish(self, error: BaseException | None) -> None:
        """Done (the handle already released): drop what is left, then ``on_done``."""
        self.curl = None
        self.chunks.clear()
        self.body = None
        # A producer waiting for room must not wait for ever.
        if self.room is not None and not self.room.done():
            self.room.set_result(None)
        self.room = None
        on_done, self.on_done = self.on_done, None
        if on_done is not None:
            on_done(error)
