"""The proxy's options: each ``Config`` setting declared once (type, default, range,
help), read once and checked whole at start-up.

The declaration below is the single source: ``Defaults`` (what settings.Config starts
from), the check of every value, the front door's limits and docs/settings.md are all
derived from it (handlers/config/spec.py). Each setting is one line, its help the
docstring beneath it: the settings then read as a table, one row each, rather than as
forty blocks of keyword lines alike in all but their values. A wrong value stops the
proxy with one line that names the setting, the value and what was expected, rather
than being half-read (``trusted_proxies = "10.0.0.0/8"`` would be ten one-character
entries) or ending in a traceback (``max_body_size = "10G"``); so does a misspelt name
(``rewrite_max_byte``), which would otherwise be ignored.
"""

from __future__ import annotations

import ipaddress
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from handlers.config.errors import ConfigError, did_you_mean
from handlers.config.signin import SignInOptions
from handlers.config.spec import GiB, KiB, MiB, Spec, setting, specs
from handlers.config.values import LEVEL, LOG_TARGET, LOGIN_USERS, NETWORK_TEXTS, SECRET


@dataclass(frozen=True)
class Options:
    """The proxy's behaviour. A field's ``name`` is what settings.Config calls it, when
    that differs from the field's."""

    clear_old_cookies: bool = setting(True, name="is_to_clear_old_cookies")
    """When the user opens another site, expire the old site's fallback cookies: its session
    then no longer rides on unprefixed requests, while its tabs opened by prefix stay
    logged in. Backend cookies are always kept per site."""

    max_clients: int = setting(200, low=1, high=10_000, name="async_http_client_max_clients")
    """Backend requests running at once per proxy process."""

    upstream_queue: int = setting(1000, low=0, high=1_000_000)
    """Requests that may wait for one of those; past that, 503 with Retry-After: 5."""

    rewrite_max_bytes: int = setting(8 * MiB, low=0, high=GiB, unit="bytes")
    """Text bodies larger than this are passed on unchanged instead of rewritten."""

    request_map_max_bytes: int = setting(8 * MiB, low=0, high=GiB, unit="bytes")
    """Text request bodies (forms, JSON, XML) up to this size are held whole so that the
    proxy's URLs in them are mapped back to the backend's (BackendSite map_requests);
    larger ones are passed on unchanged, with a log line."""

    max_body_size: int = setting(10 * GiB, low=0, high=2**62, unit="bytes")
    """Request bodies (uploads) larger than this are refused with 413. Bodies that are not
    mapped stream to the backend as they arrive, never held whole."""

    trusted_proxies: tuple[str, ...] = setting(("127.0.0.1", "::1"), kind=NETWORK_TEXTS)
    """Proxies in front of this one (nginx) whose X-Forwarded-For, X-Forwarded-Proto,
    X-Forwarded-Host and X-Real-IP are believed and appended to."""

    max_uri_bytes: int = setting(8 * KiB, low=256, high=MiB, unit="bytes")
    """A longer request target is answered 414."""

    max_header_bytes: int = setting(32 * KiB, low=KiB, high=MiB, unit="bytes")
    """A larger request header block is answered 431."""

    max_header_count: int = setting(100, low=10, high=10_000)
    """A request with more header fields is answered 431."""

    client_header_timeout: float = setting(60.0, low=0, high=3600, unit="seconds")
    """How long a client may take to send a request's head."""

    client_body_timeout: float = setting(60.0, low=0, high=3600, unit="seconds")
    """How long a request body may stop arriving (the backend holding it back aside)
    before the request is answered 408."""

    client_allow: tuple[str, ...] = setting((), kind=NETWORK_TEXTS)
    """Networks whose clients may use the proxy at all (empty: everyone)."""

    users: Mapping[str, str] = setting({}, kind=LOGIN_USERS)
    """The optional local login: its users and their password hashes. Empty: none (other
    ways of signing in are the sign-in settings below)."""

    cookie_secret: str | None = setting(None, kind=SECRET)
    """Signs the sign-in's sessions; the same on every instance. Required with any way of
    signing in."""

    session_seconds: int = setting(8 * 3600, low=60, high=30 * 86400, unit="seconds")
    """How long a login lasts."""

    shutdown_grace_seconds: float = setting(25.0, low=0, high=3600, unit="seconds")
    """SIGTERM stops taking connections and lets requests in flight finish for up to this
    long (keep it under supervisor's stopwaitsecs, 30 in deploy/)."""

    access_log: str | None = setting("-", kind=LOG_TARGET)
    """One line per request: "-" is standard error, else a file path (reopened when
    logrotate moves it); None turns it off."""

    access_log_format: str = setting("combined", choices=("combined", "json"))
    """combined: nginx's, with timings; json: one object a line."""

    metrics_allow: tuple[str, ...] = setting(("127.0.0.0/8", "::1"), kind=NETWORK_TEXTS)
    """Who may read `/.proxy/metrics` (Prometheus text format)."""

    logging_level: str = setting("INFO", kind=LEVEL, name="LOGGING_LEVEL")
    """How much the proxy logs (--logging on the command line wins)."""

    debug: bool = setting(False, name="DEBUG")
    """Accepted and ignored (kept from the original's settings); LOGGING_LEVEL sets how
    much is logged."""

    # Not a setting (nothing reads it from the user's file): a response whose
    # Content-Length is at most this is sent in one write with its headers; longer or
    # open-ended ones are forwarded as they arrive.
    small_body_bytes: int = 64 * KiB

    # The sign-in settings (handlers/config/signin.py), read from the same Config.
    signin: SignInOptions = field(default_factory=SignInOptions)

    @property
    def login(self) -> bool:
        """Whether people must sign in: a local user list, a provider or a directory."""
        signin = self.signin
        return bool(self.users or signin.oidc_issuer or signin.ldap_url)

    @classmethod
    def from_config(cls, config: object) -> Options:
        """Every setting of ``config`` checked; a name that no setting declares, or the
        first bad value, raises ConfigError."""
        _refuse_undeclared(config, specs(cls) + specs(SignInOptions))
        values = _read(config, cls)
        signin = SignInOptions(**_read(config, SignInOptions))
        options = cls(**values, signin=signin)
        if options.login and values["cookie_secret"] is None:
            raise ConfigError(
                "config.cookie_secret is not set: signing in (config.users, oidc_issuer or"
                " ldap_url) needs a random string of at least 16 characters, the same on"
                " every instance, to sign its sessions",
                "users" if values["users"] else "cookie_secret",
            )
        check_signin(signin)
        return options


