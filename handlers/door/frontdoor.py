"""The front door: every request's start line and headers, checked before the application
sees them, through Tornado's public connection-delegate interface.

Tornado's HTTP/1 parser refuses on its own, with 400: a Content-Length beside a
Transfer-Encoding, transfer codings other than one ``chunked``, obsolete line folding,
bare CRs, and bad chunk framing. What it leaves to the application is checked here,
where nothing has been forwarded yet:

* ``Content-Length`` must be one run of ASCII digits (RFC 9110 section 8.6). "74, 0",
  "5 5" or a non-ASCII digit is a framing the backend might read otherwise: 400.
* The request target (414) and the header block (431: its size and its field count)
  have limits, so that no request costs more than a known amount to hold.
* After a request that ends its connection (``Connection: close``, or HTTP/1.0
  without keep-alive), nothing more is taken from that connection. (Tornado would
  still parse a request that was pipelined behind it and is already in its buffer.)

Each refusal is answered with the proxy's error page and logged in one line.
"""

from __future__ import annotations

import logging
import re
import weakref
from collections.abc import Awaitable, Callable
from typing import NamedTuple

from tornado.httputil import (
    HTTPConnection,
    HTTPHeaders,
    HTTPMessageDelegate,
    HTTPServerConnectionDelegate,
    RequestStartLine,
    ResponseStartLine,
)

from handlers.config.options import Options
from handlers.door.http1 import peer_address
from handlers.door.markup import error_html
from handlers.mapping.headers import ends_connection

log = logging.getLogger(__name__)

_DIGITS = re.compile(r"[0-9]+")


class Limits(NamedTuple):
    """The limits of a request's head: three settings of Options, by the same names
    (their defaults and ranges are declared there, in handlers/config/options.py)."""

    max_uri_bytes: int
    max_header_bytes: int
    max_header_count: int

    @classmethod
    def of(cls, options: Options) -> Limits:
        return cls(*(getattr(options, name) for name in cls._fields))


def refusal(
    start_line: RequestStartLine, headers: HTTPHeaders, limits: Limits
) -> tuple[int, str, str] | None:
    """(status, reason, detail) when the request must be refused before anything else
    happens; None when it may go on. Pure."""
    if len(start_line.path) > limits.max_uri_bytes:
        return (
            414,
            "URI Too Long",
            f"The request target is longer than {limits.max_uri_bytes:,} bytes.",
        )
    fields = list(headers.get_all())
    if len(fields) > limits.max_header_count:
        return (
            431,
            "Request Header Fields Too Large",
            f"The request has more than {limits.max_header_count} header fields.",
        )
    size = sum(len(name) + len(value) + 4 for name, value in fields)
    if size > limits.max_header_bytes:
        return (
            431,
            "Request Header Fields Too Large",
            f"The request's header fields are larger than {limits.max_header_bytes:,} bytes.",
        )
    lengths = headers.get_list("Content-Length")
    if lengths and (len(lengths) > 1 or not _DIGITS.fullmatch(lengths[0])):
        return 400, "Bad Request", "The request's Content-Length is not one decimal number."
    return None


class FrontDoor(HTTPServerConnectionDelegate):
    """Wraps the application: ``HTTPServer(FrontDoor(app, limits))``."""

    def __init__(
        self,
        app: HTTPServerConnectionDelegate,
        limits: Limits,
        on_refused: Callable[[RequestStartLine, HTTPHeaders, int, int, str], None] | None = None,
    ) -> None:
        self.app = app
        self.limits = limits
        # Told of each request answered here (start line, headers, status, body bytes,
        # client address): the access log and the metrics count it like any other.
        self.on_refused = on_refused
        # Connections whose last request has been seen; weak, so that a connection
        # that is gone is forgotten with it.
        self._ended: weakref.WeakSet[object] = weakref.WeakSet()
        # Client connections open now (a shutdown waits a moment for idle ones).
        self.connections: weakref.WeakSet[object] = weakref.WeakSet()

    def configure(self, options: Options) -> None:
        """Take the limits of reloaded options (handlers/ops/state.py)."""
        self.limits = Limits.of(options)

    def start_request(
        self, server_conn: object, request_conn: HTTPConnection
    ) -> HTTPMessageDelegate:
        self.connections.add(server_conn)
        return _Checked(self, server_conn, request_conn)

    def on_close(self, server_conn: object) -> None:
        self.connections.discard(server_conn)
        self.app.on_close(server_conn)

    def has_ended(self, server_conn: object) -> bool:
        """Whether this connection's last request has been seen."""
        return server_conn in self._ended

    def end(self, server_conn: object) -> None:
        self._ended.add(server_conn)


class _Checked(HTTPMessageDelegate):
    """One request: checked at its headers, then handed to the application, or
    answered here and its body (if any) dropped."""

    def __init__(self, door: FrontDoor, server_conn: object, request_conn: HTTPConnection) -> None:
        self.door = door
        self.server_conn = server_conn
        self.request_conn = request_conn
        self.inner: HTTPMessageDelegate | None = None

    def headers_received(
        self, start_line: RequestStartLine | ResponseStartLine, headers: HTTPHeaders
    ) -> Awaitable[None] | None:
        assert isinstance(start_line, RequestStartLine)
        door = self.door
        if door.has_ended(self.server_conn):
            # Pipelined behind the connection's last request: not a request at all.
            log.warning("%s %s after the connection's last request: dropped",
                        start_line.method, start_line.path[:200])  # fmt: skip
            return None
        if ends_connection(start_line.version, headers):
            door.end(self.server_conn)
        refused = refusal(start_line, headers, door.limits)
        if refused is not None:
            status, reason, detail = refused
            log.warning(
                "%s %s -> %d (%s)", start_line.method, start_line.path[:200], status, detail
            )
            self._answer(start_line, headers, status, reason, detail)
            return None
        self.inner = door.app.start_request(self.server_conn, self.request_conn)
        return self.inner.headers_received(start_line, headers)

    def _answer(
        self,
        start_line: RequestStartLine,
        request_headers: HTTPHeaders,
        status: int,
        reason: str,
        detail: str,
    ) -> None:
        body = error_html(status, reason, detail).encode("utf-8")
        headers = HTTPHeaders(
            {
                "Content-Type": "text/html; charset=UTF-8",
                "Content-Length": str(len(body)),
                "Cache-Control": "no-store",
                # The body that may follow is not read: the connection ends here.
                "Connection": "close",
            }
        )
        self.door.end(self.server_conn)
        sent = b"" if start_line.method == "HEAD" else body
        self.request_conn.write_headers(
            ResponseStartLine("HTTP/1.1", status, reason), headers, sent
        )
        self.request_conn.finish()
        if self.door.on_refused is not None:
            client = peer_address(self.request_conn)
            self.door.on_refused(start_line, request_headers, status, len(sent), client)

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        return self.inner.data_received(chunk) if self.inner is not None else None

    def finish(self) -> None:
        if self.inner is not None:
            self.inner.finish()

    def on_connection_close(self) -> None:
        if self.inner is not None:
            self.inner.on_connection_close()


__all__ = ["FrontDoor", "Limits", "refusal"]
