"""The kinds of value a setting may take beyond numbers, flags and choices: networks,
regular expressions, a login's users, a charset, a file. Each says what it expects in
words (the error message and docs/settings.md use the same text) and parses a value
into what the proxy uses. Pure; imports only the standard library and filters.charsets.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Sequence

from filters.charsets import codec_name
from handlers.config.spec import Kind

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

NETWORKS_EXPECTED = 'a list of addresses or networks, e.g. ["127.0.0.1", "10.0.0.0/8"]'


def networks(value: object) -> tuple[Network, ...]:
    """A list of addresses or networks (``trusted_proxies``, ``client_allow``) parsed;
    ValueError for anything else (a lone string, above all: it would otherwise be read
    one character at a time), whose text names the entry at fault, if one is."""
    if isinstance(value, str | bytes) or not isinstance(value, list | tuple | set | frozenset):
        raise ValueError
    out = []
    for entry in value:
        if not isinstance(entry, str):
            raise ValueError
        try:
            out.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f"{entry!r} is neither") from None
    return tuple(out)


def _network_texts(value: object) -> tuple[str, ...]:
    networks(value)
    return tuple(value)  # type: ignore[arg-type]  # networks() checked it is a collection


# The proxy's options keep the networks as written (handlers/context.py parses them);
# a site's are parsed once here.
NETWORK_TEXTS = Kind(NETWORKS_EXPECTED, _network_texts)
NETWORKS = Kind(NETWORKS_EXPECTED, networks)


def _patterns(value: object) -> tuple[re.Pattern[str], ...]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ValueError
    out = []
    for source in value:
        try:
            out.append(re.compile(source))
        except (re.error, TypeError) as exc:
            raise ValueError(f"{source!r} is not a regular expression ({exc})") from None
    return tuple(out)


PATTERNS = Kind("a list of regular expressions", _patterns)


def _users(value: object) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ValueError
    for name, hashed in value.items():
        if not isinstance(name, str) or not name or not isinstance(hashed, str):
            raise ValueError
        if not hashed.startswith("$argon2"):
            raise ValueError(f"the hash of {name!r} is not an argon2 hash")
    return dict(value)


LOGIN_USERS = Kind(
    'a dict of user name -> password hash, e.g. {"alice": "$argon2id$..."}'
    " (make one with: python proxy.py --hash-password)",
    _users,
)


def _user_names(value: object) -> frozenset[str] | None:
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, Sequence | set | frozenset):
        raise ValueError
    if not all(isinstance(name, str) for name in value):
        raise ValueError
    return frozenset(value)


USER_NAMES = Kind("a list of user names (or None: every user)", _user_names)


def _secret(value: object) -> str | None:
    if value is not None and (not isinstance(value, str) or len(value) < 16):
        raise ValueError
    return value


SECRET = Kind("a random string of at least 16 characters (or None)", _secret)


def _log_target(value: object) -> str | None:
    if value is not None and (not isinstance(value, str) or not value):
        raise ValueError
    return value


LOG_TARGET = Kind('"-" (standard error), a file path, or None (no access log)', _log_target)

_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _level(value: object) -> str:
    if not isinstance(value, str) or value.upper() not in _LEVELS:
        raise ValueError
    return value.upper()


LEVEL = Kind("one of " + ", ".join(repr(level) for level in _LEVELS), _level)


def _charset(value: object) -> str | None:
    if value is not None and (not isinstance(value, str) or codec_name(value) is None):
        raise ValueError
    return value


CHARSET = Kind("a charset name such as 'GBK' (or None: UTF-8)", _charset)


def _file(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError
    if not os.path.isfile(value):
        raise ValueError(f"file {value!r} does not exist")
    return value


PEM_FILE = Kind("the path of a PEM file of CA certificates (or None)", _file)


def _names(value: object) -> frozenset[str] | None:
    names = _user_names(value)
    if names is not None and not all(names):
        raise ValueError
    return names


GROUP_NAMES = Kind("a list of group names (or None: no group gives access)", _names)
WORDS = Kind('a list of words, e.g. ["openid", "email"]', lambda v: tuple(sorted(_names(v) or ())))


def _group_patterns(value: object) -> tuple[tuple[str | None, re.Pattern[str]], ...]:
    """A list of regexes (for everyone), or a dict of group -> list of regexes, "*" for
    everyone: each pattern with the group it applies to (None: everyone)."""
    if isinstance(value, dict):
        out = []
        for group, sources in value.items():
            if not isinstance(group, str) or not group:
                raise ValueError(f"{group!r} is not a group name")
            for pattern in _patterns(sources):
                out.append((None if group == "*" else group, pattern))
        return tuple(out)
    return tuple((None, pattern) for pattern in _patterns(value))


GROUP_PATTERNS = Kind(
    'a list of regular expressions, or a dict of group -> list of them ("*": everyone)',
    _group_patterns,
)


def _optional_text(value: object) -> str | None:
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise ValueError
    return value


TEXT = Kind("a string (or None)", _optional_text)


def _http_url(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not re.match(r"https?://[^/?#\s]+(/[^?#\s]*)?$", value):
        raise ValueError
    return value  # as written: an OIDC issuer is compared exactly, trailing "/" and all


HTTP_URL = Kind("an http:// or https:// URL (or None)", _http_url)


def _ldap_url(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not re.match(r"ldaps?://[^/?#\s]+/?$", value):
        raise ValueError
    return value.rstrip("/")


LDAP_URL = Kind("an ldap://host[:port] or ldaps://host[:port] URL (or None)", _ldap_url)


SECRET_FILE = Kind("the path of a file holding the secret (or None)", _file)


# Fields the proxy writes itself or that frame the message: no identity header may take
# their names.
_RESERVED_HEADERS = frozenset(
    {
        "host", "content-length", "transfer-encoding", "connection", "keep-alive", "te",
        "trailer", "upgrade", "cookie", "authorization", "proxy-authorization",
        "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-forwarded-prefix",
        "x-real-ip", "forwarded", "expect", "x-scheme", "proxy-connection", "content-type",
        "content-encoding", "origin", "referer", "sec-websocket-key", "sec-websocket-version",
        "sec-websocket-protocol", "sec-websocket-extensions", "sec-websocket-accept",
    }
)  # fmt: skip


def _header_name(value: object) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9-]+", value):
        raise ValueError
    if value.lower() in _RESERVED_HEADERS:
        raise ValueError(f"{value!r} is a field the proxy sets or needs itself")
    return value


HEADER_NAME = Kind('a header field name, e.g. "X-Forwarded-User"', _header_name)

__all__ = [
    "CHARSET",
    "GROUP_NAMES",
    "GROUP_PATTERNS",
    "HEADER_NAME",
    "HTTP_URL",
    "LDAP_URL",
    "LEVEL",
    "LOGIN_USERS",
    "LOG_TARGET",
    "NETWORKS",
    "NETWORKS_EXPECTED",
    "NETWORK_TEXTS",
    "PATTERNS",
    "PEM_FILE",
    "SECRET",
    "SECRET_FILE",
    "TEXT",
    "USER_NAMES",
    "WORDS",
    "Network",
    "networks",
]
