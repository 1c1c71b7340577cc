"""The in-page URL shim: its script (handlers/assets/shim.js), served under /.proxy/, and
the decision, per response, to load it into an HTML page.

The script is the same for every page of a proxy: the page's site travels in the tag's
``data-site`` attribute, the backends' origins are written into the script when the
proxy starts, and its URL carries a hash of its text, so that browsers may keep it for
a year and still never run a stale copy.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import secrets
from collections.abc import Mapping
from html import escape
from pathlib import Path

import rjsmin

from filters.names import SHIM_PATH
from filters.pipeline import kind_of, media_type
from handlers.config.sites import Site, SiteTable
from handlers.mapping.csp import admit_shim
from handlers.upstream.exchange import Fields

_SOURCE = Path(__file__).parent.parent / "assets" / "shim.js"
_PLACEHOLDER = "/*ORIGINS*/{}"
# What a request for a page is: a document, or a document in a frame. A fetch() of
# HTML (Sec-Fetch-Dest: empty) gets its HTML as the backend sent it.
_PAGE_DESTINATIONS = frozenset({"document", "iframe", "frame", "embed", "object"})
_CSP_FIELDS = ("content-security-policy", "content-security-policy-report-only")


def backend_origins(table: SiteTable) -> dict[str, str]:
    """Every origin under which a page may name a configured backend (the site table's,
    handlers/config/table.py: each backend's netloc in both schemes), as the shim spells it,
    ``scheme://host[:port]`` with the scheme's default port left out, mapped to the
    site's name."""
    return {
        f"{scheme}://{host}" + ("" if default else f":{port}"): site.name
        for scheme, host, port, default, site in table.origins()
    }


class Shim:
    """The shim's script for one site table, and the tag that loads it."""

    def __init__(self, table: SiteTable) -> None:
        source = _SOURCE.read_text(encoding="utf-8")
        if _PLACEHOLDER not in source:
            raise RuntimeError(f"{_SOURCE} has lost its {_PLACEHOLDER} placeholder")
        origins = json.dumps(backend_origins(table), sort_keys=True, separators=(",", ":"))
        # Comments and white space are for readers of the source, not for every browser.
        self.body: bytes = rjsmin.jsmin(source.replace(_PLACEHOLDER, origins)).encode("utf-8")
        self.gzipped: bytes = gzip.compress(self.body, mtime=0)
        self.version: str = hashlib.sha256(self.body).hexdigest()[:16]
        self.url: str = f"{SHIM_PATH}?v={self.version}"
        self._tags: dict[str, str] = {}
        self._tags = {site.name: self.tag(site.name) for site in table}

    def tag(self, site: str, nonce: str | None = None) -> str:
        if nonce is None and site in self._tags:
            return self._tags[site]
        extra = f' nonce="{nonce}"' if nonce else ""
        return f'<script src="{self.url}" data-site="{escape(site)}"{extra}></script>'

    def plan(
        self, site: Site, request_headers: Mapping[str, str], fields: Fields
    ) -> tuple[str | None, Fields]:
        """The tag to put in this response's page (None: none) and the response's
        fields, with any Content-Security-Policy amended to admit exactly that tag."""
        if not site.shim:
            return None, fields
        dest = request_headers.get("Sec-Fetch-Dest")
        if dest is not None and dest not in _PAGE_DESTINATIONS:
            return None, fields
        content_type, has_policy = None, False
        for name, value in fields:
            lname = name.lower()
            if lname == "content-type":
                content_type = value
            elif lname in _CSP_FIELDS:
                has_policy = True
        if kind_of(media_type(content_type)[0]) != "html":
            return None, fields
        if not has_policy:
            return self.tag(site.name), fields
        host = request_headers.get("Host")
        if not host:
            return None, fields
        nonce = secrets.token_urlsafe(18)
        source = f"{host}{SHIM_PATH}"
        amended: Fields = []
        use_nonce = False
        for name, value in fields:
            lname = name.lower()
            if lname in _CSP_FIELDS:
                result = admit_shim(value, nonce, source)
                if lname == _CSP_FIELDS[0] and not result.allows_shim:
                    return None, fields  # scripts are off in this page: so is the shim
                value = result.policy
                use_nonce = use_nonce or result.uses_nonce
            amended.append((name, value))
        return self.tag(site.name, nonce if use_nonce else None), amended


__all__ = ["Shim", "backend_origins"]
