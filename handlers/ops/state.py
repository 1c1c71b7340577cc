"""What one proxy process holds across reloads: the configuration in force, what is in
flight, and how it reports (metrics, access log).

Every handler takes ``state.context`` when it starts, so a reload (SIGHUP) swaps the
context for new requests while those in flight finish on the one they began with. A
drain (SIGTERM) stops new work from arriving and waits for what is in flight.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection
from typing import Protocol

from tornado.httputil import HTTPHeaders, RequestStartLine
from tornado.web import RequestHandler

from handlers.config.options import Options
from handlers.config.sites import SiteTable
from handlers.context import ProxyContext
from handlers.ops.accesslog import AccessLog, describe
from handlers.ops.audit import AuditEvent
from handlers.ops.metrics import Metrics
from handlers.ops.record import AccessRecord

log = logging.getLogger(__name__)


class Door(Protocol):
    """The server's front door as the state sees it (handlers/door/frontdoor.py)."""

    @property
    def connections(self) -> Collection[object]:
        """The client connections open now."""

    def configure(self, options: Options) -> None:
        """Take the limits of reloaded options."""


class Session(Protocol):
    """An open WebSocket session as the state sees it (handlers/relay/websocket.py)."""

    def going_away(self) -> None:
        """The proxy is shutting down: close both sides with 1001."""


class ProxyState:
    """The process's state, all of it declared here."""

    __slots__ = ("access_log", "context", "door", "draining", "in_flight", "metrics", "websockets")

    # The configuration in force (each request takes it when it starts).
    context: ProxyContext
    # How the process reports.
    metrics: Metrics
    access_log: AccessLog
    # What is in flight.
    in_flight: int  # handlers started and not finished
    websockets: set[Session]  # open WebSocket sessions
    draining: bool  # shutting down: new responses are their connection's last
    door: Door | None  # the server's front door (set by make_server)

    def __init__(self, context: ProxyContext, metrics: Metrics) -> None:
        self.context = context
        self.metrics = metrics
        self.access_log = AccessLog(context.options.access_log, context.options.access_log_format)
        self.in_flight = 0
        self.websockets = set()
        self.draining = False
        self.door = None
        metrics.count_with(lambda: self.in_flight, lambda: len(self.websockets))

    # --- configuration -----------------------------------------------------------------

    def reload(self, table: SiteTable, options: Options) -> None:
        """Serve new requests with ``table`` and ``options`` (already validated). The
        upstream client and its connections are kept, and so are the failed logins."""
        old = self.context
        client = old.client
        client.max_clients = options.max_clients
        self.context = ProxyContext(table, options, client, old.throttle, previous=old)
        if self.door is not None:
            self.door.configure(options)
        if (options.access_log, options.access_log_format) != (
            old.options.access_log,
            old.options.access_log_format,
        ):
            self.access_log.close()
            self.access_log = AccessLog(options.access_log, options.access_log_format)

    # --- what is in flight -------------------------------------------------------------

    def started(self) -> None:
        self.in_flight += 1
        if self.metrics.multiprocess:
            self.metrics.in_flight.inc()

    def ended(self) -> None:
        self.in_flight -= 1
        if self.metrics.multiprocess:
            self.metrics.in_flight.dec()

    def log_request(self, handler: RequestHandler) -> None:
        """Tornado's ``log_function``: one access log line and the metrics of a request."""
        finished: Callable[[bool], AccessRecord] | None = getattr(handler, "access_record", None)
        if finished is None:
            return
        logged = self.access_log.enabled
        record = finished(logged)
        self.metrics.observe(record)
        if logged:
            self.access_log.request(record)

    def audit(self, event: AuditEvent) -> None:
        """An event of the audit trail: its line and its count."""
        self.access_log.audit(event)
        self.metrics.audit(event)

    def log_refusal(
        self,
        start_line: RequestStartLine,
        headers: HTTPHeaders,
        status: int,
        sent: int,
        client: str,
    ) -> None:
        """A request the front door answered itself (400, 414, 431)."""
        record = AccessRecord(start_line.method, status=status, sent=sent)
        self.metrics.observe(record)
        if self.access_log.enabled:
            describe(
                record,
                seconds=0.0,
                client=client,
                user=None,
                target=start_line.path,
                protocol=start_line.version,
                headers=headers,
            )
            self.access_log.request(record)

    async def drain(self, grace: float) -> bool:
        """Wait until nothing is in flight, for at most ``grace`` seconds (WebSockets
        are closed with 1001 first: they do not end by themselves). True when all ended."""
        self.draining = True
        for relay in list(self.websockets):
            relay.going_away()
        deadline = time.monotonic() + grace
        while self.in_flight > 0 or self.websockets:
            if time.monotonic() >= deadline:
                log.warning(
                    "shutdown: %d request(s) still in flight after %.0f s: closing them",
                    self.in_flight + len(self.websockets),
                    grace,
                )
                return False
            await asyncio.sleep(0.05)
        return True
