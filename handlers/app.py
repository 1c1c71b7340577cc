"""The application: the handlers of every path, and the server with its front door."""

from __future__ import annotations

import re
import ssl
from typing import Any

from tornado.httpserver import HTTPServer
from tornado.routing import Rule
from tornado.web import Application

from filters.names import (
    HEALTH_PATH,
    LOGIN_PATH,
    LOGOUT_PATH,
    METRICS_PATH,
    OIDC_CALLBACK_PATH,
    OIDC_START_PATH,
    PROXY_PAGES,
    SHIM_PATH,
    STATUS_PATH,
)
from handlers.config.options import Options
from handlers.config.sites import SiteTable
from handlers.context import ProxyContext
from handlers.door.frontdoor import FrontDoor, Limits
from handlers.door.login import LoginHandler, LogoutHandler
from handlers.door.pages import (
    HealthHandler,
    MetricsHandler,
    ShimHandler,
    SiteListHandler,
    SiteStatusHandler,
)
from handlers.door.signin import OidcCallbackHandler, OidcStartHandler
from handlers.ops.metrics import Metrics
from handlers.ops.state import ProxyState
from handlers.relay.handler import ProxyHandler
from handlers.relay.websocket import WebSocketRelay, WebSocketUpgrade
from handlers.upstream.client import make_client


def make_app(table: SiteTable, options: Options, **settings: Any) -> Application:
    """The proxy application for a validated site table. It makes its own HTTP client;
    tests and embedders build one per site table they want to serve."""
    # https backends without a ca_certs of their own are checked against the system's
    # CA bundle (a wheel's libcurl may look for one where this system keeps none).
    client = make_client(options.max_clients, ssl.get_default_verify_paths().cafile)
    context = ProxyContext(table=table, options=options, client=client)
    state = ProxyState(context, Metrics())
    args = {"state": state}
    return Application(
        [
            Rule(WebSocketUpgrade(), WebSocketRelay, args),
            (re.escape(PROXY_PAGES) + "?", SiteListHandler, args),
            (re.escape(HEALTH_PATH), HealthHandler, args),
            (re.escape(METRICS_PATH), MetricsHandler, args),
            (re.escape(SHIM_PATH), ShimHandler, args),
            (re.escape(LOGIN_PATH), LoginHandler, args),
            (re.escape(LOGOUT_PATH), LogoutHandler, args),
            (re.escape(OIDC_START_PATH), OidcStartHandler, args),
            (re.escape(OIDC_CALLBACK_PATH), OidcCallbackHandler, args),
            (re.escape(STATUS_PATH) + "([^/]+)", SiteStatusHandler, args),
            (r".*", ProxyHandler, args),
        ],
        # The proxy's own behaviour must not depend on Tornado's debug conveniences.
        compress_response=False,
        # One access log line and the metrics of each request (handlers/ops/state.py).
        log_function=state.log_request,
        # For proxy.py: the state it drains on SIGTERM and reloads on SIGHUP.
        state=state,
        **settings,
    )


def make_server(app: Application, options: Options) -> HTTPServer:
    """The HTTP server for the proxy application, behind its front door (limits and
    framing checks, handlers/door/frontdoor.py). Tornado's own header limit is set well
    above the front door's, so that an oversized head is answered 431 rather than cut
    off; past Tornado's, the connection is closed."""
    state = app.settings.get("state")
    counted = state if isinstance(state, ProxyState) else None
    door = FrontDoor(app, Limits.of(options), counted.log_refusal if counted else None)
    if counted is not None:
        counted.door = door  # a reload changes its limits; a shutdown watches its connections
    return HTTPServer(
        door,
        idle_connection_timeout=options.client_header_timeout,
        max_header_size=4 * (options.max_header_bytes + options.max_uri_bytes),
    )
