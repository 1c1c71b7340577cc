"""The one upstream HTTP client: an ``AsyncHTTPClient`` that drives libcurl itself.

Tornado's own curl client served us for a while, but relaying needs three things it does
not offer: a response body taken only as fast as the client downstream takes it, a
request body streamed in as it arrives, and the ability to end one transfer early. We
had reached into its private methods for all three. ``RelayClient`` instead implements
``fetch_impl``, the extension point Tornado documents for subclasses, over
``pycurl.CurlMulti``:

- libcurl's callbacks only record what happened (header lines, body chunks, room in the
  upload queue); the application's callbacks run after libcurl has returned, in order,
  so the headers, every chunk and then the completion always arrive in that order;
- ``streaming_callback`` may return a Future: the transfer is paused until it resolves
  (backpressure), as ``body_producer``'s write function returns one for uploads;
- an ``UpstreamRequest`` carries a ``TransferHandle`` that ends its transfer at once,
  the finished response headers in one call (``on_response``), the exact request target
  and an idle timeout;
- easy handles are reused, their options reset; the connection cache lives in the multi
  handle, so keep-alive connections survive that reset.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable
from io import BytesIO
from typing import Any

import pycurl
from tornado.concurrent import Future
from tornado.gen import convert_yielded
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest, HTTPResponse
from tornado.httputil import HTTPHeaders
from tornado.ioloop import IOLoop

log = logging.getLogger(__name__)

Fields = list[tuple[str, str]]
ResponseCallback = Callable[[int, str, Fields], None]

# An upload is taken from its producer while less than this waits for the backend.
UPLOAD_HIGH_WATER = 1 << 20
# A response is paused once this much has been received and not yet delivered.
DOWNLOAD_QUEUE_MAX = 1 << 20
# libcurl's receive buffer: larger chunks mean fewer Python calls per MiB relayed.
CURL_BUFFER_SIZE = 256 * 1024
_SOCKET_EVENTS = {
    pycurl.POLL_NONE: IOLoop.ERROR,
    pycurl.POLL_IN: IOLoop.READ,
    pycurl.POLL_OUT: IOLoop.WRITE,
    pycurl.POLL_INOUT: IOLoop.READ | IOLoop.WRITE,
}
_UNSUPPORTED = (
    "proxy_host",
    "auth_username",
    "client_cert",
    "client_key",
    "ssl_options",
    "network_interface",
)
# The request carried a body, so it must say so even when it is empty.
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class UpstreamError(HTTPClientError):
    """A transfer that ended without a complete response; ``errno`` is libcurl's."""

    def __init__(self, errno: int, message: str) -> None:
        super().__init__(599, message)
        self.errno = errno


class TransferHandle:
    """The caller's hold on a transfer started from an ``UpstreamRequest``."""

    __slots__ = ("_transfer", "aborted")

    def __init__(self) -> None:
        self._transfer: _Transfer | None = None
        self.aborted = False

    def abort(self) -> None:
        """End the transfer now (the backend sees its connection closed); its fetch
        fails with ``UpstreamError``. Safe to call at any time, more than once."""
        self.aborted = True
        if self._transfer is not None:
            self._transfer.client.abort(self._transfer)


