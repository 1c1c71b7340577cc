"""One request as the access log and the metrics see it: a plain record, filled in along
the request's path and handed to both when it ends.

Who fills what: the handler makes it when the request starts (handlers/door/pages.py) and
counts the body bytes it reads; the relay names the site and fills the upstream part
(timings, the kind of a failure); the handler adds what went to the client (status, bytes)
and the request body's fate at the end, and, only when the access log is on, who asked for
what (``handlers/ops/accesslog.py`` ``describe``). A WebSocket session names its site and
adds its close code and its frames and bytes each way when it ends.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class WebSocketCounts:
    """A WebSocket session's traffic: frames and bytes each way, and its close code."""

    code: int | None = None
    frames_in: int = 0  # from the client
    frames_out: int = 0  # to the client
    bytes_in: int = 0
    bytes_out: int = 0


@dataclass(slots=True)
class AccessRecord:
    method: str
    site: str = "-"  # the site the request went to; "-" for the proxy's own answers
    status: int = 0  # the status the client was sent
    sent: int = 0  # response body bytes written to the client
    received: int = 0  # request body bytes read from it
    # The upstream part (None: no backend was asked, or it did not get that far).
    upstream_seconds: float | None = None  # sending the request to the response's end
    rewrite_seconds: float | None = None  # rewriting the response body
    upstream_error: str | None = None  # the failure's kind (UpstreamError.kind)
    request_body: str | None = None  # what mapping the body did (upload.BodyResult)
    # Who asked for what: filled only for the access log (accesslog.describe).
    time: float = 0.0  # when it arrived (a WebSocket session: when it ended)
    seconds: float = 0.0  # how long it took (a WebSocket session: how long it lasted)
    client: str = ""
    user: str | None = None
    target: str = ""
    protocol: str = ""
    referer: str | None = None
    user_agent: str | None = None
    pid: int = 0  # which process served it (--processes)
    websocket: WebSocketCounts | None = None  # a WebSocket session's, once it opened


__all__ = ["AccessRecord", "WebSocketCounts"]
