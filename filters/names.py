"""The proxy's reserved names: the one place that spells them.

Every name here is one a backend's pages and cookies share with the proxy on one host,
so each must be spelled the same wherever it is made or recognised: the ``/.site.``
prefix (made by the body filters and header rewriting, read by routing), the proxy's own
pages under ``/.proxy/``, and the cookies the proxy keeps for itself.

Why in filters/: the body filters need the prefix and its regexes, and filters/ is the
lower layer (pure body transforms, which import nothing of handlers/). A module here is
importable by both layers without a circle; one in handlers/ would make filters/ depend
on the layer above it. This module imports nothing of the project.
"""

from __future__ import annotations

import re

# --- the prefix that names a site: /.site.<name>/<backend path> -----------------------

SITE_PREFIX = "/.site."
# The prefix without its slash: what a JSON-escaped ("\/.site.") or percent-encoded
# ("%2F.site.") prefix still spells literally.
SITE_MARK = SITE_PREFIX[1:]
# A site's name travels in a path segment and in a cookie value: characters that need no
# escaping in either. Dots are allowed because the original's example uses names such as
# "img3.douban"; "~" is not, so a per-site cookie's name says which site it belongs to.
_NAME_FIRST, _NAME_REST = "A-Za-z0-9", "A-Za-z0-9._-"
SITE_NAME = re.compile(rf"[{_NAME_FIRST}][{_NAME_REST}]{{0,63}}")
# The mark followed by a name-like word (group 1), which may run on past a configured
# name ("/.site.wiki." at the end of a sentence): filters/reverse.py looks it up.
SITE_MARK_RE = re.compile(rf"{re.escape(SITE_MARK)}([{_NAME_FIRST}][{_NAME_REST}]*)")
# After a "/": not a scheme-relative URL ("//"), not "\", and not already prefixed. A
# pattern fragment, compiled by the filters for str and for bytes.
NOT_PREFIXED = rf"(?![/\\]|{re.escape(SITE_MARK)})"

# --- the proxy's own pages ---------------------------------------------------------------

PROXY_PAGES = "/.proxy/"  # the site list
HEALTH_PATH = PROXY_PAGES + "health"
METRICS_PATH = PROXY_PAGES + "metrics"
SHIM_PATH = PROXY_PAGES + "shim.js"
LOGIN_PATH = PROXY_PAGES + "login"
LOGOUT_PATH = PROXY_PAGES + "logout"
STATUS_PATH = PROXY_PAGES + "status/"  # + a site's name
OIDC_START_PATH = PROXY_PAGES + "oidc/start"  # off to the OpenID Connect provider
OIDC_CALLBACK_PATH = PROXY_PAGES + "oidc/callback"  # and back, with a code


# --- the proxy's cookies ------------------------------------------------------------------

SITE_COOKIE = ".site"  # the site an unprefixed request goes to
# A backend's cookie kept for unprefixed requests: ".site~<site>~<its name>"
# (handlers/mapping/cookies.py).
FALLBACK_PREFIX = SITE_COOKIE + "~"
# The proxy's own cookies start with this: never sent to a backend, never set by one.
PROXY_COOKIES = ".proxy"
SESSION_COOKIE = PROXY_COOKIES + "-session"  # the sign-in's signed session
# One sign-in at the provider in progress: its state, nonce and PKCE verifier, signed.
OIDC_FLOW_COOKIE = PROXY_COOKIES + "-oidc"


__all__ = [
    "FALLBACK_PREFIX",
    "HEALTH_PATH",
    "LOGIN_PATH",
    "LOGOUT_PATH",
    "METRICS_PATH",
    "NOT_PREFIXED",
    "OIDC_CALLBACK_PATH",
    "OIDC_FLOW_COOKIE",
    "OIDC_START_PATH",
    "PROXY_COOKIES",
    "PROXY_PAGES",
    "SESSION_COOKIE",
    "SHIM_PATH",
    "SITE_COOKIE",
    "SITE_MARK",
    "SITE_MARK_RE",
    "SITE_NAME",
    "SITE_PREFIX",
    "STATUS_PATH",
]
