"""Backend cookies, kept per site.

Every site lives on the proxy's one host, so without care every backend's cookies would
share one cookie space: two sites that both call their session ``sid`` would overwrite
each other, and a backend under a sub-path (``Path=/wiki/``) would never get its cookie
back, because its pages live under ``/.site.wiki/wiki/``.

So each cookie a backend sets for site S with path P becomes two cookies in the browser:

* the **scoped copy**: the same name and value, ``Path=/.site.S<P>``. The browser sends
  it with S's prefixed requests under P, and only with those; it is what
  ``document.cookie`` shows on S's pages.
* the **fallback copy**: named ``.site~S~<name>``, ``Path=<P>``. The browser sends it with
  unprefixed requests under P (those that reach S through the ``.site`` cookie); the
  proxy gives it back to S under its own name and drops every other site's copies.

Both carry the backend's other attributes (``Max-Age``, ``Expires``, ``HttpOnly``,
``SameSite``, ...), so an update, an expiry or a deletion reaches both. Site names
cannot contain ``~``, so a fallback name always says which site it belongs to.

Everything here is pure and unit-tested in tests/unit/test_cookies.py.
"""

from __future__ import annotations

from collections.abc import Collection

from filters.names import FALLBACK_PREFIX, PROXY_COOKIES, SITE_COOKIE, SITE_PREFIX

# The proxy's own cookies (PROXY_COOKIES: the login's session) are never sent to a
# backend, and never settable by one (a backend's cookie of such a name gets only its
# fallback copy, whose name the proxy does not read).
_EXPIRED = "Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT"


def fallback_name(site: str, name: str) -> str:
    return f"{FALLBACK_PREFIX}{site}~{name}"


def _owner(name: str) -> tuple[str, str] | None:
    """(site, backend name) of a fallback copy's name; None for any other name."""
    if not name.startswith(FALLBACK_PREFIX):
        return None
    site, sep, real = name[len(FALLBACK_PREFIX) :].partition("~")
    return (site, real) if sep and site else None


def default_path(request_path: str) -> str:
    """The path a browser gives a cookie set without ``Path`` (RFC 6265 section 5.1.4):
    the request path up to, not including, its last slash; ``/`` at the top."""
    path = request_path.split("?", 1)[0].split("#", 1)[0]
    if not path.startswith("/") or path.count("/") == 1:
        return "/"
    return path[: path.rindex("/")]


def cookie_pairs(cookie_header: str | None) -> list[tuple[str, str]]:
    """The (name, value) pairs of a Cookie request header, in order; the one parser of
    Cookie headers in the proxy."""
    out: list[tuple[str, str]] = []
    if not cookie_header:
        return out
    for part in cookie_header.split(";"):
        name, sep, value = part.partition("=")
        name = name.strip()
        if sep and name:
            out.append((name, value.strip()))
    return out


def cookie_value(cookie_header: str | None, name: str = SITE_COOKIE) -> str | None:
    """The value of cookie ``name`` in a Cookie request header (the last one wins, as in
    most frameworks), without quotes; None when absent."""
    found = None
    for key, value in cookie_pairs(cookie_header):
        if key == name:
            found = value.strip('"')
    return found


def cookies_for_site(cookie_header: str | None, site: str) -> str | None:
    """The Cookie header to send site ``site``: the proxy's own ``.site`` cookie and
    other sites' fallback copies removed, this site's fallback copies under their own
    names (unless the scoped copy of the same name came too: it is the one the page's
    scripts may have changed). None when nothing is left."""
    if not cookie_header:
        return None
    kept: list[tuple[str, str]] = []
    names: set[str] = set()
    fallback: list[tuple[str, str]] = []
    for name, value in cookie_pairs(cookie_header):
        if name == SITE_COOKIE or name.startswith(PROXY_COOKIES):
            continue
        owner = _owner(name)
        if owner is not None:
            if owner[0] == site:
                fallback.append((owner[1], value))
            continue
        kept.append((name, value))
        names.add(name)
    kept.extend((name, value) for name, value in fallback if name not in names)
    return "; ".join(f"{n}={v}" for n, v in kept) or None


def expire_fallback_copies(cookie_header: str | None, site: str) -> list[str]:
    """Set-Cookie values that expire the fallback copies of ``site``'s cookies that came
    with this request (all of them have ``Path=/``: other paths are not sent to a
    prefixed URL of another site)."""
    expired = []
    for name, _ in cookie_pairs(cookie_header):
        owner = _owner(name)
        if owner is not None and owner[0] == site:
            expired.append(f"{name}=; Path=/; {_EXPIRED}")
    return expired


def _reserved(name: str) -> bool:
    return name == SITE_COOKIE or name.startswith((FALLBACK_PREFIX, PROXY_COOKIES))


def scope_set_cookie(
    value: str,
    site: str,
    backend_path: str,
    secure_client: bool,
    backend_hosts: Collection[str],
) -> list[str]:
    """The Set-Cookie values that stand for one Set-Cookie of site ``site``.

    ``backend_path`` is the path the backend was asked for (its default cookie path);
    ``secure_client`` says whether the browser reached the proxy over https: if not,
    ``Secure`` is dropped (the browser would refuse the cookie) and so is
    ``SameSite=None``, which browsers accept only with ``Secure``. A ``Domain`` naming a
    configured backend is dropped: in the browser, the cookie belongs to the proxy's host.
    """
    first, _, rest = value.partition(";")
    name, has_value, _ = first.partition("=")
    name = name.strip()
    path: str | None = None
    attrs: list[str] = []
    secure = False
    for attr in rest.split(";") if rest else ():
        key, _, val = attr.partition("=")
        key = key.strip().lower()
        if key == "path":
            val = val.strip()
            path = val if val.startswith("/") else None  # RFC 6265 section 5.2.4
            continue
        if key == "domain":
            domain = val.strip().lstrip(".").lower()
            if domain in backend_hosts or any(h.endswith("." + domain) for h in backend_hosts):
                continue
        elif key == "secure":
            secure = True
            if not secure_client:
                continue
        elif key == "samesite" and val.strip().lower() == "none" and not secure_client:
            continue
        attrs.append(attr.strip())
    if path is None:
        path = default_path(backend_path)
    tail = "".join(f"; {a}" for a in attrs if a)
    out = []
    lower = name.lower()
    # A scoped copy is impossible for __Host- cookies (they must have Path=/) and for
    # __Secure- cookies that lose Secure here; a backend must not set the proxy's names.
    scoped = (
        bool(has_value and name)
        and not _reserved(name)
        and not lower.startswith("__host-")
        and not (lower.startswith("__secure-") and not (secure and secure_client))
    )
    if scoped:
        out.append(f"{first.strip()}; Path={SITE_PREFIX}{site}{path}{tail}")
    if has_value and name:
        _, _, cookie_value = first.partition("=")
        out.append(f"{fallback_name(site, name)}={cookie_value.strip()}; Path={path}{tail}")
    elif not has_value:
        # "Set-Cookie: token" (no "="): a nameless cookie; keep it scoped to the site.
        out.append(f"{first.strip()}; Path={SITE_PREFIX}{site}{path}{tail}")
    return out


__all__ = [
    "cookie_pairs",
    "cookie_value",
    "cookies_for_site",
    "default_path",
    "expire_fallback_copies",
    "fallback_name",
    "scope_set_cookie",
]
