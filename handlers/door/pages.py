"""The proxy's own pages: the site list, health, and error pages that share its look."""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tornado.httpclient import HTTPRequest
from tornado.httputil import responses
from tornado.web import RequestHandler

from filters.names import LOGIN_PATH, LOGOUT_PATH, PROXY_PAGES, SITE_PREFIX, STATUS_PATH
from handlers.config.sites import SiteTable
from handlers.context import ProxyContext
from handlers.door.access import in_networks
from handlers.mapping.cookies import cookie_value
from handlers.mapping.headers import ends_connection
from handlers.ops import accesslog

if TYPE_CHECKING:
    from handlers.ops.state import ProxyState

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
    visible: set[str] | None = None,
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


def show_site_list(handler: Any, context: ProxyContext, current: str | None) -> None:
    """The site list, with only the sites this client may open; with the login on and
    nobody logged in, the login page instead."""
    request = handler.request
    ip, user = context.client_ip(request), context.user(request)
    decisions = {site.name: context.may_open(site, ip, user) for site in context.table}
    if any(d.login for d in decisions.values()):
        handler.redirect(LOGIN_PATH)
        return
    visible = {name for name, d in decisions.items() if d.allowed}
    handler.set_header("Cache-Control", "no-store")
    handler.finish(site_list_html(context.table, current, visible, user))


def error_html(status: int, title: str, detail: str) -> str:
    return render_page(
        f"{status} {title}",
        f"<p class=code>{status}</p><h1>{escape(title)}</h1><p>{escape(detail)}</p>"
        f'<p><a href="{PROXY_PAGES}">&larr; All sites</a></p>',
    )


class PageMixin:
    """Error pages in the house style, no traceback: for every handler of the proxy."""

    state: ProxyState
    context: ProxyContext
    site_name = "-"  # the site a request went to; "-" for the proxy's own pages
    sent_bytes = 0  # body bytes written to the client
    received_bytes = 0  # request body bytes read from it
    head_flushed = False  # the status line and headers have gone out
    last_on_connection = False  # the response said "Connection: close"

    def initialize(self, state: ProxyState) -> None:
        # The configuration in force when the request starts serves it to the end,
        # whatever a reload does meanwhile (handlers/ops/state.py).
        self.state = state
        self.context = state.context
        state.started()

    def on_finish(self: Any) -> None:
        self.state.ended()

    def write(self: Any, chunk: Any) -> None:
        if isinstance(chunk, bytes | str):
            self.sent_bytes += len(chunk)
        super().write(chunk)  # type: ignore[misc]

    def access_record(self: Any, full: bool = True) -> dict[str, Any]:
        """This request as the metrics see it, and with ``full`` as the access log does."""
        request = self.request
        method = request.method or "GET"
        fields = accesslog.record(
            method,
            self.get_status(),
            0 if method == "HEAD" else self.sent_bytes,
            self.received_bytes,
            self.site_name,
        )
        if full:
            accesslog.describe(
                fields,
                seconds=request.request_time(),
                client=self.context.client_ip(request),
                user=self.context.user(request),
                target=request.uri or "",
                protocol=request.version,
                headers=request.headers,
            )
        return fields

    def write_error(self: Any, status_code: int, **kwargs: object) -> None:
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")
        reason = str(kwargs.get("reason") or responses.get(status_code, "Error"))
        self.finish(error_html(status_code, reason, "The proxy could not answer this request."))

    def flush(self: Any, include_footers: bool = False) -> Any:
        if not self.head_flushed:
            self.head_flushed = True
            if self.state.draining and self.get_status() != 101:
                # Shutting down: this response says it is the connection's last, so that
                # a client (nginx) never sends another request on it.
                self.set_header("Connection", "close")
                self.last_on_connection = True
        return super().flush(include_footers)  # type: ignore[misc]

    def finish(self: Any, chunk: Any = None) -> Any:
        done = super().finish(chunk)  # type: ignore[misc]
        request = self.request
        if self.last_on_connection or ends_connection(request.version, request.headers):
            # The client asked for this to be the last response, or it was told so: close
            # once it is sent, whatever Tornado made of the Connection field.
            connection = request.connection
            done.add_done_callback(lambda _: connection.close())
        return done

    def send_error_page(
        self: Any, status: int, title: str, detail: str, headers: dict[str, str] | None = None
    ) -> None:
        self.clear()
        self.set_status(status)
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")
        for name, value in (headers or {}).items():
            self.set_header(name, value)
        # Tornado leaves the body out of a HEAD answer and gives the true length.
        self.finish(error_html(status, title, detail))


class PageHandler(PageMixin, RequestHandler):
    pass


class SiteListHandler(PageHandler):
    def get(self) -> None:
        show_site_list(self, self.context, cookie_value(self.request.headers.get("Cookie")))

    head = get


class HealthHandler(PageHandler):
    def get(self) -> None:
        self.set_header("Content-Type", "text/plain; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")
        self.finish("ok\n")

    head = get


class MetricsHandler(PageHandler):
    """``/.proxy/metrics``: Prometheus's text format, for config.metrics_allow only (the
    client's address as the access rules see it: behind nginx, the browser's)."""

    def get(self) -> None:
        if not in_networks(self.context.client_ip(self.request), self.context.metrics_networks):
            self.send_error_page(403, "Forbidden", "The metrics are not open to this address.")
            return
        body, content_type = self.state.metrics.render()
        self.set_header("Content-Type", content_type)
        self.set_header("Cache-Control", "no-store")
        self.finish(body)


class ShimHandler(PageHandler):
    """``/.proxy/shim.js``: the in-page URL shim (handlers/mapping/shim.py). Kept by browsers for
    a year when asked for by its versioned URL, which changes with its text."""

    def get(self) -> None:
        shim = self.context.shim
        self.set_header("Content-Type", "text/javascript; charset=utf-8")
        self.set_header("X-Content-Type-Options", "nosniff")
        if self.get_query_argument("v", None) == shim.version:
            self.set_header("Cache-Control", "public, max-age=31536000, immutable")
        else:
            self.set_header("Cache-Control", "no-cache")
        self.set_header("Vary", "Accept-Encoding")
        if "gzip" in self.request.headers.get("Accept-Encoding", ""):
            self.set_header("Content-Encoding", "gzip")
            self.finish(shim.gzipped)
        else:
            self.finish(shim.body)

    head = get


class SiteStatusHandler(PageHandler):
    """``/.proxy/status/<name>``: can the proxy reach this site now? A HEAD request to
    the site's root with short timeouts; any HTTP answer counts as up."""

    async def get(self, name: str) -> None:
        site = self.context.table.get(name)
        self.set_header("Cache-Control", "no-store")
        client = self.request
        if (
            site is not None
            and not self.context.may_open(
                site, self.context.client_ip(client), self.context.user(client)
            ).allowed
        ):
            site = None  # a site this client may not open is not there for it
        if site is None:
            self.send_error_page(404, "Unknown site", f"No site named {name!r} is configured.")
            return
        request = HTTPRequest(
            site.base_url + "/",
            method="HEAD",
            connect_timeout=min(site.connect_timeout, 2.0),
            request_timeout=min(site.timeout, 3.0),
            follow_redirects=False,
            validate_cert=site.validate_cert,
            ca_certs=site.ca_certs,
        )
        try:
            response = await self.context.client.fetch(request, raise_error=False)
            up, detail = True, f"answered {response.code}"
        except Exception as exc:
            up, detail = False, str(exc)
        self.finish({"site": site.name, "up": up, "detail": detail})
