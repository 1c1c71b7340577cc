"""The one upstream HTTP client: libcurl through Tornado, tuned for relaying.

Tornado's curl client hands a ``header_callback`` every raw header line through its
own IOLoop callback, and parses and validates each line into HTTPHeaders for itself.
A relay then validates every field a second time when it copies it to the client.
For a small request that header work was measured as the largest part of the
proxy's own cost. ``RelayClient`` lets a request bring its own header parser,
``HeaderParser``, which splits the lines once and reports the final header block once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pycurl
from tornado.curl_httpclient import CurlAsyncHTTPClient
from tornado.httputil import HTTPHeaders
from tornado.ioloop import IOLoop

Fields = list[tuple[str, str]]
HeadersCallback = Callable[[int, str, Fields], None]


class HeaderParser:
    """A ``header_callback`` for RelayClient: ``callback(code, reason, fields)`` runs
    once per response, on the IOLoop, with the final (non-1xx) header block as
    (name, value) pairs in the order received.

    The call is scheduled when the block is complete; ``deliver()`` makes it at once
    (if it has not happened yet), for code that must not wait for the IOLoop, such as
    the completion of the fetch, which may be seen first."""

    __slots__ = ("callback", "code", "complete", "delivered", "fields", "io_loop", "reason")

    def __init__(self, callback: HeadersCallback) -> None:
        self.callback = callback
        self.code = 0
        self.reason = ""
        self.fields: Fields = []
        self.io_loop: IOLoop | None = None
        self.complete = False
        self.delivered = False

    def line(self, raw: bytes) -> None:
        """libcurl's HEADERFUNCTION. It runs inside libcurl: it only parses, and never
        raises (an exception here would abort the transfer)."""
        if raw.startswith(b"HTTP/"):
            parts = raw.split(None, 2)
            self.code = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
            self.reason = parts[2].strip().decode("latin-1") if len(parts) > 2 else ""
            self.fields = []
        elif raw == b"\r\n" or raw == b"\n":
            if self.code >= 200 and self.io_loop is not None:
                self.complete = True
                self.io_loop.add_callback(self.deliver)
        elif raw[:1] in (b" ", b"\t"):
            if self.fields:  # obsolete line folding (RFC 9112 section 5.2): unfold
                name, value = self.fields[-1]
                self.fields[-1] = (name, f"{value} {raw.strip().decode('latin-1')}")
        else:
            name, sep, value = raw.decode("latin-1").partition(":")
            if sep:
                self.fields.append((name.strip(), value.strip()))

    def deliver(self) -> None:
        if self.complete and not self.delivered:
            self.delivered = True
            self.callback(self.code, self.reason, self.fields)


class RelayClient(CurlAsyncHTTPClient):
    def _curl_setup_request(
        self, curl: pycurl.Curl, request: Any, buffer: Any, headers: HTTPHeaders
    ) -> None:
        super()._curl_setup_request(curl, request, buffer, headers)
        on_headers = request.header_callback
        if isinstance(on_headers, HeaderParser):
            on_headers.io_loop = self.io_loop
            curl.setopt(pycurl.HEADERFUNCTION, on_headers.line)


def make_client(max_clients: int) -> RelayClient:
    """``force_instance`` keeps it independent of any other AsyncHTTPClient in the
    process; ``max_body_size`` is lifted because bodies are relayed, not held."""
    return RelayClient(force_instance=True, max_clients=max_clients, max_body_size=1 << 62)
