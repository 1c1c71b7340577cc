"""Cutting a URL at its authority: the one way the proxy does it, for routing, the URL
mapping and request bodies alike.

Plain string work rather than ``urllib.parse.urlsplit``, which strips tabs, newlines
and leading control characters and raises on an unmatched ``[``: the parts here keep
exactly the characters the sender wrote. Lives in filters/ for the reason given in
filters/names.py: both layers use it. Imports nothing of the project.
"""

from __future__ import annotations

from typing import NamedTuple

DEFAULT_PORTS = {"http": 80, "https": 443}


class UrlParts(NamedTuple):
    scheme: str  # "http" or "https", lower case; "" for a scheme-relative "//host/x"
    authority: str  # host[:port] as written (userinfo too, if the sender wrote one)
    tail: str  # path, query and fragment as written: "", or starting with "/", "?" or "#"


def split_url(url: str) -> UrlParts | None:
    """``http(s)://authority<tail>`` and ``//authority<tail>`` cut where the authority
    ends; None for anything else (a relative path, another scheme)."""
    if url.startswith("//"):
        scheme, rest = "", url[2:]
    else:
        scheme, sep, rest = url.partition("://")
        scheme = scheme.lower()
        if not sep or scheme not in DEFAULT_PORTS:
            return None
    end = authority_end(rest)
    return UrlParts(scheme, rest[:end], rest[end:])


def authority_end(text: str) -> int:
    """Where the first path, query or fragment delimiter is in ``text`` (its length when
    there is none): the end of an authority, or of the site name after the prefix."""
    end = len(text)
    for stop in "/?#":
        i = text.find(stop, 0, end)
        if i != -1:
            end = i
    return end


def split_hostport(authority: str) -> tuple[str | None, int | None]:
    """``host[:port]`` (``[v6]:port`` too) -> (host in lower case, port or None);
    (None, None) when the port is not a number from 1 to 65535 or a bracket is amiss."""
    if authority.startswith("["):
        host, _, rest = authority[1:].partition("]")
        host = "[" + host + "]"
        if rest and not rest.startswith(":"):
            return None, None
        port_text = rest[1:]
    else:
        host, _, port_text = authority.partition(":")
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            return None, None
        return host.lower(), int(port_text)
    return host.lower(), None


__all__ = ["DEFAULT_PORTS", "UrlParts", "authority_end", "split_hostport", "split_url"]