class UpstreamRequest(HTTPRequest):
    """An ``HTTPRequest`` with what a relay needs besides:

    ``request_target``: sent byte for byte as the request line's target (libcurl would
    otherwise normalize ``/../`` and percent-escapes); ``idle_timeout``: seconds the
    backend may send nothing before the transfer fails (a total ``request_timeout``
    would cut long downloads); ``on_response(code, reason, fields)``: the final header
    block, once, as pairs in the order received (the response object's headers are then
    left empty). ``handle`` ends the transfer early."""

    def __init__(
        self,
        url: str,
        *,
        request_target: str | None = None,
        idle_timeout: float | None = None,
        on_response: ResponseCallback | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(url, **kwargs)
        self.request_target = request_target
        self.idle_timeout = idle_timeout
        self.on_response = on_response
        self.handle = TransferHandle()


class _Transfer:
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


class RelayClient(AsyncHTTPClient):
    """``AsyncHTTPClient`` over ``pycurl.CurlMulti``; see the module's docstring.

    It supports the ``HTTPRequest`` fields a proxy uses: method, headers, body,
    ``body_producer``, ``streaming_callback``, ``header_callback``, timeouts, redirects,
    ``decompress_response``, ``validate_cert``, ``ca_certs``, ``user_agent`` and
    ``prepare_curl_callback``. The others (proxies, client certificates, auth) fail the
    fetch with ValueError. It sends exactly the headers it is given: nothing of libcurl's
    own (``Accept``, ``User-Agent``, ``Expect``) is added."""

    def initialize(
        self,
        defaults: dict[str, Any] | None = None,
        max_clients: int = 10,
        ca_file: str | None = None,
        max_body_size: int = 100 << 20,
    ) -> None:
        super().initialize(defaults=defaults)
        self.max_clients = max_clients
        self.ca_file = ca_file  # for https when the request names no ca_certs
        self.max_body_size = max_body_size  # of a response that is not streamed
        self.ready: list[_Transfer] = []  # transfers with something to deliver
        self._multi = pycurl.CurlMulti()
        self._multi.setopt(pycurl.M_TIMERFUNCTION, self._set_timer)
        self._multi.setopt(pycurl.M_SOCKETFUNCTION, self._watch_socket)
        self._idle: list[pycurl.Curl] = []
        self._running: dict[pycurl.Curl, _Transfer] = {}
        self._waiting: collections.deque[_Transfer] = collections.deque()
        self._fds: set[int] = set()
        self._timer: object | None = None
        self._timer_due = 0.0
        self._kicked = False

    def close(self) -> None:
        for transfer in list(self._running.values()) + list(self._waiting):
            self.abort(transfer, "the client was closed")
        for fd in self._fds:
            self.io_loop.remove_handler(fd)
        self._fds.clear()
        if self._timer is not None:
            self.io_loop.remove_timeout(self._timer)
            self._timer = None
        for curl in self._idle:
            curl.close()
        self._idle.clear()
        self._multi.close()
        super().close()

    @property
    def active(self) -> int:
        """Transfers running or waiting for a free handle."""
        return len(self._running) + len(self._waiting)

    def fetch_impl(self, request: HTTPRequest, callback: Callable[[HTTPResponse], None]) -> None:
        transfer = _Transfer(self, request, callback)
        handle = getattr(request, "handle", None)
        if isinstance(handle, TransferHandle):
            handle._transfer = transfer
            if handle.aborted:
                self._complete(transfer, UpstreamError(pycurl.E_ABORTED_BY_CALLBACK, "aborted"))
                return
        if request.body_producer is not None:
            transfer.body = collections.deque()
            write: Any = transfer.write_body  # returns a Future, as Tornado's own does
            produced = convert_yielded(request.body_producer(write))
            produced.add_done_callback(transfer.body_produced)
        elif request.body is not None or request.method in _BODY_METHODS:
            transfer.body = collections.deque([memoryview(request.body or b"")])
            transfer.body_bytes = len(request.body or b"")
            transfer.body_ended = True
        if self._waiting or len(self._running) >= self.max_clients:
            self._waiting.append(transfer)
        else:
            self._start(transfer)

    # --- starting and ending transfers -----------------------------------------------

    def _start(self, transfer: _Transfer) -> None:
        curl = self._idle.pop() if self._idle else pycurl.Curl()
        try:
            self._setup(curl, transfer)
        except Exception as exc:
            curl.reset()
            self._idle.append(curl)
            self._complete(transfer, exc)
            return
        transfer.curl = curl
        self._running[curl] = transfer
        self._multi.add_handle(curl)

    def _setup(self, curl: pycurl.Curl, transfer: _Transfer) -> None:
        request = transfer.request
        if transfer.body is not None and request.method in ("GET", "HEAD"):
            raise ValueError(f"a {request.method} request cannot carry a body here")
        for name in _UNSUPPORTED:
            if getattr(request, name, None):
                raise ValueError(f"RelayClient does not support {name}")
        setopt = curl.setopt
        setopt(pycurl.URL, request.url)
        setopt(pycurl.NOSIGNAL, 1)
        setopt(pycurl.PROTOCOLS, pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS)
        setopt(pycurl.BUFFERSIZE, CURL_BUFFER_SIZE)
        setopt(pycurl.HEADERFUNCTION, transfer.header_line)
        setopt(pycurl.WRITEFUNCTION, transfer.write)
        target = getattr(request, "request_target", None)
        if target is not None:
            # As given: no squashing of "/../", no upper-casing of "%2e".
            setopt(pycurl.PATH_AS_IS, 1)
            setopt(pycurl.REQUEST_TARGET, target)
        headers = request.headers
        length = headers.pop("Content-Length", None) if transfer.body is not None else None
        lines = [f"{name}: {value}" if value else f"{name};" for name, value in headers.get_all()]
        # Fields libcurl (or pycurl) would make up when absent: an empty value says no.
        for name in ("Accept", "User-Agent"):
            if name not in headers and not (name == "User-Agent" and request.user_agent):
                lines.append(f"{name}:")
        lines.append("Expect:")
        if any("\r" in line or "\n" in line for line in lines):
            raise ValueError("a request header contains CR or LF")
        setopt(pycurl.HTTPHEADER, [line.encode("latin-1") for line in lines])
        if request.follow_redirects:
            setopt(pycurl.FOLLOWLOCATION, 1)
            setopt(pycurl.MAXREDIRS, request.max_redirects or 5)
            setopt(pycurl.REDIR_PROTOCOLS, pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS)
        if request.connect_timeout:
            setopt(pycurl.CONNECTTIMEOUT_MS, int(1000 * request.connect_timeout))
        if request.request_timeout:
            setopt(pycurl.TIMEOUT_MS, int(1000 * request.request_timeout))
        idle = getattr(request, "idle_timeout", None)
        if idle:
            # Under 1 byte/s for that long (time spent paused is not counted).
            setopt(pycurl.LOW_SPEED_LIMIT, 1)
            setopt(pycurl.LOW_SPEED_TIME, max(1, round(idle)))
        if request.decompress_response:
            setopt(pycurl.ACCEPT_ENCODING, "gzip,deflate")
        if request.user_agent:
            setopt(pycurl.USERAGENT, request.user_agent)
        if request.url.startswith("https:"):
            if request.validate_cert is False:
                setopt(pycurl.SSL_VERIFYPEER, 0)
                setopt(pycurl.SSL_VERIFYHOST, 0)
            cafile = request.ca_certs or self.ca_file
            if cafile:
                setopt(pycurl.CAINFO, cafile)
        self._set_method(curl, request.method, transfer, length)
        if request.prepare_curl_callback is not None:
            request.prepare_curl_callback(curl)

    @staticmethod
    def _set_method(curl: pycurl.Curl, method: str, transfer: _Transfer, length: Any) -> None:
        if method == "HEAD":
            curl.setopt(pycurl.NOBODY, 1)
        elif method != "GET" and method != "POST" and method != "PUT":
            curl.setopt(pycurl.CUSTOMREQUEST, method)
        if transfer.body is None:
            return
        # A body: libcurl pulls it through read(); its length, when known, frames it,
        # else it goes chunked.
        if transfer.body_ended:
            size = transfer.body_bytes
        else:
            size = int(length) if length is not None and str(length).isdigit() else -1
        curl.setopt(pycurl.READFUNCTION, transfer.read)
        curl.setopt(pycurl.SEEKFUNCTION, lambda offset, origin: pycurl.SEEKFUNC_CANTSEEK)
        if method == "POST":
            curl.setopt(pycurl.POST, 1)
            curl.setopt(pycurl.POSTFIELDSIZE_LARGE, size)
        else:
            curl.setopt(pycurl.UPLOAD, 1)
            curl.setopt(pycurl.INFILESIZE_LARGE, size)

    def abort(self, transfer: _Transfer, why: str = "aborted") -> None:
        """End ``transfer`` now, whether running or waiting for a handle."""
        error = UpstreamError(pycurl.E_ABORTED_BY_CALLBACK, why)
        curl = transfer.curl
        if curl is not None and self._running.get(curl) is transfer:
            self._release(curl)
            self._complete(transfer, error)
            self._start_waiting()
        elif transfer in self._waiting:
            self._waiting.remove(transfer)
            self._complete(transfer, error)

    def _release(self, curl: pycurl.Curl) -> _Transfer:
        transfer = self._running.pop(curl)
        self._multi.remove_handle(curl)
        transfer.curl = None
        curl.reset()
        if len(self._idle) < self.max_clients:
            self._idle.append(curl)
        else:
            curl.close()
        return transfer

    def _complete(self, transfer: _Transfer, error: BaseException | None) -> None:
        transfer.curl = None
        transfer.chunks.clear()
        transfer.body = None
        # A producer waiting for room must not wait for ever.
        if transfer.room is not None and not transfer.room.done():
            transfer.room.set_result(None)
        transfer.room = None
        handle = getattr(transfer.request, "handle", None)
        if isinstance(handle, TransferHandle):
            handle._transfer = None  # no cycle left through the caller's methods
        callback, transfer.callback = transfer.callback, None
        if callback is not None:
            callback(transfer.response(error))

    def _start_waiting(self) -> None:
        while self._waiting and len(self._running) < self.max_clients:
            self._start(self._waiting.popleft())

    def resume(self, transfer: _Transfer) -> None:
        """Lift the pauses no longer wanted (called outside libcurl)."""
        curl = transfer.curl
        if curl is None:
            return
        recv = transfer.recv_paused and (
            transfer.held or transfer.queued_bytes >= DOWNLOAD_QUEUE_MAX
        )
        send = transfer.send_paused and not (transfer.body or transfer.body_ended)
        transfer.recv_paused, transfer.send_paused = recv, send
        state = (pycurl.PAUSE_RECV if recv else 0) | (pycurl.PAUSE_SEND if send else 0)
        try:
            curl.pause(state)  # may deliver held data into write() right away
        except pycurl.error:
            pass  # the transfer failed meanwhile; the multi handle reports it
        self._kick()

    # --- libcurl's multi interface on the IOLoop ----------------------------------------

    def _watch_socket(self, event: int, fd: int, multi: Any, data: Any) -> None:
        # libcurl may close a socket and open another with the same number without
        # saying so in between: always remove before adding.
        if fd in self._fds:
            self._fds.discard(fd)
            self.io_loop.remove_handler(fd)
        if event != pycurl.POLL_REMOVE:
            self.io_loop.add_handler(fd, self._on_socket, _SOCKET_EVENTS[event])
            self._fds.add(fd)

    def _set_timer(self, msecs: int) -> None:
        if msecs < 0:
            due = None
        elif msecs == 0:
            self._kick()
            return
        else:
            due = self.io_loop.time() + msecs / 1000.0
            if self._timer is not None and abs(due - self._timer_due) < 0.001:
                return  # the timer already set for then
        if self._timer is not None:
            self.io_loop.remove_timeout(self._timer)
            self._timer = None
        if due is not None:
            self._timer_due = due
            self._timer = self.io_loop.call_at(due, self._on_timer)

    def _kick(self) -> None:
        if not self._kicked:
            self._kicked = True
            self.io_loop.add_callback(self._on_kick)

    def _on_kick(self) -> None:
        self._kicked = False
        self._act(pycurl.SOCKET_TIMEOUT, 0)

    def _on_timer(self) -> None:
        self._timer = None
        self._act(pycurl.SOCKET_TIMEOUT, 0)

    def _on_socket(self, fd: int, events: int) -> None:
        action = 0
        if events & IOLoop.READ:
            action |= pycurl.CSELECT_IN
        if events & IOLoop.WRITE:
            action |= pycurl.CSELECT_OUT
        if events & IOLoop.ERROR:
            action |= pycurl.CSELECT_ERR
        self._act(fd, action)

    def _act(self, fd: int, action: int) -> None:
        try:
            self._multi.socket_action(fd, action)
        except pycurl.error as exc:
            log.error("libcurl's multi handle failed: %s", exc)
        self._settle()

    def _settle(self) -> None:
        """After libcurl returned: deliver what it recorded, then end finished transfers
        (their last chunks first), then start waiting ones."""
        ready = self.ready
        while ready:
            self.ready = []
            for transfer in ready:
                transfer.deliver()
            ready = self.ready
        while True:
            remaining, done, failed = self._multi.info_read()
            for curl in done:
                self._ended(curl, 0, "")
            for curl, errno, message in failed:
                self._ended(curl, errno, message)
            if not remaining:
                break
        self._start_waiting()

    def _ended(self, curl: pycurl.Curl, errno: int, message: str) -> None:
        transfer = self._running.get(curl)
        if transfer is None:
            return
        if transfer.queued:
            transfer.deliver()
        if transfer.curl is None:
            return  # the delivery aborted it
        self._release(curl)
        error = UpstreamError(errno, message or f"libcurl error {errno}") if errno else None
        self._complete(transfer, error)


def make_client(max_clients: int, ca_file: str | None = None) -> RelayClient:
    """``force_instance`` keeps it independent of any other AsyncHTTPClient in the
    process (Tornado would otherwise share one per IOLoop)."""
    return RelayClient(force_instance=True, max_clients=max_clients, ca_file=ca_file)
