"""Prometheus metrics of the HTTP service: ``GET /metrics`` in the text format.

Names start ``mystic_``, are in base units (seconds, bytes) and counters end ``_total``
(Prometheus naming practices). Labels stay low in cardinality: the route's template
(``/api/v3/klines``, never the query), the answering layer, the status class (``2xx``).
Request counters and latency histograms are kept as requests pass (``Metrics`` middleware);
the market-data figures (upstream calls and weight, the exchange's window usage, a ban, the
cache) are read from ``MarketData`` when scraped (``MarketDataCollector``), so they cost
nothing per request.

Each app has its own registry, so apps in one process (tests) never share counters.
Multiprocess mode (``--workers N``, ``PROMETHEUS_MULTIPROC_DIR``) is not done yet: with
several workers each scrape sees the worker that answered it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from mystic_trading.api._state import ApiState

__all__ = ["CONTENT_TYPE", "MarketDataCollector", "Metrics", "MetricsMiddleware"]

CONTENT_TYPE = CONTENT_TYPE_LATEST
# From a memory hit (under a millisecond) to a cold candle window (seconds).
_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
UNMATCHED = "unmatched"


class Metrics:
    """The service's metric objects, in their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "mystic_http_requests",
            "HTTP requests answered, by route template and status class.",
            ("route", "status_class"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "mystic_http_request_duration_seconds",
            "Time from a request's arrival to its answer's last byte, by route template.",
            ("route",),
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.answers = Counter(
            "mystic_http_answers",
            "Market-data answers by route template, the layer that served them and staleness.",
            ("route", "layer", "stale"),
            registry=self.registry,
        )
        self.shed = Counter(
            "mystic_http_shed",
            "Requests refused with 503 because max_in_flight requests were being served.",
            registry=self.registry,
        )
        self.refused_size = Counter(
            "mystic_http_too_large",
            "Requests refused for their size (body, headers or query string).",
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "mystic_http_in_flight",
            "Requests being served now (those under the in-flight bound).",
            registry=self.registry,
        )
        self._children: dict[tuple[str, str], Any] = {}
        self._latency_children: dict[str, Any] = {}
        self._answer_children: dict[tuple[str, str, bool], Any] = {}

    def observe(self, route: str, status: int, seconds: float) -> None:
        key = (route, f"{status // 100}xx")
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self.requests.labels(*key)
        child.inc()
        hist = self._latency_children.get(route)
        if hist is None:
            hist = self._latency_children[route] = self.latency.labels(route)
        hist.observe(seconds)

    def answered(self, route: str, layer: str, stale: bool) -> None:
        key = (route, layer, stale)
        child = self._answer_children.get(key)
        if child is None:
            child = self._answer_children[key] = self.answers.labels(
                route, layer, "true" if stale else "false"
            )
        child.inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MarketDataCollector(Collector):
    """Market-data figures read at scrape time from the app's MarketData and forwarder."""

    def __init__(self, state: ApiState) -> None:
        self.state = state

    def collect(self) -> Iterator[Any]:
        md = self.state.md_or_none
        if md is None:
            return
        forwarder = self.state.forwarder
        calls = md.provider.calls + (forwarder.calls if forwarder else 0)
        weight = md.provider.weight + (forwarder.weight if forwarder else 0)
        yield CounterMetricFamily(
            "mystic_upstream_requests",
            "Requests sent to the exchange by this process (retries included).",
            value=calls,
        )
        yield CounterMetricFamily(
            "mystic_upstream_weight",
            "Request weight sent to the exchange by this process, in its units.",
            value=weight,
        )
        yield GaugeMetricFamily(
            "mystic_upstream_used_weight",
            "The exchange's count of request weight used in its current window (its "
            "X-MBX-USED-WEIGHT header): every process behind this IP.",
            value=self.state.used_weight(),
        )
        throttler = md.throttler
        banned_until = throttler.stats().get("banned_until_ms") or 0
        yield GaugeMetricFamily(
            "mystic_upstream_banned_until_seconds",
            "When the exchange's ban of this IP ends, UTC epoch seconds; 0 when none stands.",
            value=banned_until / 1000 if banned_until > time.time() * 1000 else 0,
        )
        yield GaugeMetricFamily(
            "mystic_upstream_held_back",
            "1 while the exchange holds Mystic back (a 429 pause or a ban), else 0.",
            value=1 if throttler.held_back() else 0,
        )
        yield GaugeMetricFamily(
            "mystic_cache_memory_entries",
            "Entries in this process's memory cache.",
            value=len(md.memory),
        )
        yield GaugeMetricFamily(
            "mystic_cache_memory_bytes",
            "Estimated bytes held by this process's memory cache.",
            value=md.memory.bytes,
        )
        yield GaugeMetricFamily(
            "mystic_candle_writes_pending",
            "Candles answered and not yet written to the store.",
            value=md.filler.pending_rows,
        )


class MetricsMiddleware:
    """Counts and times every HTTP request by its route's template (pure ASGI: no
    per-request objects beyond a closure)."""

    def __init__(self, app: ASGIApp, metrics: Metrics, clock: Callable[[], float]) -> None:
        self.app = app
        self.metrics = metrics
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = self.clock()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or UNMATCHED
            self.metrics.observe(template, status, self.clock() - started)
