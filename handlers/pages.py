"""The proxy's own pages: the site list, health, and error pages that share its look."""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

from tornado.web import RequestHandler

from handlers.context import ProxyContext
from handlers.headers import cookie_value
from handlers.sites import PROXY_PAGES, SITE_PREFIX, SiteTable

# The pages carry their style inline: they must work offline and with no other route.
_STYLE = (Path(__file__).parent / "assets" / "pages.css").read_text(encoding="utf-8")


def render_page(title: str, body_html: str) -> str:
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><main>{body_html}</main></body></html>"
    )


def site_list_html(table: SiteTable, current: str | None) -> str:
    items = []
    for site in table:
        mark = '<span class="current">current</span>' if site.name == current else ""
        items.append(
            f'<li><span><a class="name" href="{SITE_PREFIX}{escape(site.name)}/">'
            f"{escape(site.name)}</a>{mark}<br><span class=url>{escape(site.base_url)}</span>"
            f'</span><a href="{SITE_PREFIX}{escape(site.name)}/">open &rarr;</a></li>'
        )
    return render_page(
        "web_proxy: sites",
        "<h1>Sites behind this proxy</h1>"
        "<p class=sub>Open a site to browse it through the proxy.</p>"
        f'<ul class="sites">{"".join(items)}</ul>',
    )


def error_html(status: int, title: str, detail: str) -> str:
    return render_page(
        f"{status} {title}",
        f"<p class=code>{status}</p><h1>{escape(title)}</h1><p>{escape(detail)}</p>"
        f'<p><a href="{PROXY_PAGES}">&larr; All sites</a></p>',
    )


class PageMixin:
    """Error pages in the house style, no traceback: for every handler of the proxy."""

    def initialize(self, context: ProxyContext) -> None:
        self.context = context

    def write_error(self: Any, status_code: int, **kwargs: object) -> None:
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")
        reason = self._reason or "Error"
        self.finish(error_html(status_code, reason, "The proxy could not answer this request."))

    def send_error_page(self: Any, status: int, title: str, detail: str) -> None:
        self.clear()
        self.set_status(status)
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")
        # Tornado leaves the body out of a HEAD answer and gives the true length.
        self.finish(error_html(status, title, detail))


class PageHandler(PageMixin, RequestHandler):
    pass


class SiteListHandler(PageHandler):
    def get(self) -> None:
        current = cookie_value(self.request.headers.get("Cookie"))
        self.set_header("Cache-Control", "no-store")
        self.finish(site_list_html(self.context.table, current))

    head = get


class HealthHandler(PageHandler):
    def get(self) -> None:
        self.set_header("Content-Type", "text/plain; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")
        self.finish("ok\n")

    head = get
