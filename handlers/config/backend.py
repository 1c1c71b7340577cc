"""``BackendSite``: one backend as the user declares it, each keyword declared once (type,
default, range, help) for its check and docs/settings.md (handlers/config/spec.py).

This is what settings.py imports, so it stays light: the standard library, the spec and
the value kinds. handlers/config/sites.py checks a declaration and builds the ``Site``
that the handlers use.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from handlers.config.errors import ConfigError, did_you_mean
from handlers.config.spec import setting
from handlers.config.values import (
    CHARSET,
    GROUP_NAMES,
    GROUP_PATTERNS,
    NETWORKS,
    PEM_FILE,
    USER_NAMES,
)

if TYPE_CHECKING:
    from filters.rules import SubsFilterRules


@dataclass(frozen=True)
class BackendSite:
    """One backend, in the original's shape: ``BackendSite(name, url, netloc, filter_rules)``
    and the optional keywords below (docs/settings.md lists them)."""

    name: str
    url: str
    netloc: str | None = None
    filter_rules: Sequence[SubsFilterRules] = ()
    timeout: float = setting(60.0, low=0, high=86400, unit="seconds")
    """Seconds without any data from the backend before the request fails (504)."""

    connect_timeout: float = setting(10.0, low=0, high=86400, unit="seconds")
    """Seconds to establish the connection (502 when it fails)."""

    validate_cert: bool = setting(True)
    """Verify an https backend's certificate."""

    ca_certs: str | None = setting(None, kind=PEM_FILE)
    """CA certificates to verify an https backend with (an intranet CA)."""

    auto_rewrite: bool = setting(True)
    """Rewrite absolute URLs of every configured backend in this site's text bodies to
    `/.site.<name>`."""

    prefix_links: bool = setting(True)
    """Give root-relative links in HTML and CSS this site's prefix."""

    charset: str | None = setting(None, kind=CHARSET)
    """The charset of pages that declare none (old intranet sites often serve undeclared
    GBK)."""

    shim: bool = setting(True)
    """Load the in-page URL shim in this site's HTML pages, so that URLs its scripts build
    reach it too."""

    description: str = setting("")
    """A line shown for the site in the proxy's site list."""

    knows_proxy: bool = setting(False)
    """The backend takes the proxy's address for its own (it trusts X-Forwarded-Host, like
    Django's USE_X_FORWARDED_HOST): the proxy's URLs in request headers (Origin, Referer,
    Destination, If) are left as they are, not mapped to the backend's."""

    map_requests: bool = setting(True)
    """Map the proxy's URLs in what clients send (form fields, JSON, XML and text bodies,
    query strings) back to the backends' own, so that what users save is stored as if
    saved directly."""

    allow: Sequence[str] | Mapping[str, Sequence[str]] = setting((), kind=GROUP_PATTERNS)
    """Regexes searched in the backend path with its query: with an allow list, a request
    matching none that applies to the user is refused with 403 and never sent. A dict
    gives them per group, `{"staff": [".*"], "*": ["^/public/"]}` ("*": everyone)."""

    deny: Sequence[str] | Mapping[str, Sequence[str]] = setting((), kind=GROUP_PATTERNS)
    """Regexes searched likewise: a request matching one that applies to the user is
    refused with 403. A dict gives them per group, as for allow."""

    client_allow: Sequence[str] = setting((), kind=NETWORKS)
    """Networks whose clients may open this site (empty: everyone the proxy lets in)."""

    users: Sequence[str] | None = setting(None, kind=USER_NAMES)
    """With signing in on: the users who may open this site (None: every signed-in user,
    unless groups is given)."""

    groups: Sequence[str] | None = setting(None, kind=GROUP_NAMES)
    """With signing in on: the groups whose members may open this site (beside users;
    None: no group gives access, and with users None too, every signed-in user may)."""

    pass_identity: bool = setting(False)
    """Tell the backend who is signed in: the user, e-mail and groups headers
    (config.identity_user_header and the next two). Off: the backend learns nothing of
    the user. Either way, what a client sends under those names is removed."""

    def __new__(cls, *args: Any, **keywords: Any) -> BackendSite:
        # Before the generated __init__ refuses a misspelt keyword (time_out=5) with a
        # TypeError that, on Python 3.11, names no alternative: say which one was meant.
        known = {f.name: f.name for f in fields(cls)}
        unknown = sorted(keywords.keys() - known.keys())
        if unknown:
            keyword, site = unknown[0], args[0] if args else keywords.get("name")
            hint = did_you_mean(keyword, known) or " (docs/settings.md lists them)"
            raise ConfigError(
                f"site {site!r}: {keyword}={keywords[keyword]!r} is not a BackendSite"
                f" keyword{hint}",
                keyword,
                site,
            )
        return super().__new__(cls)


__all__ = ["BackendSite"]
