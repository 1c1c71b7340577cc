"""The proxy's own pages (the site list, health, metrics, the shim, a site's status), and
the base of every handler of the proxy: its access record, error pages in the house style,
and the answers the proxy gives itself (handlers/door/target.py ``Answer``)."""

from __future__ import annotations

from typing import Any

from tornado.concurrent import Future
from tornado.httpclient import HTTPRequest
from tornado.httputil import responses
from tornado.web import RequestHandler

from handlers.context import ProxyContext
from handlers.door import http1
from handlers.door.access import in_networks
from handlers.door.markup import error_html, site_list_html
from handlers.door.target import Answer, site_list
from handlers.mapping.cookies import cookie_value
from handlers.mapping.headers import ends_connection
from handlers.ops.accesslog import describe
from handlers.ops.audit import REFUSED, AuditEvent
from handlers.ops.record import AccessRecord
from handlers.ops.state import ProxyState


class PageHandler(RequestHandler):
    """The base of every handler of the proxy (the WebSocket relay's too): it counts the
    request in and out of the state, keeps its access record, and answers errors with
    the proxy's pages, never a traceback."""

    state: ProxyState
    context: ProxyContext
    record: AccessRecord
    head_flushed = False  # the status line and headers have gone out
    last_on_connection = False  # the response said "Connection: close"

    def initialize(self, state: ProxyState) -> None:
        # The configuration in force when the request starts serves it to the end,
        # whatever a reload does meanwhile (handlers/ops/state.py).
        self.state = state
        self.context = state.context
        self.record = AccessRecord(self.request.method or "GET")
        state.started()

    def on_finish(self) -> None:
        self.state.ended()

    def write(self, chunk: str | bytes | dict) -> None:
        if isinstance(chunk, bytes | str):
            self.record.sent += len(chunk)
        super().write(chunk)

    def access_record(self, full: bool = True) -> AccessRecord:
        """This request's record, complete for the metrics, and with ``full`` for the
        access log too (who asked for what: it costs a little, so only when logged)."""
        record, request = self.record, self.request
        record.status = self.get_status()
        if record.method == "HEAD":
            record.sent = 0  # Tornado left the body out
        if full:
            describe(
                record,
                seconds=request.request_time(),
                client=self.context.client_ip(request),
                user=self.context.user_name(request),
                target=request.uri or "",
                protocol=request.version,
                headers=request.headers,
            )
        return record

    def answer(self, answer: Answer) -> None:
        """Send an answer the proxy gives itself: a redirect, the site list or an error page."""
        if answer.refused is not None:
            request = self.request
            self.state.audit(
                AuditEvent(
                    REFUSED,
                    self.context.client_ip(request),
                    answer.user,
                    request.uri or "",
                    answer.refused,
                    answer.site,
                    status=401 if answer.status == 302 else answer.status,
                )
            )
        if answer.location is not None:
            self.redirect(answer.location, status=answer.status)
            return
        sites = answer.sites
        if sites is None:
            self.send_error_page(answer.status, answer.reason, answer.detail, dict(answer.headers))
            return
        for name, value in answer.headers:
            self.set_header(name, value)
        self.finish(site_list_html(self.context.table, sites.current, sites.visible, sites.user))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")
        reason = str(kwargs.get("reason") or responses.get(status_code, "Error"))
        self.finish(error_html(status_code, reason, "The proxy could not answer this request."))

    def flush(self, include_footers: bool = False) -> Future[None]:
        if not self.head_flushed:
            self.head_flushed = True
            if self.state.draining and self.get_status() != 101:
                # Shutting down: this response says it is the connection's last, so that
                # a client (nginx) never sends another request on it.
                self.set_header("Connection", "close")
                self.last_on_connection = True
        return super().flush(include_footers)

    def finish(self, chunk: str | bytes | dict | None = None) -> Future[None]:
        done = super().finish(chunk)
        request = self.request
        if self.last_on_connection or ends_connection(request.version, request.headers):
            # The client asked for this to be the last response, or it was told so: close
            # once it is sent, whatever Tornado made of the Connection field.
            # The callback holds the connection, not the handler: a handler must be freed
            # by reference counting as soon as it is done (tests/integration/proxy/test_load.py).
            connection = request.connection
            done.add_done_callback(lambda _: http1.close(connection))
        return done

    def close_connection(self) -> None:
        """Close the client's connection now (the interface lacks it: handlers/door/http1.py)."""
        http1.close(self.request.connection)

    def send_error_page(
        self, status: int, title: str, detail: str, headers: dict[str, str] | None = None
    ) -> None:
        self.clear()
        self.set_status(status)
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")
        for name, value in (headers or {}).items():
            self.set_header(name, value)
        # Tornado leaves the body out of a HEAD answer and gives the true length.
        self.finish(error_html(status, title, detail))


class SiteListHandler(PageHandler):
    def get(self) -> None:
        current = cookie_value(self.request.headers.get("Cookie"))
        self.answer(site_list(self.request, self.context, current))

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
                site, self.context.client_ip(client), self.context.identity(client)
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
