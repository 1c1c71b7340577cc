"""``fetch`` for the proxy's callers other than the relay: an ``HTTPRequest`` (or an
``UpstreamRequest``, with what a relay would ask besides) made into an ``Exchange``
(handlers/upstream/exchange.py), and the transfer's outcome made into an ``HTTPResponse``."""

from __future__ import annotations

from typing import Any

from tornado.httpclient import HTTPRequest, HTTPResponse
from tornado.httputil import HTTPHeaders

from handlers.upstream.exchange import Exchange, ResponseCallback, TransferHandle
from handlers.upstream.transfer import Transfer


def extension(request: HTTPRequest, name: str) -> Any:
    """``request``'s ``UpstreamRequest`` field ``name``, or None for a plain request.

    ``fetch_impl`` is not given the caller's request but Tornado's wrapper of it, which
    adds the client's defaults and forwards every other attribute to the request
    (``_RequestProxy`` in tornado/httpclient.py, undocumented). The fields above are
    read through that forwarding here and nowhere else."""
    return getattr(request, name, None)


def exchange_of(request: HTTPRequest) -> Exchange:
    """What ``request`` asks, as ``RelayClient.start`` takes it."""
    handle = extension(request, "handle")
    return Exchange(
        request.url,
        request.method,
        request.headers,
        body=request.body if request.body_producer is None else None,
        body_producer=request.body_producer,
        on_response=extension(request, "on_response"),
        on_chunk=request.streaming_callback,  # type: ignore[arg-type]
        request_target=extension(request, "request_target"),
        idle_timeout=extension(request, "idle_timeout"),
        connect_timeout=request.connect_timeout,
        request_timeout=request.request_timeout,
        validate_cert=request.validate_cert is not False,
        ca_certs=request.ca_certs,
        handle=handle if isinstance(handle, TransferHandle) else TransferHandle(),
    )


def response_of(
    request: HTTPRequest, transfer: Transfer, error: BaseException | None, start: float, now: float
) -> HTTPResponse:
    """The ``HTTPResponse`` ``fetch`` resolves with, once ``transfer`` has ended."""
    headers = None
    if transfer.on_response is None:
        headers = HTTPHeaders()
        for name, value in transfer.fields:
            headers.add(name, value)
    return HTTPResponse(
        request,
        transfer.code if error is None else 599,
        headers=headers,
        buffer=transfer.buffer,
        error=error,
        request_time=now - start,
        reason=transfer.reason or None,
        start_time=start,
    )


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


__all__ = ["TransferHandle", "UpstreamRequest", "exchange_of", "extension", "response_of"]
