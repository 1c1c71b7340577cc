"""``/.proxy/metrics`` in Prometheus's text format, with ``prometheus_client``.

With ``--processes`` every process writes its values to files in the directory named by
``PROMETHEUS_MULTIPROC_DIR`` (set by proxy.py before the processes start, and before
prometheus_client is first imported: it picks its storage then), and a scrape of any
process sums them all, as the library's multiprocess mode documents.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from handlers.ops.audit import REFUSED, AuditEvent
from handlers.ops.record import AccessRecord

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_REWRITE_BUCKETS = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1)


def method_class(method: str) -> str:
    """The method, for the common ones; "webdav" or "other" for the rest (bounded)."""
    if method in _METHODS:
        return method
    return "webdav" if method.isalpha() else "other"


class Metrics:
    """The proxy's metrics; one per process."""

    def __init__(self) -> None:
        # Imported here, not at the top: in multiprocess mode the environment variable
        # must be set before the first import (see the module's docstring).
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        registry = CollectorRegistry()
        self.registry = registry
        self.requests = Counter(
            "web_proxy_requests",
            "Requests answered, by site (- for the proxy's own pages), method and status class.",
            ["site", "method", "status"],
            registry=registry,
        )
        self.upstream_seconds = Histogram(
            "web_proxy_upstream_seconds",
            "Time from sending a request to the backend to the end of its response.",
            ["site"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.received_bytes = Counter(
            "web_proxy_received_bytes",
            "Request body bytes received from clients, by site.",
            ["site"],
            registry=registry,
        )
        self.sent_bytes = Counter(
            "web_proxy_sent_bytes",
            "Response body bytes sent to clients, by site.",
            ["site"],
            registry=registry,
        )
        self.rewrite_seconds = Histogram(
            "web_proxy_rewrite_seconds",
            "Time spent rewriting a response body, by site.",
            ["site"],
            buckets=_REWRITE_BUCKETS,
            registry=registry,
        )
        self.upstream_errors = Counter(
            "web_proxy_upstream_errors",
            "Upstream transfers that failed, by site and kind (connect, timeout, reset, tls,"
            " other).",
            ["site", "kind"],
            registry=registry,
        )
        self.request_bodies = Counter(
            "web_proxy_request_bodies",
            "Text request bodies looked at for the proxy's URLs, by site and result (mapped,"
            " unchanged, too_large, encoded, undecodable).",
            ["site", "result"],
            registry=registry,
        )
        self.in_flight = Gauge(
            "web_proxy_requests_in_flight",
            "Requests being handled.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.websockets = Gauge(
            "web_proxy_websockets_open",
            "WebSocket sessions open.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.logins = Counter(
            "web_proxy_logins",
            "Sign-ins and sign-outs, by method (local, oidc, ldap) and result.",
            ["method", "result"],
            registry=registry,
        )
        self.refusals = Counter(
            "web_proxy_refusals",
            "Requests refused by the access rules (401, 403), by site and reason.",
            ["site", "reason"],
            registry=registry,
        )
        # Label children by their labels: looked up once, not per request.
        self._requests: dict[tuple[str, str, int], Any] = {}
        self._per_site: dict[str, tuple[Any, Any, Any, Any]] = {}

    def count_with(self, in_flight: Callable[[], float], websockets: Callable[[], float]) -> None:
        """The two gauges, read when scraped; with several processes each one keeps its
        own count in the shared files instead (the state calls inc and dec)."""
        if not self.multiprocess:
            self.in_flight.set_function(in_flight)
            self.websockets.set_function(websockets)

    def observe(self, record: AccessRecord) -> None:
        """One finished request, from its access record (handlers/ops/record.py)."""
        site = record.site
        key = (site, record.method, record.status // 100)
        counter = self._requests.get(key)
        if counter is None:
            method = method_class(key[1])
            counter = self._requests[key] = self.requests.labels(site, method, f"{key[2]}xx")
        counter.inc()
        per_site = self._per_site.get(site)
        if per_site is None:
            per_site = self._per_site[site] = (
                self.sent_bytes.labels(site),
                self.received_bytes.labels(site),
                self.upstream_seconds.labels(site),
                self.rewrite_seconds.labels(site),
            )
        sent, received, upstream, rewrite = per_site
        if record.sent:
            sent.inc(record.sent)
        if record.received:
            received.inc(record.received)
        if record.upstream_seconds is not None:
            upstream.observe(record.upstream_seconds)
        if record.rewrite_seconds is not None:
            rewrite.observe(record.rewrite_seconds)
        if record.upstream_error is not None:
            self.upstream_errors.labels(site, record.upstream_error).inc()
        if record.request_body is not None:
            self.request_bodies.labels(site, record.request_body).inc()

    def audit(self, event: AuditEvent) -> None:
        """One event of the audit trail, counted."""
        if event.event == REFUSED:
            self.refusals.labels(event.site or "-", event.reason or "-").inc()
        else:
            self.logins.labels(event.method or "-", event.event).inc()

    def render(self) -> tuple[bytes, str]:
        """The text exposition, and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        if self.multiprocess:
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
