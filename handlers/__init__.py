"""HTTP handlers, site resolution and the application that ties them together."""

from __future__ import annotations

from tornado.routing import Rule
from tornado.web import Application

from handlers.context import Options, ProxyContext
from handlers.pages import HealthHandler, ShimHandler, SiteListHandler, SiteStatusHandler
from handlers.proxy import ProxyHandler
from handlers.sites import BackendSite, ConfigError, SiteTable, build_site_table
from handlers.upstream import make_client
from handlers.websocket import WebSocketRelay, WebSocketUpgrade

__all__ = ["BackendSite", "ConfigError", "Options", "ProxyContext", "SiteTable", "make_app"]


def make_app(table: SiteTable, options: Options, **settings: object) -> Application:
    """The proxy application for a validated site table. It makes its own HTTP client;
    tests and embedders build one per site table they want to serve."""
    context = ProxyContext(table=table, options=options, client=make_client(options.max_clients))
    args = {"context": context}
    return Application(
        [
            Rule(WebSocketUpgrade(), WebSocketRelay, args),
            (r"/\.proxy/?", SiteListHandler, args),
            (r"/\.proxy/health", HealthHandler, args),
            (r"/\.proxy/shim\.js", ShimHandler, args),
            (r"/\.proxy/status/([^/]+)", SiteStatusHandler, args),
            (r".*", ProxyHandler, args),
        ],
        # The proxy's own behaviour must not depend on Tornado's debug conveniences.
        compress_response=False,
        **settings,
    )


def build_app_from_settings(forward_list: object, config: object) -> Application:
    """Validate the user's settings and build the application (raises ConfigError)."""
    return make_app(build_site_table(forward_list), Options.from_config(config))
