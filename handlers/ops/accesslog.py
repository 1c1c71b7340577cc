"""The access log: one line per request, in nginx's ``combined`` format with the proxy's
site and timings appended, or as JSON lines; to standard error or to a file.

    203.0.113.7 - alice [30/Nov/2026:03:10:00 +0000] "GET /.site.wiki/ HTTP/1.1" 200 5120
    "-" "curl/8.5" site=wiki rt=0.004 urt=0.003

(one line). ``rt`` is the request's time in the proxy, ``urt`` the backend's part of it
("-" when no backend was asked). WebSocket sessions get a line when they end, with their
duration, frames and bytes each way.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from typing import Any, TextIO

from tornado.ioloop import IOLoop

from handlers.ops.audit import REFUSED, AuditEvent, log_without_access_log
from handlers.ops.record import AccessRecord, WebSocketCounts

log = logging.getLogger(__name__)

_UNSAFE = re.compile(r'[\x00-\x1f"\\\x7f-\xff]')


def _escaped(text: str) -> str:
    """As nginx escapes a logged field: quotes, backslashes and control bytes as \\xHH."""
    return _UNSAFE.sub(lambda m: f"\\x{ord(m.group()):02X}", text)


def describe(
    record: AccessRecord,
    *,
    seconds: float,
    client: str,
    user: str | None,
    target: str,
    protocol: str,
    headers: Any,
) -> None:
    """Fill in who asked for what, for the log: the request took ``seconds``."""
    record.time = time.time() - seconds  # when it arrived
    record.seconds = seconds
    record.client = client
    record.user = user
    record.target = target
    record.protocol = protocol
    record.referer = headers.get("Referer")
    record.user_agent = headers.get("User-Agent")
    record.pid = os.getpid()


def request_fields(record: AccessRecord) -> dict[str, Any]:
    """A request's JSON line."""
    return {
        "type": "request",
        "method": record.method,
        "status": record.status,
        "bytes": record.sent,
        "received": record.received,
        "site": record.site,
        "upstream_seconds": record.upstream_seconds,
        "rewrite_seconds": record.rewrite_seconds,
        "upstream_error": record.upstream_error,
        "request_body": record.request_body,
        "time": record.time,
        "client": record.client,
        "user": record.user,
        "target": record.target,
        "protocol": record.protocol,
        "referer": record.referer,
        "user_agent": record.user_agent,
        "seconds": record.seconds,
        "pid": record.pid,
    }


def websocket_fields(record: AccessRecord) -> dict[str, Any]:
    """A WebSocket session's JSON line."""
    counts = record.websocket or WebSocketCounts()
    return {
        "type": "websocket",
        "time": record.time,
        "client": record.client,
        "user": record.user,
        "target": record.target,
        "site": record.site,
        "code": counts.code,
        "seconds": record.seconds,
        "frames_in": counts.frames_in,
        "frames_out": counts.frames_out,
        "bytes_in": counts.bytes_in,
        "bytes_out": counts.bytes_out,
    }


class AccessLog:
    """Writes access records; ``target`` "-" is standard error, None turns it off.

    Lines are buffered, as nginx's ``access_log ... buffer=`` does, and written in one go
    at most FLUSH_SECONDS after the first of them (or once FLUSH_BYTES are waiting, or at
    shutdown): one write per batch instead of one per request. A file that logrotate moved
    away is reopened at the next write."""

    FLUSH_SECONDS = 0.5
    FLUSH_BYTES = 64 * 1024

    def __init__(self, target: str | None, fmt: str) -> None:
        self.format = fmt
        self.target = target
        self.enabled = target is not None
        self.lines: list[str] = []
        self.waiting = 0  # bytes in self.lines
        self.timer: object | None = None
        self.file: TextIO | None = None  # the open log file (not for "-")

    def close(self) -> None:
        self.flush()
        if self.file is not None:
            self.file.close()
            self.file = None

    def _emit(self, line: str) -> None:
        self.lines.append(line)
        self.waiting += len(line) + 1
        if self.waiting >= self.FLUSH_BYTES:
            self.flush()
        elif self.timer is None:
            self.timer = IOLoop.current().call_later(self.FLUSH_SECONDS, self.flush)

    def flush(self) -> None:
        if self.timer is not None:
            IOLoop.current().remove_timeout(self.timer)
            self.timer = None
        if not self.lines:
            return
        text = "\n".join(self.lines) + "\n"
        self.lines, self.waiting = [], 0
        try:
            stream = self._stream()
            stream.write(text)
            stream.flush()
        except OSError as exc:  # a full disk must not take the proxy down
            log.error("cannot write the access log %s: %s", self.target, exc)

    def _stream(self) -> TextIO:
        if self.target == "-":
            return sys.stderr
        assert self.target is not None
        if self.file is not None:
            try:
                moved = os.stat(self.target).st_ino != os.fstat(self.file.fileno()).st_ino
            except FileNotFoundError:
                moved = True
            if moved:  # logrotate: write to the new file from now on
                self.file.close()
                self.file = None
        if self.file is None:
            self.file = open(self.target, "a", encoding="utf-8")
        return self.file

    def request(self, record: AccessRecord) -> None:
        if self.enabled:
            json_line = self.format == "json"
            self._emit(_json(request_fields(record)) if json_line else request_line(record))

    def audit(self, event: AuditEvent) -> None:
        """An event of the audit trail (handlers/ops/audit.py). Sign-ins and sign-outs
        are written at once, so that a crash loses none; refusals, which anyone can cause
        by the thousand, are buffered like requests."""
        if not self.enabled:
            log_without_access_log(event)
            return
        self._emit(_json(event.fields()) if self.format == "json" else event.line())
        if event.event != REFUSED:
            self.flush()

    def websocket(self, record: AccessRecord) -> None:
        """A WebSocket session that has ended."""
        if self.enabled:
            json_line = self.format == "json"
            self._emit(_json(websocket_fields(record)) if json_line else websocket_line(record))


def request_line(record: AccessRecord) -> str:
    """A request's line in nginx's combined format, with the proxy's fields appended."""
    upstream = record.upstream_seconds
    return (
        f"{_who(record)}"
        f' "{_escaped(record.method)} {_escaped(record.target)} {record.protocol}"'
        f" {record.status} {record.sent}"
        f' "{_escaped(record.referer or "-")}" "{_escaped(record.user_agent or "-")}"'
        f" site={record.site} rt={record.seconds:.3f}"
        f" urt={'-' if upstream is None else f'{upstream:.3f}'}"
    )


def websocket_line(record: AccessRecord) -> str:
    """A WebSocket session's line: who and when as for a request, then its traffic."""
    counts = record.websocket or WebSocketCounts()
    return (
        f'{_who(record)} "WEBSOCKET {_escaped(record.target)}" {counts.code or "-"}'
        f" site={record.site} duration={record.seconds:.3f}"
        f" frames_in={counts.frames_in} frames_out={counts.frames_out}"
        f" bytes_in={counts.bytes_in} bytes_out={counts.bytes_out}"
    )


def _json(fields: dict[str, Any]) -> str:
    return json.dumps(fields, separators=(",", ":"))


def _who(record: AccessRecord) -> str:
    """Who and when, as nginx's combined format writes them."""
    when = time.strftime("%d/%b/%Y:%H:%M:%S %z", time.localtime(record.time))
    return f"{record.client} - {_escaped(record.user or '-')} [{when}]"
