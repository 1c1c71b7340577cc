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
import logging.handlers
import re
import sys
import time
from typing import Any

_UNSAFE = re.compile(r'[\x00-\x1f"\\\x7f-\xff]')


def _escaped(text: str) -> str:
    """As nginx escapes a logged field: quotes, backslashes and control bytes as \\xHH."""
    return _UNSAFE.sub(lambda m: f"\\x{ord(m.group()):02X}", text)


class AccessLog:
    """Writes access records; ``target`` "-" is standard error, None turns it off."""

    def __init__(self, target: str | None, fmt: str) -> None:
        self.format = fmt
        self.enabled = target is not None
        self.handler: logging.Handler | None = None
        self.logger: logging.Logger | None = None
        if target is None:
            return
        if target == "-":
            self.handler = logging.StreamHandler(sys.stderr)
        else:
            # Reopened when logrotate moves the file away.
            self.handler = logging.handlers.WatchedFileHandler(target)
        self.handler.setFormatter(logging.Formatter("%(message)s"))
        logger = logging.Logger("web_proxy.access")  # not in the hierarchy: no propagation
        logger.addHandler(self.handler)
        self.logger = logger

    def close(self) -> None:
        if self.handler is not None:
            self.handler.close()

    def request(self, fields: dict[str, Any]) -> None:
        if self.logger is None:
            return
        if self.format == "json":
            line = json.dumps({"type": "request", **fields}, separators=(",", ":"))
        else:
            upstream = fields["upstream_seconds"]
            line = (
                f"{fields['client']} - {_escaped(fields['user'] or '-')}"
                f" [{time.strftime('%d/%b/%Y:%H:%M:%S %z', time.localtime(fields['time']))}]"
                f' "{_escaped(fields["method"])} {_escaped(fields["target"])}'
                f' {fields["protocol"]}" {fields["status"]} {fields["bytes"]}'
                f' "{_escaped(fields["referer"] or "-")}"'
                f' "{_escaped(fields["user_agent"] or "-")}"'
                f" site={fields['site']} rt={fields['seconds']:.3f}"
                f" urt={'-' if upstream is None else f'{upstream:.3f}'}"
            )
        self.logger.info(line)

    def websocket(self, fields: dict[str, Any]) -> None:
        """A WebSocket session that has ended."""
        if self.logger is None:
            return
        if self.format == "json":
            line = json.dumps({"type": "websocket", **fields}, separators=(",", ":"))
        else:
            line = (
                f"{fields['client']} - {_escaped(fields['user'] or '-')}"
                f" [{time.strftime('%d/%b/%Y:%H:%M:%S %z', time.localtime(fields['time']))}]"
                f' "WEBSOCKET {_escaped(fields["target"])}" {fields["code"] or "-"}'
                f" site={fields['site']} duration={fields['seconds']:.3f}"
                f" frames_in={fields['frames_in']} frames_out={fields['frames_out']}"
                f" bytes_in={fields['bytes_in']} bytes_out={fields['bytes_out']}"
            )
        self.logger.info(line)
