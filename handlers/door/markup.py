"""The proxy's own pages as HTML: the house look, the site list and the error page.

Pure functions of what a page shows; the front door (handlers/door/frontdoor.py) and the
handlers (handlers/door/pages.py) both render through them.
"""

from __future__ import annotations

from collections.abc import Collection
from html import escape
from pathlib import Path

from filters.names import LOGOUT_PATH, PROXY_PAGES, SITE_PREFIX, STATUS_PATH
from handlers.config.sites import SiteTable

# The pages carry their style inline: they must work offline and with no other route.
_STYLE = (Path(__file__).parent.parent / "assets" / "pages.css").read_text(encoding="utf-8")


def render_page(title: str, body_html: str) -> str:
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><main>{body_html}</main></body></html>"
    )


# Fills in each site's health from /.proxy/status/<name> after the page has shown.
_HEALTH_SCRIPT = (
    f'var STATUS = "{STATUS_PATH}";'
    + """
document.querySelectorAll("[data-site]").forEach(function (row) {
  var badge = row.querySelector(".health");
  fetch(STATUS + encodeURIComponent(row.dataset.site), {cache: "no-store"})
    .then(function (r) { return r.json(); })
    .then(function (s) {
      badge.textContent = s.up ? "up" : "down";
      badge.title = s.detail;
      badge.className = "health " + (s.up ? "up" : "down");
    })
    .catch(function () { badge.textContent = "unknown"; });
});
"""
)


def site_list_html(
    table: SiteTable,
    current: str | None,
    visible: Collection[str] | None = None,
    user: str | None = None,
) -> str:
    """The site list: the sites in ``visible`` (all when None), and who is logged in."""
    items = []
    for site in table:
        if visible is not None and site.name not in visible:
            continue
        name = escape(site.name)
        mark = '<span class="current">current</span>' if site.name == current else ""
        about = (
            f"<br><span class=about>{escape(site.description)}</span>" if site.description else ""
        )
        items.append(
            f'<li data-site="{name}"><span><a class="name" href="{SITE_PREFIX}{name}/">'
            f"{name}</a>{mark}<br><span class=url>{escape(site.base_url)}</span>{about}</span>"
            f'<span><span class="health">checking</span> '
            f'<a class="open" href="{SITE_PREFIX}{name}/">open &rarr;</a></span></li>'
        )
    chosen = (
        f"Your browser is on <b>{escape(current)}</b>: links without a prefix go there."
        if current in table.by_name
        else "Open a site to browse it through the proxy."
    )
    if not items:
        chosen = "There is no site here that you may open."
    who = (
        f'<form class=who method=post action="{LOGOUT_PATH}">Logged in as '
        f"<b id=user>{escape(user)}</b> <button>Log out</button></form>"
        if user
        else ""
    )
    return render_page(
        "web_proxy: sites",
        f"{who}<h1>Sites behind this proxy</h1>"
        f"<p class=sub>{chosen}</p>"
        f'<ul class="sites">{"".join(items)}</ul>'
        f"<script>{_HEALTH_SCRIPT}</script>",
    )


def error_html(status: int, title: str, detail: str) -> str:
    return render_page(
        f"{status} {title}",
        f"<p class=code>{status}</p><h1>{escape(title)}</h1><p>{escape(detail)}</p>"
        f'<p><a href="{PROXY_PAGES}">&larr; All sites</a></p>',
    )
