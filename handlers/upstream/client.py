"""The one upstream HTTP client: an ``AsyncHTTPClient`` that drives libcurl itself.

Tornado's own curl client does not offer what relaying needs: a response body taken only
as fast as the client downstream takes it, a request body streamed in as it arrives, and
the ability to end one transfer early. ``RelayClient`` implements ``fetch_impl``, the
extension point Tornado documents for subclasses, over ``pycurl.CurlMulti``:

- libcurl's callbacks only record what happened (handlers/upstream/transfer.py); the
  application's callbacks run after libcurl has returned, in order, so the headers,
  every chunk and then the completion always arrive in that order;
- ``on_chunk`` (``fetch``'s ``streaming_callback``) may return a Future: the transfer is
  paused until it resolves (backpressure), as ``body_producer``'s write function returns
  one for uploads;
- ``start`` takes an ``Exchange`` (handlers/upstream/exchange.py), as a relay makes one
  per request: its ``TransferHandle`` ends the transfer at once, the response headers
  come in one call (``on_response``), the request target is sent as given, and an idle
  timeout stands in for a total one. ``fetch`` turns an ``HTTPRequest`` into one
  (handlers/upstream/request.py), for callers that need none of those;
- easy handles are reused, their options reset; the connection cache lives in the multi
  handle, so keep-alive connections survive that reset.

It implements only what the proxy uses; the HTTPRequest features it refuses at fetch time
(redirects, decompression, ``user_agent``, ``header_callback``, ``prepare_curl_callback``,
proxies, client certificates, ...) are listed in handlers/upstream/curlopts.py. What a
relay needs beyond ``HTTPRequest`` is asked of ``start``, never smuggled through the
request ``fetch_impl`` is given.
"""

from __future__ import annotations

import collections
import functools
import logging
from collections.abc import Callable
from typing import Any

import pycurl
from tornado.concurrent import (
    Future,
    future_set_exception_unless_cancelled,
    future_set_result_unless_cancelled,
)
from tornado.httpclient import AsyncHTTPClient, HTTPRequest, HTTPResponse
from tornado.ioloop import IOLoop

from handlers.upstream.curlopts import BODY_METHODS, DEFAULTS, configure, refusal
from handlers.upstream.errors import UpstreamError
from handlers.upstream.exchange import Exchange, TransferHandle
from handlers.upstream.multi import CurlOnLoop
from handlers.upstream.request import exchange_of, response_of
from handlers.upstream.transfer import Transfer

log = logging.getLogger(__name__)


class RelayClient(AsyncHTTPClient, CurlOnLoop):
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
        self._watch_loop(IOLoop.current())  # AsyncHTTPClient's io_loop is not documented
        self.max_clients = max_clients
        self.ca_file = ca_file  # for https when the request names no ca_certs
        self.max_body_size = max_body_size  # of a response that is not streamed
        self._ready: list[Transfer] = []  # transfers with something to deliver
        self._idle: list[pycurl.Curl] = []
        self._running: dict[pycurl.Curl, Transfer] = {}
        self._waiting: collections.deque[Transfer] = collections.deque()
        self._closed_down = False

    def close(self) -> None:
        self._closed_down = True
        for transfer in list(self._running.values()) + list(self._waiting):
            self.abort(transfer, "the client was closed")
        self._unwatch_loop()
        for curl in self._idle:
            curl.close()
        self._idle.clear()
        self._multi.close()
        super().close()

    @property
    def active(self) -> int:
        """Transfers running or waiting for a free handle."""
        return len(self._running) + len(self._waiting)

    def start(self, spec: Exchange) -> Future[None]:
        """Start the transfer ``spec`` asks for: the relay's way in, without the
        ``HTTPRequest``/``HTTPResponse`` round of ``fetch``. The Future resolves (to
        None) when the response is complete, or fails with ``UpstreamError`` (or
        ValueError, for a header libcurl cannot send)."""
        if self._closed_down:
            raise RuntimeError("start() called on a closed RelayClient")
        future: Future[None] = Future()
        self._begin(spec, functools.partial(_settle_future, future), None)
        return future

    def fetch_impl(self, request: HTTPRequest, callback: Callable[[HTTPResponse], None]) -> None:
        start = self.loop.time()

        def respond(transfer: Transfer, error: BaseException | None) -> None:
            callback(response_of(request, transfer, error, start, self.loop.time()))

        spec = exchange_of(request)
        has_body = spec.body_producer is not None or spec.body is not None
        self._begin(spec, respond, refusal(request, has_body or spec.method in BODY_METHODS))

    def _begin(
        self,
        spec: Exchange,
        on_end: Callable[[Transfer, BaseException | None], None],
        refused: BaseException | None,
    ) -> None:
        transfer = Transfer(
            spec,
            max_body_size=self.max_body_size,
            on_news=self._ready.append,
            kick=self._kick,
            on_abort=self.abort,
        )
        transfer.on_done = functools.partial(on_end, transfer)
        method = spec.method
        has_body = spec.body_producer is not None or spec.body is not None
        has_body = has_body or method in BODY_METHODS
        if refused is None and has_body and method in ("GET", "HEAD"):
            refused = ValueError(f"a {method} request cannot carry a body here")
        if refused is not None:
            self._complete(transfer, refused)
            return
        handle = spec.handle
        handle.transfer = transfer
        if handle.aborted:
            self._complete(transfer, UpstreamError(pycurl.E_ABORTED_BY_CALLBACK, "aborted"))
            return
        transfer.take_body(has_body)
        if self._waiting or len(self._running) >= self.max_clients:
            self._waiting.append(transfer)
        else:
            self._start(transfer)

    # --- starting and ending transfers -----------------------------------------------

    def _start(self, transfer: Transfer) -> None:
        curl = self._idle.pop() if self._idle else pycurl.Curl()
        try:
            configure(curl, transfer.spec, self.ca_file, transfer.body_size)
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
        transfer.spec.handle.transfer = None  # no cycle left through the caller's methods
        transfer.finish(error)

    def _start_waiting(self) -> None:
        while self._waiting and len(self._running) < self.max_clients:
            self._start(self._waiting.popleft())

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


def _settle_future(future: Future[None], _: Transfer, error: BaseException | None) -> None:
    if error is None:
        future_set_result_unless_cancelled(future, None)
    else:
        future_set_exception_unless_cancelled(future, error)


def make_client(max_clients: int, ca_file: str | None = None) -> RelayClient:
    """``force_instance`` keeps it independent of any other AsyncHTTPClient in the
    process (Tornado would otherwise share one per IOLoop)."""
    return RelayClient(force_instance=True, max_clients=max_clients, ca_file=ca_file)


__all__ = ["Exchange", "RelayClient", "TransferHandle", "make_client"]
