"""``BackendSite``: one backend as the user declares it, each keyword declared once (type,
default, range, help) for its check and docs/settings.md (handlers/config/spec.py).

This is what settings.py imports, so it stays light: the standard library, the spec and
the value kinds. handlers/config/sites.py checks a declaration and builds the ``Site``
that the handlers use.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from handlers.config.spec import setting
from handlers.config.values import CHARSET, NETWORKS, PATTERNS, PEM_FILE, USER_NAMES

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
    timeout: float = setting(
        60.0,
        low=0,
        high=86400,
        unit="seconds",
        help="Seconds without any data from the backend before the request fails (504).",
    )
    connect_timeout: float = setting(
        10.0,
        low=0,
        high=86400,
        unit="seconds",
        help="Seconds to establish the connection (502 when it fails).",
    )
    validate_cert: bool = setting(True, help="Verify an https backend's certificate.")
    ca_certs: str | None = setting(
        None,
        kind=PEM_FILE,
        help="CA certificates to verify an https backend with (an intranet CA).",
    )
    auto_rewrite: bool = setting(
        True,
        help="Rewrite absolute URLs of every configured backend in this site's text"
        " bodies to `/.site.<name>`.",
    )
    prefix_links: bool = setting(
        True, help="Give root-relative links in HTML and CSS this site's prefix."
    )
    charset: str | None = setting(
        None,
        kind=CHARSET,
        help="The charset of pages that declare none (old intranet sites often serve"
        " undeclared GBK).",
    )
    shim: bool = setting(
        True,
        help="Load the in-page URL shim in this site's HTML pages, so that URLs its"
        " scripts build reach it too.",
    )
    description: str = setting("", help="A line shown for the site in the proxy's site list.")
    knows_proxy: bool = setting(
        False,
        help="The backend takes the proxy's address for its own (it trusts"
        " X-Forwarded-Host, like Django's USE_X_FORWARDED_HOST): the proxy's URLs in"
        " request headers (Origin, Referer, Destination, If) are left as they are, not"
        " mapped to the backend's.",
    )
    map_requests: bool = setting(
        True,
        help="Map the proxy's URLs in what clients send (form fields, JSON, XML and text"
        " bodies, query strings) back to the backends' own, so that what users save is"
        " stored as if saved directly.",
    )
    allow: Sequence[str] = setting(
        (),
        kind=PATTERNS,
        help="Regexes searched in the backend path with its query: with an allow list, a"
        " request matching none is refused with 403 and never sent.",
    )
    deny: Sequence[str] = setting(
        (),
        kind=PATTERNS,
        help="Regexes searched likewise: a request matching one is refused with 403.",
    )
    client_allow: Sequence[str] = setting(
        (),
        kind=NETWORKS,
        help="Networks whose clients may open this site (empty: everyone the proxy lets in).",
    )
    users: Sequence[str] | None = setting(
        None,
        kind=USER_NAMES,
        help="With config.users set: the users who may open this site (None: every user).",
    )


__all__ = ["BackendSite"]
