"""The idle watch of a request body while the proxy reads it (``client_body_timeout``).

A client that stops sending its body half-way would otherwise hold its connection, its
handler and a backend connection for as long as it likes. The time the backend holds the
body back (the upload queue is full) does not count: that wait is the backend's.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from tornado.concurrent import Future
from tornado.ioloop import IOLoop


class BodyWatch:
    """Calls ``on_stall(waited)`` once the body has brought nothing for ``timeout``
    seconds while the backend was ready for more. The reader calls ``fed`` with each
    piece's wait (the Future the relay gave, or None) and ``stop`` once the body is
    whole or the request has ended."""

    __slots__ = ("last", "on_stall", "timeout", "timer", "waiting")

    def __init__(self, timeout: float, on_stall: Callable[[float], None]) -> None:
        self.timeout = timeout
        self.on_stall: Callable[[float], None] | None = on_stall
        self.last = time.monotonic()  # when the body last brought bytes
        self.waiting: Future[None] | None = None  # the backend's hold on the body, if any
        self.timer: object | None = None
        self._check()

    def fed(self, waiting: Future[None] | None) -> Future[None] | None:
        """A piece came; ``waiting`` resolves when the backend has room for more.
        Returns ``waiting``, for the reader to pass on to Tornado."""
        self.last = time.monotonic()
        self.waiting = waiting
        return waiting

    def stop(self) -> None:
        if self.timer is not None:
            IOLoop.current().remove_timeout(self.timer)
            self.timer = None
        self.on_stall = self.waiting = None  # the reader's: no cycle outlives the request

    def _check(self) -> None:
        self.timer = None
        if self.on_stall is None:
            return
        waited = time.monotonic() - self.last
        held = self.waiting is not None and not self.waiting.done()
        if waited < self.timeout or held:
            delay = self.timeout - waited if not held else self.timeout
            self.timer = IOLoop.current().call_later(max(delay, 0.05), self._check)
            return
        self.on_stall(waited)


__all__ = ["BodyWatch"]
