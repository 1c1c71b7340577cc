"""``fetch`` for the proxy's callers other than the relay: an ``HTTPRequest`` made into an
``Exchange`` (handlers/upstream/exchange.py), and the transfer's outcome made into an
``HTTPResponse``. Only ``HTTPRequest``'s own fields are read; what a relay asks besides
(the request target as sent, an idle timeout, the head in one call, a handle to abort)
it asks of ``RelayClient.start`` in its ``Exchange``."""

from __future__ import annotations

from tornado.httpclient import HTTPRequest, HTTPResponse
from tornado.httputil import HTTPHeaders

from handlers.upstream.exchange import Exchange
from handlers.upstream.transfer import Transfer


def exchange_of(request: HTTPRequest) -> Exchange:
    """What ``request`` asks, as ``RelayClient.start`` takes it."""
    return Exchange(
        request.url,
        request.method,
        request.headers,
        body=request.body if request.body_producer is None else None,
        body_producer=request.body_producer,
        on_chunk=request.streaming_callback,  # type: ignore[arg-type]
        connect_timeout=request.connect_timeout,
        request_timeout=request.request_timeout,
        validate_cert=request.validate_cert is not False,
        ca_certs=request.ca_certs,
    )


def response_of(
    request: HTTPRequest, transfer: Transfer, error: BaseException | None, start: float, now: float
) -> HTTPResponse:
    """The ``HTTPResponse`` ``fetch`` resolves with, once ``transfer`` has ended."""
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


__all__ = ["exchange_of", "response_of"]
