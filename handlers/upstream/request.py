"""What a relay asks of RelayClient beyond a plain ``HTTPRequest``, and its hold on the
transfer that follows (handlers/upstream/client.py runs it)."""

from __future__ import annotations

from typing import Any

from tornado.httpclient import HTTPRequest

from handlers.upstream.transfer import ResponseCallback, Transfer


def extension(request: HTTPRequest, name: str) -> Any:
    """``request``'s ``UpstreamRequest`` field ``name``, or None for a plain request.

    ``fetch_impl`` is not given the caller's request but Tornado's wrapper of it, which
    adds the client's defaults and forwards every other attribute to the request
    (``_RequestProxy`` in tornado/httpclient.py, undocumented). The fields above are
    read through that forwarding here and nowhere else."""
    return getattr(request, name, None)


class TransferHandle:
    """The caller's hold on a transfer started from an ``UpstreamRequest``."""

    __slots__ = ("aborted", "transfer")

    def __init__(self) -> None:
        self.transfer: Transfer | None = None  # set by the client while it is not done
        self.aborted = False

    def abort(self) -> None:
        """End the transfer now (the backend sees its connection closed); its fetch
        fails with ``UpstreamError``. Safe to call at any time, more than once."""
        self.aborted = True
        if self.transfer is not None:
            self.transfer.abort()


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
