"""The proxy's own pages: the site list, health, and error pages that share its look."""

from __future__ import annotations

from html import escape

from tornado.web import RequestHandler

from handlers.context import ProxyContext
from handlers.headers import cookie_value
from handlers.sites import PROXY_PAGES, SITE_PREFIX, SiteTable

_STYLE = """
body{font:16px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;background:#f6f7f9;color:#1d2430}
main{max-width:44rem;margin:3rem auto;padding:0 1.25rem}
h1{font-size:1.5rem;margin:0 0 .25rem} p.sub{color:#5b6573;margin:0 0 1.5rem}
ul.sites{list-style:none;padding:0;margin:0;background:#fff;border:1px solid #dde1e7;border-radius:8px}
ul.sites li{display:flex;justify-content:space-between;align-items:center;padding:.75rem 1rem;border-top:1px solid #eef0f3}
ul.sites li:first-child{border-top:0}
a{color:#1f5fbf;text-decoration:none} a:hover{text-decoration:underline}
.name{font-weight:600} .url{color:#5b6573;font-size:.85rem}
.current{font-size:.75rem;background:#e3f0ff;color:#1f5fbf;border-radius:4px;padding:.1rem .4rem;margin-left:.5rem}
.code{font-size:3rem;font-weight:700;color:#b3261e;margin:0}
"""


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


class PageHandler(RequestHandler):
    """Base for the proxy's own pages: error pages in the house style, no traceback."""

    def initialize(self, context: ProxyContext) -> None:
        self.context = context

    def write_error(self, status_code: int, **kwargs: object) -> None:
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")
        reason = self._reason or "Error"
        self.finish(error_html(status_code, reason, "The proxy could not answer this request."))

    def send_error_page(self, status: int, title: str, detail: str) -> None:
        self.clear()
        self.set_status(status)
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")
        if self.request.method == "HEAD":
            self.flush()
            self.finish()
        else:
            self.finish(error_html(status, title, detail))


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
