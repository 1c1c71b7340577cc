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
from collections.abc import Callable
from typing import Any, TextIO

from tornado.ioloop import IOLoop

log = logging.getLogger(__name__)

_UNSAFE = re.compile(r'[\x00-\x1f"\\\x7f-\xff]')


def _escaped(text: str) -> str:
    """As nginx escapes a logged field: quotes, backslashes and control bytes as \\xHH."""
    return _UNSAFE.sub(lambda m: f"\\x{ord(m.group()):02X}", text)


def record(method: str, status: int, sent: int, received: int = 0, site: str = "-") -> dict:
    """One request's fields as the metrics read them (handlers/ops/metrics.py); ``describe``
    adds what the access log also shows. The relay fills in the upstream ones."""
    return {
        "method": method,
        "status": status,
        "bytes": sent,
        "received": received,
        "site": site,
        "upstream_seconds": None,
        "rewrite_seconds": None,
        "upstream_error": None,
        "request_body": None,  # what mapping the request body did (handlers/relay/upload.py)
    }


def describe(
    fields: dict,
    *,
    seconds: float,
    client: str,
    user: str | None,
    target: str,
    protocol: str,
    headers: Any,
) -> None:
    """Add the access log's fields to a ``record``: the request took ``seconds``."""
    fields.update(
        time=time.time() - seconds,  # when it arrived
        client=client,
        user=user,
        target=target,
        protocol=protocol,
        referer=headers.get("Referer"),
        user_agent=headers.get("User-Agent"),
        seconds=seconds,
        pid=os.getpid(),  # which process served it (--processes)
    )


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

    def request(self, fields: dict[str, Any]) -> None:
        upstream = fields.get("upstream_seconds")
        self._write(
            "request",
            fields,
            lambda: (
                f' "{_escaped(fields["method"])} {_escaped(fields["target"])}'
                f' {fields["protocol"]}" {fields["status"]} {fields["bytes"]}'
                f' "{_escaped(fields["referer"] or "-")}"'
                f' "{_escaped(fields["user_agent"] or "-")}"'
                f" site={fields['site']} rt={fields['seconds']:.3f}"
                f" urt={'-' if upstream is None else f'{upstream:.3f}'}"
            ),
        )

    def websocket(self, fields: dict[str, Any]) -> None:
        """A WebSocket session that has ended."""
        self._write(
            "websocket",
            fields,
            lambda: (
                f' "WEBSOCKET {_escaped(fields["target"])}" {fields["code"] or "-"}'
                f" site={fields['site']} duration={fields['seconds']:.3f}"
                f" frames_in={fields['frames_in']} frames_out={fields['frames_out']}"
                f" bytes_in={fields['bytes_in']} bytes_out={fields['bytes_out']}"
            ),
        )

    def _write(self, kind: str, fields: dict[str, Any], rest: Callable[[], str]) -> None:
        """One line: JSON, or who and when as nginx writes them, then ``rest()``."""
        if not self.enabled:
            return
        if self.format == "json":
            line = json.dumps({"type": kind, **fields}, separators=(",", ":"))
        else:
            when = time.strftime("%d/%b/%Y:%H:%M:%S %z", time.localtime(fields["time"]))
            line = f"{fields['client']} - {_escaped(fields['user'] or '-')} [{when}]{rest()}"
        self._emit(line)
