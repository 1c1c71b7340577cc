"""Who may reach what: the client's address, client networks, per-site path rules, and the
optional login's sessions and throttling. Pure, apart from the clock.

The checks, in order, for a request that names a site (handlers/door/target.py):
1. the client's address is in ``config.client_allow`` (when set) and in the site's
   ``client_allow`` (when set);
2. with ``config.users`` set, the client has a valid session, and is one of the site's
   ``users`` (when set);
3. the backend path with its query passes the site's ``deny`` and ``allow`` regexes.
A refusal is a 403 page that says nothing of the path upstream: no upstream request is
made for it.
"""

from __future__ import annotations

import ipaddress
import re
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import NamedTuple

from tornado.web import create_signed_value, decode_signed_value

from filters.names import SESSION_COOKIE
from handlers.config.values import Network, networks


def client_ip(remote_ip: str, headers: Mapping[str, str], trusted: Callable[[str], bool]) -> str:
    """The client's address: the socket's, unless the socket's peer is a trusted proxy
    (nginx in front), which names the client in ``X-Real-IP`` or as the last untrusted
    address of ``X-Forwarded-For``. From anyone else those headers are forgeries."""
    if not trusted(remote_ip):
        return remote_ip
    real = (headers.get("X-Real-Ip") or "").strip()
    if real:
        return real
    chain = [a.strip() for a in (headers.get("X-Forwarded-For") or "").split(",") if a.strip()]
    for address in reversed(chain):
        if not trusted(address):
            return address
    return chain[0] if chain else remote_ip


def in_any(address: str, nets: tuple[Network, ...]) -> bool:
    """Whether ``address`` is in one of ``nets`` (none: never)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in nets)


def in_networks(address: str, allowed: tuple[Network, ...]) -> bool:
    """Whether ``address`` is in one of ``allowed``; an empty tuple allows everyone."""
    return not allowed or in_any(address, allowed)


def path_allowed(
    path_and_query: str, allow: tuple[re.Pattern[str], ...], deny: tuple[re.Pattern[str], ...]
) -> bool:
    """``deny`` wins; without ``allow``, everything not denied passes."""
    if any(p.search(path_and_query) for p in deny):
        return False
    return not allow or any(p.search(path_and_query) for p in allow)


class Sessions:
    """Signed, expiring session cookies that every instance sharing the secret accepts
    (no state on the server): Tornado's signed values, which carry their time."""

    def __init__(self, secret: str, seconds: int) -> None:
        self.secret = secret
        self.seconds = seconds

    def issue(self, user: str) -> str:
        return create_signed_value(self.secret, SESSION_COOKIE, user).decode("ascii")

    def user(self, value: str | None) -> str | None:
        if not value:
            return None
        decoded = decode_signed_value(
            self.secret, SESSION_COOKIE, value, max_age_days=self.seconds / 86400
        )
        return decoded.decode("utf-8", "replace") if decoded else None


class Throttle:
    """Failed logins per key (a client address, a user name): past ``limit`` failures
    within ``window`` seconds, further tries wait until the oldest failure ages out.

    Not bounded in memory: every key with a failure holds an entry. Past 10,000 keys,
    the entries that ``wait`` has emptied (all their failures aged out) are dropped, but
    an entry with a failure in it stays, so 30,000 distinct names tried make 30,000
    entries."""

    def __init__(self, limit: int = 5, window: float = 300.0) -> None:
        self.limit = limit
        self.window = window
        self._failures: dict[str, deque[float]] = {}

    def wait(self, *keys: str, now: float | None = None) -> float:
        """Seconds before another try is heard from any of ``keys`` (0: now)."""
        now = time.monotonic() if now is None else now
        longest = 0.0
        for key in keys:
            failures = self._failures.get(key)
            if not failures:
                continue
            while failures and failures[0] <= now - self.window:
                failures.popleft()
            if len(failures) >= self.limit:
                longest = max(longest, failures[0] + self.window - now)
        return longest

    def failed(self, *keys: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        for key in keys:
            self._failures.setdefault(key, deque()).append(now)
        if len(self._failures) > 10_000:  # drop up to 5,000 keys with no failures left
            for key in [k for k, v in self._failures.items() if not v][:5000]:
                del self._failures[key]

    def succeeded(self, *keys: str) -> None:
        for key in keys:
            self._failures.pop(key, None)


class Decision(NamedTuple):
    allowed: bool
    login: bool = False  # refused because nobody is logged in: offer the login page


ALLOWED = Decision(True)
REFUSED = Decision(False)
LOGIN = Decision(False, login=True)


__all__ = [
    "ALLOWED",
    "LOGIN",
    "REFUSED",
    "Decision",
    "Sessions",
    "Throttle",
    "client_ip",
    "in_any",
    "in_networks",
    "networks",
    "path_allowed",
]
