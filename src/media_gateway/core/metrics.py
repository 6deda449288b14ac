"""Per-request telemetry: Prometheus metrics (one registry per app, since several apps share a
process) and one access log line per request."""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

access_log = logging.getLogger("media_gateway.access")

_T = TypeVar("_T")
_sets_lock = threading.Lock()
_sets: weakref.WeakKeyDictionary[CollectorRegistry, dict[type[Any], Any]] = weakref.WeakKeyDictionary()


def metric_set(registry: CollectorRegistry, kind: type[_T], build: Callable[[CollectorRegistry], _T]) -> _T:
    """The one `kind` metric set of `registry`, built on first use: registering the same metric
    names twice on a registry raises, and several components of one app share a registry."""
    with _sets_lock:
        per_registry = _sets.setdefault(registry, {})
        if kind not in per_registry:
            per_registry[kind] = build(registry)
        found: _T = per_registry[kind]
        return found


# Probes and scrapes arrive every few seconds; at INFO they would drown the real traffic.
_QUIET_PREFIXES = ("/health/", "/metrics")

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class HttpMetrics:
    def __init__(self, service: str, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter(
            "mg_http_requests_total",
            "HTTP requests served",
            ["service", "method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "mg_http_request_duration_seconds",
            "HTTP request latency",
            ["service", "method", "route"],
            buckets=_BUCKETS,
            registry=registry,
        )
        self.service = service


class RequestTelemetryMiddleware:
    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_capturing(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_capturing)
        finally:
            route = scope.get("route")
            # The route template, not the raw path, keeps label cardinality bounded.
            template = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "")
            elapsed = time.perf_counter() - start
            self.metrics.requests.labels(self.metrics.service, method, template, str(status)).inc()
            self.metrics.latency.labels(self.metrics.service, method, template).observe(elapsed)
            path: str = scope.get("path", "")
            access_log.log(
                logging.DEBUG if path.startswith(_QUIET_PREFIXES) else logging.INFO,
                "%s %s %d",
                method,
                path,
                status,
                extra={
                    "service": self.metrics.service,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                },
            )


def metrics_router(registry: CollectorRegistry) -> APIRouter:
    router = APIRouter()

    @router.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return router
