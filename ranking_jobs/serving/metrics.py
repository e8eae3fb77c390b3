"""Prometheus instruments of the serving API, and the ASGI middleware that feeds them.

Each app gets its own ``CollectorRegistry`` so several apps (tests, a bench) never
collide in the process-global one. The middleware is plain ASGI, not Starlette's
``BaseHTTPMiddleware``, which costs a task and a stream per request.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Where the handler leaves what the middleware labels the request with.
SCOPE_KEY = "ranking.serving"
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
)  # fmt: skip
AGE_BUCKETS = tuple(h * 3600.0 for h in (1, 6, 12, 24, 30, 36, 48, 72, 168))


class ServingMetrics:
    """Request count by endpoint/status/personalised, latency, fallback rate, list age."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "ranking_serving_requests",
            "HTTP requests by endpoint, status code and whether the list was personalised.",
            ["endpoint", "status", "personalised"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "ranking_serving_request_seconds",
            "Time from request start to the last response byte, by endpoint.",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.lists = Counter(
            "ranking_serving_lists",
            "Lists served, by source: personalised, fallback, or degraded (the last popular "
            "list, served while the online store is unreachable).",
            ["source"],
            registry=self.registry,
        )
        self.fallback_ratio = Gauge(
            "ranking_serving_fallback_ratio",
            "Share of served lists that were the popular fallback, since the process started.",
            registry=self.registry,
        )
        self.fallback_ratio.set_function(self._fallback_ratio)
        self.list_age = Histogram(
            "ranking_serving_list_age_seconds",
            "Age of each served list: now minus the as-of time it was computed for.",
            buckets=AGE_BUCKETS,
            registry=self.registry,
        )
        self.removed_sold = Counter(
            "ranking_serving_sold_items_removed",
            "Items dropped at read time because they sold after the list was made.",
            registry=self.registry,
        )
        self._served = [0, 0]  # personalised, fallback
        self._children: dict[tuple[str, ...], Any] = {}

    def _fallback_ratio(self) -> float:
        total = self._served[0] + self._served[1]
        return self._served[1] / total if total else 0.0

    def observe_list(
        self, personalised: bool, age_seconds: float | None, removed: int, degraded: bool = False
    ) -> None:
        """``degraded``: the fallback served because the online store is unreachable."""
        self._served[0 if personalised else 1] += 1
        source = "personalised" if personalised else "degraded" if degraded else "fallback"
        self._child(self.lists, source).inc()
        if age_seconds is not None:
            self.list_age.observe(age_seconds)
        if removed:
            self.removed_sold.inc(removed)

    def _child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(...)``, cached: the lookup is most of a counter's cost."""
        key = (metric._name, *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def observe_request(
        self, endpoint: str, status: int, personalised: str, seconds: float
    ) -> None:
        self._child(self.requests, endpoint, str(status), personalised).inc()
        self._child(self.latency, endpoint).observe(seconds)


def endpoint_of(path: str) -> str:
    """A bounded label for a path: user ids must never become label values."""
    if path.startswith("/v1/users/"):
        return "recommendations"
    if path in ("/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"):
        return path.lstrip("/")
    return "other"


class MetricsMiddleware:
    """Counts and times every HTTP request, labelled by what the handler reported."""

    def __init__(self, app: ASGIApp, metrics: ServingMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        note: dict[str, str] = {}
        scope[SCOPE_KEY] = note

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self.metrics.observe_request(
                endpoint_of(scope["path"]),
                status,
                note.get("personalised", "none"),
                time.perf_counter() - started,
            )
