"""Who is signed in: the ``Identity`` every way of signing in ends with (the local user
list, an OpenID Connect provider, an LDAP directory), and the session cookie that
carries it.

The session is a signed, expiring cookie (Tornado's signed values, which carry their
time): no state on the server, so every instance sharing ``config.cookie_secret``
accepts it, and a reload or a restart signs nobody out. It holds the name, the e-mail
address, the groups and how the user signed in, as compact JSON: never a token from the
provider, so it stays far under the 4 KB a browser keeps for a cookie. Of the groups it
keeps only those the configuration names (a site's ``groups``, its per-group ``allow``
and ``deny``), unless a site is told the user's groups (``pass_identity``); even then,
past ``MAX_COOKIE_BYTES`` only the named ones are kept, with a log line.
"""

from __future__ import annotations

import json
import logging
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass

from tornado.web import create_signed_value, decode_signed_value

from filters.names import SESSION_COOKIE

log = logging.getLogger(__name__)

# A browser keeps at least 4096 bytes per cookie, name and attributes included.
MAX_COOKIE_BYTES = 3500
METHODS = ("local", "oidc", "ldap")


@dataclass(frozen=True, slots=True)
class Identity:
    """A signed-in user."""

    name: str
    email: str | None = None
    groups: frozenset[str] = frozenset()
    method: str = "local"  # one of METHODS: how the user signed in

    def in_any(self, groups: Iterable[str]) -> bool:
        return not self.groups.isdisjoint(groups)


_PRINTABLE = "".join(chr(c) for c in range(0x20, 0x7F))


def _header_safe(text: str, also: str = "") -> str:
    """``text`` fit for a header value: printable ASCII as it is, anything else (and
    ``also``) percent-encoded as UTF-8, so that no name can smuggle a line break or make
    a list ambiguous."""
    if text.isascii() and text.isprintable() and not any(c in text for c in also + "%"):
        return text
    safe = "".join(c for c in _PRINTABLE if c not in also + "%")
    return urllib.parse.quote(text, safe=safe)


def identity_fields(
    identity: Identity, user: str, email: str, groups: str
) -> list[tuple[str, str]]:
    """The headers that tell a backend who is signed in, under the configured names:
    the user, the e-mail address (when known), the groups comma-separated (a comma in
    a group's name is percent-encoded)."""
    out = [(user, _header_safe(identity.name))]
    if identity.email:
        out.append((email, _header_safe(identity.email)))
    out.append((groups, ",".join(_header_safe(g, ",") for g in sorted(identity.groups))))
    return out


class Sessions:
    """Issues and reads the session cookie. ``named_groups`` are the groups the
    configuration names; with ``all_groups``, the cookie keeps every group of the user
    (a site passes them on), as far as it fits."""

    def __init__(
        self, secret: str, seconds: int, named_groups: frozenset[str], all_groups: bool
    ) -> None:
        self.secret = secret
        self.seconds = seconds
        self.named_groups = named_groups
        self.all_groups = all_groups

    def issue(self, identity: Identity) -> str:
        groups = identity.groups if self.all_groups else identity.groups & self.named_groups
        value = self._sign(identity, groups)
        if len(value) > MAX_COOKIE_BYTES:
            log.warning(
                "%s belongs to %d groups, too many for a session cookie: only the %d that"
                " the configuration names are kept",
                identity.name,
                len(identity.groups),
                len(identity.groups & self.named_groups),
            )
            value = self._sign(identity, identity.groups & self.named_groups)
        return value

    def _sign(self, identity: Identity, groups: frozenset[str]) -> str:
        data = {"n": identity.name, "m": identity.method}
        if identity.email:
            data["e"] = identity.email
        payload = json.dumps({**data, "g": sorted(groups)}, separators=(",", ":"))
        return create_signed_value(self.secret, SESSION_COOKIE, payload).decode("ascii")

    def identity(self, value: str | None) -> Identity | None:
        """The identity a cookie value carries; None when it is absent, forged or
        expired."""
        if not value:
            return None
        decoded = decode_signed_value(
            self.secret, SESSION_COOKIE, value, max_age_days=self.seconds / 86400
        )
        if not decoded:
            return None
        try:
            data = json.loads(decoded)
            name, method = data["n"], data["m"]
            groups = frozenset(data.get("g", ()))
            email = data.get("e")
        except (ValueError, KeyError, TypeError):
            return None
        if not isinstance(name, str) or method not in METHODS:
            return None
        if not all(isinstance(g, str) for g in groups):
            return None
        return Identity(name, email if isinstance(email, str) else None, groups, method)


__all__ = ["MAX_COOKIE_BYTES", "METHODS", "Identity", "Sessions", "identity_fields"]
