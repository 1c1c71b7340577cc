"""The proxy's options: each ``Config`` setting with its type and range, read once and
checked whole at start-up, and where in the user's file a bad value was set.

A wrong value stops the proxy with one line that names the setting, the file and line
where it was set, the value, and what was expected, rather than being half-read
(``trusted_proxies = "10.0.0.0/8"`` would be ten one-character entries) or ending in
a traceback (``max_body_size = "10G"``).
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from handlers.config.sites import SettingError, Site
from handlers.door.access import networks

KiB, MiB, GiB = 1024, 1024**2, 1024**3


class Spec(NamedTuple):
    """One setting: its name in ``Config``, the Options field, its default, and a check
    that returns the value to use or raises ValueError saying what was expected."""

    name: str
    field: str
    default: Any
    check: Callable[[object], Any]


def _bool(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError("True or False")
    return value


def _integer(low: int, high: int) -> Callable[[object], int]:
    def check(value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"a whole number from {low:,} to {high:,}")
        return value

    return check


def _seconds(low: float, high: float) -> Callable[[object], float]:
    def check(value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not low < value <= high:
            raise ValueError(f"a number of seconds above {low:g}, at most {high:g}")
        return float(value)

    return check


def _networks(value: object) -> tuple[str, ...]:
    networks(value)  # raises ValueError saying what was expected
    return tuple(value)  # type: ignore[arg-type]  # networks() checked it is a collection


def _users(value: object) -> dict[str, str]:
    expected = (
        'a dict of user name -> password hash, e.g. {"alice": "$argon2id$..."}'
        " (make one with: python proxy.py --hash-password)"
    )
    if not isinstance(value, dict):
        raise ValueError(expected)
    for name, hashed in value.items():
        if not isinstance(name, str) or not name or not isinstance(hashed, str):
            raise ValueError(expected)
        if not hashed.startswith("$argon2"):
            raise ValueError(f"{expected}; the hash of {name!r} is not an argon2 hash")
    return dict(value)


def _secret(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) < 16:
        raise ValueError("a random string of at least 16 characters (or None)")
    return value


def _log_target(value: object) -> str | None:
    if value is not None and (not isinstance(value, str) or not value):
        raise ValueError('"-" (standard error), a file path, or None (no access log)')
    return value


def _log_format(value: object) -> str:
    if value not in ("combined", "json"):
        raise ValueError('"combined" (nginx\'s, with timings) or "json" (one object a line)')
    return str(value)


_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _level(value: object) -> str:
    if not isinstance(value, str) or value.upper() not in _LEVELS:
        raise ValueError("one of " + ", ".join(repr(level) for level in _LEVELS))
    return value.upper()


SPECS = (
    Spec("is_to_clear_old_cookies", "clear_old_cookies", True, _bool),
    Spec("async_http_client_max_clients", "max_clients", 200, _integer(1, 10_000)),
    Spec("upstream_queue", "upstream_queue", 1000, _integer(0, 1_000_000)),
    Spec("rewrite_max_bytes", "rewrite_max_bytes", 8 * MiB, _integer(0, 1 * GiB)),
    Spec("request_map_max_bytes", "request_map_max_bytes", 8 * MiB, _integer(0, 1 * GiB)),
    Spec("max_body_size", "max_body_size", 10 * GiB, _integer(0, 2**62)),
    Spec("trusted_proxies", "trusted_proxies", ("127.0.0.1", "::1"), _networks),
    Spec("max_uri_bytes", "max_uri_bytes", 8 * KiB, _integer(256, 1 * MiB)),
    Spec("max_header_bytes", "max_header_bytes", 32 * KiB, _integer(1 * KiB, 1 * MiB)),
    Spec("max_header_count", "max_header_count", 100, _integer(10, 10_000)),
    Spec("client_header_timeout", "client_header_timeout", 60.0, _seconds(0, 3600)),
    Spec("client_body_timeout", "client_body_timeout", 60.0, _seconds(0, 3600)),
    Spec("client_allow", "client_allow", (), _networks),
    Spec("users", "users", {}, _users),
    Spec("cookie_secret", "cookie_secret", None, _secret),
    Spec("session_seconds", "session_seconds", 8 * 3600, _integer(60, 30 * 86400)),
    Spec("shutdown_grace_seconds", "shutdown_grace_seconds", 25.0, _seconds(0, 3600)),
    Spec("access_log", "access_log", "-", _log_target),
    Spec("access_log_format", "access_log_format", "combined", _log_format),
    Spec("metrics_allow", "metrics_allow", ("127.0.0.0/8", "::1"), _networks),
    Spec("LOGGING_LEVEL", "logging_level", "INFO", _level),
    Spec("DEBUG", "debug", False, _bool),
)


@dataclass(frozen=True)
class Options:
    """The proxy's behaviour, read once from the user's ``config`` object (SPECS says
    what each field is called there, its default and its range)."""

    clear_old_cookies: bool = True
    max_clients: int = 200
    # Requests that wait for one of max_clients; past that, 503 with Retry-After.
    upstream_queue: int = 1000
    rewrite_max_bytes: int = 8 * MiB
    # Request bodies up to this size are held whole to map the proxy's URLs in them
    # back (filters/requestbody.py); larger ones stream to the backend unchanged.
    request_map_max_bytes: int = 8 * MiB
    trusted_proxies: tuple[str, ...] = ("127.0.0.1", "::1")
    max_body_size: int = 10 * GiB
    # A response whose Content-Length is at most this is sent in one write with its
    # headers; longer or open-ended ones are forwarded as they arrive.
    small_body_bytes: int = 64 * KiB
    # Limits of a request's head (handlers/door/frontdoor.py), and how long a client may take
    # to send it.
    max_uri_bytes: int = 8 * KiB
    max_header_bytes: int = 32 * KiB
    max_header_count: int = 100
    client_header_timeout: float = 60.0
    # Seconds a request body may stop arriving (the backend holding it back aside).
    client_body_timeout: float = 60.0
    # Who may come in (handlers/door/access.py): client networks for the whole proxy, and
    # the optional login.
    client_allow: tuple[str, ...] = ()
    users: Mapping[str, str] = field(default_factory=dict)
    cookie_secret: str | None = None
    session_seconds: int = 8 * 3600
    # Operating it (README: "Operating it"): how long SIGTERM lets requests in flight
    # finish, the access log ("-": standard error; a path; None: off) and its format, and
    # the networks that may read /.proxy/metrics.
    shutdown_grace_seconds: float = 25.0
    access_log: str | None = "-"
    access_log_format: str = "combined"
    metrics_allow: tuple[str, ...] = ("127.0.0.0/8", "::1")
    logging_level: str = "INFO"
    debug: bool = False

    @classmethod
    def from_config(cls, config: object) -> Options:
        """Every setting checked; the first bad one raises SettingError."""
        values: dict[str, Any] = {}
        for spec in SPECS:
            value = getattr(config, spec.name, spec.default)
            try:
                values[spec.field] = spec.check(value)
            except ValueError as exc:
                raise SettingError(
                    f"config.{spec.name} = {value!r}: expected {exc}", spec.name
                ) from None
        if values["users"] and values["cookie_secret"] is None:
            raise SettingError(
                "config.cookie_secret is not set: a login (config.users) needs a random"
                " string of at least 16 characters, the same on every instance, to sign"
                " its sessions",
                "users",
            )
        return cls(**values)


def check_sites(table: Iterable[Site], options: Options) -> None:
    """What the sites ask of the options: their ``users`` must be users of the login."""
    for site in table:
        if site.users is None:
            continue
        if not options.users:
            raise SettingError(
                f"site {site.name!r}: users={sorted(site.users)!r}: expected config.users to"
                " define them (the login is off)",
                "users",
                site.name,
            )
        unknown = sorted(site.users - set(options.users))
        if unknown:
            raise SettingError(
                f"site {site.name!r}: users: {unknown!r} not in config.users", "users", site.name
            )


def locate(path: str, setting: str, site: str | None = None) -> int | None:
    """The line of ``path`` where ``setting`` was last given a value: an assignment
    ``setting = ...`` (in a Config class) or ``config.setting = ...``; for a site's
    keyword, that keyword in the ``BackendSite("site", ...)`` call, or the call itself.
    None when the file does not say (the value came from elsewhere)."""
    try:
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
    except (OSError, SyntaxError, ValueError):
        return None
    found: int | None = None
    for node in ast.walk(tree):
        if site is not None:
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", getattr(node.func, "attr", None)) == "BackendSite"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and node.args[0].value == site
            ):
                keyword = next((k for k in node.keywords if k.arg == setting), None)
                return (keyword or node).lineno
            continue
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign | ast.AugAssign):
            targets = [node.target]
        else:
            continue
        for target in targets:
            name = getattr(target, "id", None) or getattr(target, "attr", None)
            if name == setting and (found is None or node.lineno > found):
                found = node.lineno
    return found


__all__ = ["SPECS", "Options", "SettingError", "Spec", "check_sites", "locate"]
