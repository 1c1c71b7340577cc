"""What a relay (handlers/relay/relay.py) writes to: the client's side of one exchange.

``ProxyHandler`` implements it over Tornado's ``RequestHandler``;
tests/integration/test_relay.py implements it with a recorder.

The relay calls it in one of three ways, and then never again: ``respond``, then any
number of ``write`` and ``flush`` (one flush in progress at a time), then ``finish``;
or ``error_page``, when nothing was sent (a ``respond`` that raised ValueError sent
nothing); or ``close``, at any point.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from tornado.concurrent import Future


class Sink(Protocol):
    """The client's side of a relay (ProxyHandler implements it)."""

    def respond(self, status: int, reason: str, fields: Iterable[tuple[str, str]]) -> None:
        """Set the status line and header fields (sent with the first flush)."""

    def write(self, chunk: bytes) -> None:
        """Queue body bytes."""

    def flush(self) -> Future[None]:
        """Send what is queued; resolves when the client's connection has taken it.
        One at a time: bytes flushed or finished before it resolves would be reported
        sent with it (Tornado's HTTP1Connection keeps a single write Future)."""

    def finish(self) -> object:
        """End the response."""

    def error_page(self, status: int, title: str, detail: str) -> None:
        """Answer with the proxy's own error page instead (nothing was sent yet)."""

    def close(self) -> None:
        """End the connection at once: the response cannot be completed honestly."""
