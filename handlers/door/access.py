"""Who may reach what: the client's address, client networks, per-site path rules, and the
(the throttling of failed sign-ins is handlers/door/throttle.py). Pure.

The checks, in order, for a request that names a site (handlers/door/target.py):
1. the client's address is in ``config.client_allow`` (when set) and in the site's
   ``client_allow`` (when set);
2. with signing in on, the client has a valid session (handlers/door/identity.py), and
   is one of the site's ``users`` or a member of one of its ``groups`` (when either is
   set);
3. the backend path with its query passes the site's ``deny`` and ``allow`` regexes that
   apply to the user (those of everyone and of the user's groups).
A refusal is a 403 page that says nothing of the path upstream: no upstream request is
made for it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from typing import NamedTuple

from handlers.config.values import Network, networks

# A site's path rules: (group, regex), the group None for everyone.
Rules = tuple[tuple[str | None, re.Pattern[str]], ...]


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
    path_and_query: str, allow: Rules, deny: Rules, groups: frozenset[str] = frozenset()
) -> bool:
    """A rule applies to everyone (group None) or to members of its group. An applying
    ``deny`` rule wins; a site with ``allow`` rules lets through only what an applying
    one matches (none applies to the user: nothing), and without any, everything not
    denied passes."""
    if any(p.search(path_and_query) for g, p in deny if g is None or g in groups):
        return False
    if not allow:
        return True
    return any(p.search(path_and_query) for g, p in allow if g is None or g in groups)


class Decision(NamedTuple):
    allowed: bool
    login: bool = False  # refused because nobody is signed in: offer the login page
    reason: str = ""  # why it was refused, for the audit trail and the metrics


ALLOWED = Decision(True)
LOGIN = Decision(False, login=True, reason="not signed in")
BY_NETWORK = Decision(False, reason="client address")
BY_USER = Decision(False, reason="user or group")
BY_PATH = Decision(False, reason="path rule")


__all__ = [
    "ALLOWED",
    "BY_NETWORK",
    "BY_PATH",
    "BY_USER",
    "LOGIN",
    "Decision",
    "Rules",
    "client_ip",
    "in_any",
    "in_networks",
    "networks",
    "path_allowed",
]
