"""What one upstream transfer is asked to do: an ``Exchange``, and the caller's hold on it.

``RelayClient.start`` takes an ``Exchange`` as it is: no ``HTTPRequest`` with its property
setters and header validation, no wrapper forwarding every attribute, no ``HTTPResponse``
at the end. A relay makes one per proxied request, so what it costs is paid on every small
page. ``fetch`` (for the proxy's other callers) turns its ``HTTPRequest`` into one
(handlers/upstream/request.py), so that both ways share every step after that.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, Protocol

from tornado.concurrent import Future
from tornado.httputil import HTTPHeaders

Fields = list[tuple[str, str]]
ResponseCallback = Callable[[int, str, Fields], None]
ChunkCallback = Callable[[bytes], "Future[None] | None"]
BodyProducer = Callable[[Callable[[bytes], Any]], Any]


class _Abortable(Protocol):
    def abort(self) -> None: ...


class TransferHandle:
    """The caller's hold on a transfer started from an ``Exchange``."""

    __slots__ = ("aborted", "transfer")

    def __init__(self) -> None:
        self.transfer: _Abortable | None = None  # set by the client while it is not done
        self.aborted = False

    def abort(self) -> None:
        """End the transfer now (the backend sees its connection closed); it fails with
        ``UpstreamError``. Safe to call at any time, more than once."""
        self.aborted = True
        if self.transfer is not None:
            self.transfer.abort()


@dataclass(slots=True, eq=False)
class Exchange:
    """One request to a backend, as libcurl options are made from it
    (handlers/upstream/curlopts.py: ``configure``).

    ``headers`` are sent exactly as given (a dict, or HTTPHeaders for repeated fields);
    a Content-Length among them frames a body and is not sent as a line. ``body`` is the
    whole body, or ``body_producer`` writes it; ``on_chunk`` takes the response body as
    it comes (may return a Future: a pause), else it is buffered; ``on_response`` gets
    the final header block once. ``request_target`` is sent byte for byte;
    ``idle_timeout`` is how long the backend may send nothing; ``handle`` ends the
    transfer early."""

    url: str
    method: str = "GET"
    headers: dict[str, str] | HTTPHeaders = field(default_factory=dict)
    _: KW_ONLY
    body: bytes | None = None
    body_producer: BodyProducer | None = None
    on_response: ResponseCallback | None = None
    on_chunk: ChunkCallback | None = None
    request_target: str | None = None
    idle_timeout: float | None = None
    connect_timeout: float | None = None
    request_timeout: float | None = None
    validate_cert: bool = True
    ca_certs: str | None = None
    handle: TransferHandle = field(default_factory=TransferHandle)