def _loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def _read(config: object, cls: type) -> dict[str, Any]:
    """The settings ``cls`` declares, read from ``config`` and checked."""
    values: dict[str, Any] = {}
    for spec in specs(cls):
        value = getattr(config, spec.name, spec.default)
        try:
            values[spec.field] = spec.check(value)
        except ValueError as exc:
            raise ConfigError(f"config.{spec.name} = {value!r}: {exc}", spec.name) from None
    return values


def check_signin(signin: SignInOptions) -> None:
    """What the sign-in settings ask of each other, and of the network: secrets and
    passwords go in clear only to this host."""
    names = [
        signin.identity_user_header.lower(),
        signin.identity_email_header.lower(),
        signin.identity_groups_header.lower(),
    ]
    if len(set(names)) < 3:
        raise ConfigError(
            "config.identity_user_header, identity_email_header and identity_groups_header"
            " must be three different names",
            "identity_user_header",
        )
    if signin.oidc_issuer is not None:
        issuer = urllib.parse.urlsplit(signin.oidc_issuer)
        if issuer.scheme != "https" and not _loopback(issuer.hostname):
            raise ConfigError(
                f"config.oidc_issuer = {signin.oidc_issuer!r}: expected https (the client"
                " secret and the tokens would cross the network in clear)",
                "oidc_issuer",
            )
        if signin.oidc_client_secret_file is not None:
            try:
                secret = signin.client_secret()
            except (OSError, UnicodeError) as exc:
                raise ConfigError(
                    f"config.oidc_client_secret_file: cannot read it ({exc})",
                    "oidc_client_secret_file",
                ) from None
            if not secret:
                raise ConfigError(
                    "config.oidc_client_secret_file: the file is empty", "oidc_client_secret_file"
                )
        if signin.oidc_client_id is None:
            raise ConfigError(
                "config.oidc_client_id is not set: oidc_issuer needs it", "oidc_issuer"
            )
        if (signin.oidc_client_secret is None) == (signin.oidc_client_secret_file is None):
            raise ConfigError(
                "config.oidc_client_secret: give it, or oidc_client_secret_file, not both",
                "oidc_client_secret",
            )
    if signin.ldap_url is not None:
        url = urllib.parse.urlsplit(signin.ldap_url)
        if url.scheme == "ldap" and not signin.ldap_starttls and not _loopback(url.hostname):
            raise ConfigError(
                "config.ldap_starttls = False: passwords would cross the network in clear;"
                " only a directory on this host (127.0.0.1, ::1, localhost) may go without TLS",
                "ldap_starttls",
            )
        if signin.ldap_user_dn is None or "{name}" not in signin.ldap_user_dn:
            raise ConfigError(
                "config.ldap_user_dn must hold {name}: what to bind as, e.g."
                " 'uid={name},ou=people,dc=example,dc=org' or '{name}@corp.example'",
                "ldap_user_dn" if signin.ldap_user_dn is not None else "ldap_url",
            )
        if signin.ldap_user_base is None and "=" not in signin.ldap_user_dn:
            raise ConfigError(
                "config.ldap_user_base is not set: with ldap_user_dn not a DN (Active"
                " Directory's name@domain) the user's entry must be searched for",
                "ldap_user_dn",
            )


def _refuse_undeclared(config: object, declared: tuple[Spec, ...]) -> None:
    """A misspelt setting (``config.rewrite_max_byte = ...``) would be silently ignored:
    refuse any attribute of ``config`` or its classes that no setting declares. Not
    counted: names in capitals (the original's settings had more than DEBUG and
    LOGGING_LEVEL), ``_private`` ones and methods, which are the user's own."""
    names = {spec.name for spec in declared}
    # A field's own name suggests its name in the file: max_clients, did you mean
    # async_http_client_max_clients?
    spellings = {s.name.lower(): s.name for s in declared} | {s.field: s.name for s in declared}
    holders = [config, *(c for c in type(config).__mro__ if c.__module__ != "builtins")]
    for holder in holders:
        for name, value in getattr(holder, "__dict__", {}).items():
            if name.startswith("_") or name.isupper() or name in names:
                continue
            if callable(value) or isinstance(value, property | classmethod | staticmethod):
                continue
            hint = did_you_mean(name, spellings) or (
                " (docs/settings.md lists them; start a name of your own with _)"
            )
            raise ConfigError(f"config.{name} is not a setting{hint}", name)


class Defaults:
    """Every setting at its default, under its name in settings.Config (generated from
    Options; docs/settings.md lists them)."""


for _spec in specs(Options) + specs(SignInOptions):
    _default = _spec.default
    setattr(Defaults, _spec.name, _default.copy() if isinstance(_default, dict) else _default)


__all__ = ["Defaults", "Options"]
