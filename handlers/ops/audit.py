"""The audit trail: who signed in, signed out, failed to sign in, or was refused, from
where, for which site and path, and why. Each event is a line of the access log, in its
format (combined or JSON), and counts in the metrics (``web_proxy_logins_total`` by
method and result, ``web_proxy_refusals_total`` by site and reason). With the access
log off, the lines go to the proxy's own log instead: an audit trail is not optional.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

SIGN_IN = "sign-in"
SIGN_IN_FAILED = "sign-in-failed"
SIGN_OUT = "sign-out"
REFUSED = "refused"


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One event of the trail. ``method`` is how the user signed in (local, oidc, ldap);
    ``status`` the answer the client got (401, 403, 429, 503...)."""

    event: str
    client: str
    user: str | None
    path: str
    reason: str = ""
    site: str | None = None
    method: str | None = None
    status: int | None = None
    time: float = field(default_factory=time.time)

    def fields(self) -> dict[str, Any]:
        return {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(self.time)),
            "audit": self.event,
            "client": self.client,
            "user": self.user,
            "method": self.method,
            "site": self.site,
            "path": self.path,
            "status": self.status,
            "reason": self.reason,
        }

    def line(self) -> str:
        """The event as nginx's combined format would begin it, then its fields."""
        when = time.strftime("%d/%b/%Y:%H:%M:%S %z", time.localtime(self.time))
        return (
            f"{self.client} - {_quoted(self.user or '-')} [{when}]"
            f' "AUDIT {self.event} {_quoted(self.path)}" {self.status or "-"}'
            f" site={self.site or '-'} method={self.method or '-'}"
            f' reason="{_quoted(self.reason)}"'
        )


def _quoted(text: str) -> str:
    """Safe inside a log line's quotes: no quote, backslash or control character."""
    return "".join(c if c.isprintable() and c not in '"\\' else f"\\x{ord(c):02x}" for c in text)


def log_without_access_log(event: AuditEvent) -> None:
    log.warning("%s", event.line())


__all__ = [
    "REFUSED",
    "SIGN_IN",
    "SIGN_IN_FAILED",
    "SIGN_OUT",
    "AuditEvent",
    "log_without_access_log",
]
