"""One upstream transfer's bodies, both ways, with backpressure.

Tornado's curl client reads a response as fast as the backend sends it and queues what
the application has not taken yet; it takes a request body only as one bytes object.
A relay needs neither: ``Transfer`` becomes the transfer's libcurl read and write
functions and pauses libcurl, in either direction, when the other side is not keeping
up. A slow client thus slows the backend down instead of filling the proxy's memory,
and an upload streams through as it arrives.

libcurl calls these functions from inside its own processing, where no application
code may run: they only move bytes between libcurl and queues, and leave everything
else to callbacks on the IOLoop.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from typing import Any

import pycurl
from tornado.concurrent import Future
from tornado.ioloop import IOLoop

# An upload is read from the client while less than this is waiting for the backend.
UPLOAD_HIGH_WATER = 1 << 20


class Transfer:
    """The body side of one upstream request.

    ``on_chunk`` receives the response body, chunk by chunk, on the IOLoop; the
    consumer calls ``hold()`` when it has enough in hand and ``release()`` when it wants
    more. ``feed()``/``end()`` supply the request body when ``upload`` is set.
    """

    def __init__(
        self,
        client: Any,
        on_chunk: Callable[[bytes], None],
        upload: bool = False,
        upload_length: int | None = None,
    ) -> None:
        self.client = client
        self.io_loop: IOLoop = client.io_loop
        self.on_chunk = on_chunk
        self.curl: pycurl.Curl | None = None
        self._info: object = None
        self._chunks: collections.deque[bytes] = collections.deque()
        self._delivering = False
        self._held = False
        self._recv_paused = False
        self.aborted = False
        # Upload side.
        self.upload = upload
        self.upload_length = upload_length
        self._body: collections.deque[memoryview] = collections.deque()
        self._body_size = 0
        self._body_ended = False
        self._send_paused = False
        self._room: Future[None] | None = None

    # --- wiring (from prepare_curl_callback, on the IOLoop, before the transfer) ------

    def attach(self, curl: pycurl.Curl, method: str) -> None:
        self.curl = curl
        # Tornado replaces curl.info when it reuses the handle for another request:
        # comparing it tells whether the handle is still ours.
        self._info = getattr(curl, "info", None)
        curl.setopt(pycurl.WRITEFUNCTION, self._write)
        # Called at least once a second, even on an idle transfer: the way to end a
        # transfer whose client has gone while the backend is silent.
        curl.setopt(pycurl.NOPROGRESS, 0)
        curl.setopt(pycurl.XFERINFOFUNCTION, self._progress)
        if self.upload:
            curl.setopt(pycurl.READFUNCTION, self._read)
            curl.setopt(pycurl.SEEKFUNCTION, lambda offset, origin: pycurl.SEEKFUNC_CANTSEEK)
            size = -1 if self.upload_length is None else self.upload_length
            if method == "POST":
                curl.setopt(pycurl.POSTFIELDSIZE_LARGE, size)
            else:
                curl.setopt(pycurl.UPLOAD, 1)
                curl.setopt(pycurl.INFILESIZE_LARGE, size)

    def _ours(self) -> bool:
        return self.curl is not None and getattr(self.curl, "info", None) is self._info

    def _unpause(self) -> None:
        """Set libcurl's pause state to what is still wanted and let it act now."""
        if not self._ours():
            return
        assert self.curl is not None
        state = (pycurl.PAUSE_RECV if self._recv_paused else 0) | (
            pycurl.PAUSE_SEND if self._send_paused else 0
        )
        try:
            self.curl.pause(state)
        except pycurl.error:
            return  # the transfer failed meanwhile; its error reaches the fetch
        # A resumed transfer needs a socket action to make progress.
        self.client._set_timeout(0)

    # --- response body ------------------------------------------------------------

    def _write(self, chunk: bytes) -> int | None:
        """libcurl's WRITEFUNCTION."""
        if self.aborted:
            return 0  # fails the transfer: libcurl closes the backend connection
        if self._held:
            # Not taken: libcurl keeps this chunk and offers it again on resume.
            self._recv_paused = True
            return pycurl.WRITEFUNC_PAUSE
        self._chunks.append(chunk)
        if not self._delivering:
            self._delivering = True
            self.io_loop.add_callback(self.deliver)
        return None

    def deliver(self) -> None:
        """Hand what libcurl has written to ``on_chunk`` (scheduled; callable early)."""
        self._delivering = False
        chunks = self._chunks
        while chunks and not self.aborted:
            self.on_chunk(chunks.popleft())

    def hold(self) -> None:
        self._held = True

    def release(self) -> None:
        self._held = False
        if self._recv_paused:
            self._recv_paused = False
            self._unpause()

    def _progress(self, *_: int) -> int:
        return 1 if self.aborted else 0

    def abort(self) -> None:
        """End the transfer (the client has gone): libcurl stops at its next callback."""
        self.aborted = True
        self._chunks.clear()
        self._body.clear()
        self._make_room()
        if self._recv_paused or self._send_paused:
            self._recv_paused = self._send_paused = False
            self._unpause()

    def detach(self) -> None:
        """The transfer is over: never touch the (reusable) handle again."""
        self.curl = None

    # --- request body -------------------------------------------------------------

    def feed(self, chunk: bytes) -> Future[None] | None:
        """Queue a piece of the request body. Returns a Future when the queue is full:
        the caller should read no more from the client until it resolves."""
        if self.aborted:
            return None
        self._body.append(memoryview(chunk))
        self._body_size += len(chunk)
        if self._send_paused:
            self._send_paused = False
            self._unpause()
        if self._body_size >= UPLOAD_HIGH_WATER:
            self._room = Future()
            return self._room
        return None

    def end(self) -> None:
        self._body_ended = True
        if self._send_paused:
            self._send_paused = False
            self._unpause()

    def _read(self, size: int) -> bytes | int:
        """libcurl's READFUNCTION."""
        if self.aborted:
            return pycurl.READFUNC_ABORT
        body = self._body
        if not body:
            if self._body_ended:
                return b""
            self._send_paused = True
            return pycurl.READFUNC_PAUSE
        piece = body[0]
        if len(piece) > size:
            body[0] = piece[size:]
            piece = piece[:size]
        else:
            body.popleft()
        self._body_size -= len(piece)
        if self._room is not None and self._body_size < UPLOAD_HIGH_WATER // 2:
            # Not resolved here, inside libcurl: on the IOLoop, like everything else.
            self.io_loop.add_callback(self._make_room)
        return piece.tobytes()

    def _make_room(self) -> None:
        room, self._room = self._room, None
        if room is not None and not room.done():
            room.set_result(None)
