"""The one upstream HTTP client: an ``AsyncHTTPClient`` that drives libcurl itself.

Tornado's own curl client does not offer what relaying needs: a response body taken only
as fast as the client downstream takes it, a request body streamed in as it arrives, and
the ability to end one transfer early. ``RelayClient`` implements ``fetch_impl``, the
extension point Tornado documents for subclasses, over ``pycurl.CurlMulti``:

- libcurl's callbacks only record what happened (handlers/upstream/transfer.py); the
  application's callbacks run after libcurl has returned, in order, so the headers,
  every chunk and then the completion always arrive in that order;
- ``streaming_callback`` may return a Future: the transfer is paused until it resolves
  (backpressure), as ``body_producer``'s write function returns one for uploads;
- an ``UpstreamRequest`` (handlers/upstream/request.py) carries a ``TransferHandle``
  that ends its transfer at once, the finished response headers in one call
  (``on_response``), the exact request target and an idle timeout;
- easy handles are reused, their options reset; the connection cache lives in the multi
  handle, so keep-alive connections survive that reset.

It implements only what the proxy uses; the HTTPRequest features it refuses at fetch time
(redirects, decompression, ``user_agent``, ``header_callback``, ``prepare_curl_callback``,
proxies, client certificates, ...) are listed in handlers/upstream/curlopts.py. Its one
reliance on Tornado beyond the documented interface, the wrapper ``fetch_impl`` is given
instead of the request, is in handlers/upstream/request.py (``extension``).
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable
from typing import Any

import pycurl
from tornado.gen import convert_yielded
from tornado.httpclient import AsyncHTTPClient, HTTPRequest, HTTPResponse
from tornado.ioloop import IOLoop

from handlers.upstream.curlopts import BODY_METHODS, DEFAULTS, configure, refusal
from handlers.upstream.errors import UpstreamError
from handlers.upstream.request import TransferHandle, UpstreamRequest, extension
from handlers.upstream.transfer import Transfer

log = logging.getLogger(__name__)


_SOCKET_EVENTS = {
    pycurl.POLL_NONE: IOLoop.ERROR,
    pycurl.POLL_IN: IOLoop.READ,
    pycurl.POLL_OUT: IOLoop.WRITE,
    pycurl.POLL_INOUT: IOLoop.READ | IOLoop.WRITE,
}


class RelayClient(AsyncHTTPClient):
    """``AsyncHTTPClient`` over ``pycurl.CurlMulti``; see the module's docstring.

    It supports the ``HTTPRequest`` fields a proxy uses: method (any, with
    ``allow_nonstandard_methods`` or not), headers, body, ``body_producer``,
    ``streaming_callback``, ``connect_timeout``, ``request_timeout``, ``validate_cert``
    and ``ca_certs``; a request that sets another fails with ValueError. It sends exactly
    the headers it is given: nothing of libcurl's own (``Accept``, ``User-Agent``,
    ``Expect``) is added."""

    def initialize(
        self,
        defaults: dict[str, Any] | None = None,
        max_clients: int = 10,
        ca_file: str | None = None,
        max_body_size: int = 100 << 20,
    ) -> None:
        super().initialize(defaults={**DEFAULTS, **(defaults or {})})
        self.loop = IOLoop.current()  # AsyncHTTPClient's own io_loop is not documented
        self.max_clients = max_clients
        self.ca_file = ca_file  # for https when the request names no ca_certs
        self.max_body_size = max_body_size  # of a response that is not streamed
        self._ready: list[Transfer] = []  # transfers with something to deliver
        self._multi = pycurl.CurlMulti()
        self._multi.setopt(pycurl.M_TIMERFUNCTION, self._set_timer)
        self._multi.setopt(pycurl.M_SOCKETFUNCTION, self._watch_socket)
        self._idle: list[pycurl.Curl] = []
        self._running: dict[pycurl.Curl, Transfer] = {}
        self._waiting: collections.deque[Transfer] = collections.deque()
        self._fds: set[int] = set()
        self._timer: object | None = None
        self._timer_due = 0.0
        self._kicked = False

    def close(self) -> None:
        for transfer in list(self._running.values()) + list(self._waiting):
            self.abort(transfer, "the client was closed")
        for fd in self._fds:
            self.loop.remove_handler(fd)
        self._fds.clear()
        if self._timer is not None:
            self.loop.remove_timeout(self._timer)
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
        transfer = Transfer(
            request,
            callback,
            on_response=extension(request, "on_response"),
            start=self.loop.time(),
            max_body_size=self.max_body_size,
            on_news=self._ready.append,
            kick=self._kick,
            on_abort=self.abort,
        )
        has_body = (
            request.body_producer is not None
            or request.body is not None
            or request.method in BODY_METHODS
        )
        refused = refusal(request, has_body)
        if refused is not None:
            self._complete(transfer, refused)
            return
        handle = extension(request, "handle")
        if isinstance(handle, TransferHandle):
            handle.transfer = transfer
            if handle.aborted:
                self._complete(transfer, UpstreamError(pycurl.E_ABORTED_BY_CALLBACK, "aborted"))
                return
        if request.body_producer is not None:
            transfer.body = collections.deque()
            write: Any = transfer.write_body  # returns a Future, as Tornado's own does
            produced = convert_yielded(request.body_producer(write))
            produced.add_done_callback(transfer.body_produced)
        elif has_body:
            transfer.body = collections.deque([memoryview(request.body or b"")])
            transfer.body_bytes = len(request.body or b"")
            transfer.body_ended = True
        if self._waiting or len(self._running) >= self.max_clients:
            self._waiting.append(transfer)
        else:
            self._start(transfer)

    # --- starting and ending transfers -----------------------------------------------

    def _start(self, transfer: Transfer) -> None:
        curl = self._idle.pop() if self._idle else pycurl.Curl()
        try:
            configure(curl, transfer.request, self.ca_file, transfer.body_size)
        except Exception as exc:
            curl.reset()
            self._idle.append(curl)
            self._complete(transfer, exc)
            return
        transfer.attach(curl)
        self._running[curl] = transfer
        self._multi.add_handle(curl)

    def abort(self, transfer: Transfer, why: str = "aborted") -> None:
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

    def _release(self, curl: pycurl.Curl) -> Transfer:
        transfer = self._running.pop(curl)
        self._multi.remove_handle(curl)
        transfer.curl = None
        curl.reset()
        if len(self._idle) < self.max_clients:
            self._idle.append(curl)
        else:
            curl.close()
        return transfer

    def _complete(self, transfer: Transfer, error: BaseException | None) -> None:
        handle = extension(transfer.request, "handle")
        if isinstance(handle, TransferHandle):
            handle.transfer = None  # no cycle left through the caller's methods
        transfer.finish(error, self.loop.time())

    def _start_waiting(self) -> None:
        while self._waiting and len(self._running) < self.max_clients:
            self._start(self._waiting.popleft())

    # --- libcurl's multi interface on the IOLoop ----------------------------------------

    def _watch_socket(self, event: int, fd: int, multi: Any, data: Any) -> None:
        # libcurl may close a socket and open another with the same number without
        # saying so in between: always remove before adding.
        if fd in self._fds:
            self._fds.discard(fd)
            self.loop.remove_handler(fd)
        if event != pycurl.POLL_REMOVE:
            self.loop.add_handler(fd, self._on_socket, _SOCKET_EVENTS[event])
            self._fds.add(fd)

    def _set_timer(self, msecs: int) -> None:
        if msecs < 0:
            due = None
        elif msecs == 0:
            self._kick()
            return
        else:
            due = self.loop.time() + msecs / 1000.0
            if self._timer is not None and abs(due - self._timer_due) < 0.001:
                return  # the timer already set for then
        if self._timer is not None:
            self.loop.remove_timeout(self._timer)
            self._timer = None
        if due is not None:
            self._timer_due = due
            self._timer = self.loop.call_at(due, self._on_timer)

    def _kick(self) -> None:
        if not self._kicked:
            self._kicked = True
            self.loop.add_callback(self._on_kick)

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
        ready = self._ready  # the list the transfers' on_news appends to
        while ready:
            batch = ready.copy()
            ready.clear()
            for transfer in batch:
                transfer.deliver()
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


__all__ = ["RelayClient", "TransferHandle", "UpstreamRequest", "make_client"]
