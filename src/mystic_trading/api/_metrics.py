"""Prometheus metrics of the HTTP service: ``GET /metrics`` in the text format.

Names start ``mystic_``, are in base units (seconds, bytes) and counters end ``_total``
(Prometheus naming practices). Labels stay low in cardinality: the route's template
(``/api/v3/klines``, never the query), the answering layer, the status class (``2xx``).
Request counters and latency histograms are kept as requests pass (``Metrics`` middleware);
the market-data figures (upstream calls and weight, the exchange's window usage, a ban, the
cache) are read from ``MarketData`` (``MarketDataCollector``), so they cost nothing per
request.

One process: each app has its own registry (apps in one process, as in tests, never share
counters) and the market-data figures are read when scraped.

Several workers (``serve(workers=N)``): prometheus-client's multiprocess mode, on when
``PROMETHEUS_MULTIPROC_DIR`` was set as prometheus-client was imported (``serve`` sets it
for its workers). Every worker writes its values to files there and a scrape, whichever
worker answers it, reads them all (``MultiProcessCollector``): counters and histograms are
summed. A figure read at scrape time would show only the worker scraped, so each worker
copies its market-data figures into multiprocess metrics once a second (``SYNC_EVERY_S``)
and once more when scraped itself: upstream requests and weight as counters (summed);
memory entries and bytes, candle writes pending and requests in flight as ``livesum``
gauges (what the deployment holds now; a dead worker's stop counting); the exchange's
window usage, the ban's end and held-back as ``livemax`` gauges (each worker sees the same
exchange, so the largest is the most recent news). So a scrape shows other workers' figures
up to a second old. ``mystic_worker_upstream_requests`` (``liveall``: one sample per worker,
labelled ``pid``) shows how the work is spread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from bisect import bisect_left
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from mystic_trading.api._state import ApiState

__all__ = [
    "CONTENT_TYPE",
    "SYNC_EVERY_S",
    "MarketDataCollector",
    "Metrics",
    "MetricsMiddleware",
    "is_multiprocess",
]

log = logging.getLogger(__name__)

CONTENT_TYPE = CONTENT_TYPE_LATEST
# From a memory hit (under a millisecond) to a cold candle window (seconds).
_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_BOUNDS = _LATENCY_BUCKETS
UNMATCHED = "unmatched"
# How often a worker copies its market-data figures for the others' scrapes.
SYNC_EVERY_S = 1.0


def is_multiprocess() -> bool:
    """Whether prometheus-client keeps values in ``PROMETHEUS_MULTIPROC_DIR`` files: it
    decided when it was imported, so ask it rather than the environment now."""
    return values.ValueClass is not values.MutexValue


class _Tally:
    """One route and status's requests since the last scrape, and their labelled metrics."""

    __slots__ = ("buckets", "counter", "histogram", "requests", "seconds")

    def __init__(self, counter: Any, histogram: Any) -> None:
        self.counter = counter
        self.histogram = histogram
        self.requests = 0
        self.seconds = 0.0
        self.buckets = [0] * (len(_BOUNDS) + 1)  # the last: above every bound (+Inf)

    def flush(self) -> None:
        if not self.requests:
            return
        self.counter.inc(self.requests)
        # prometheus-client's Histogram.observe adds 1 to the first bucket whose bound is at
        # least the value and the value to the sum; this adds the same, n at a time.
        hist = self.histogram
        for index, count in enumerate(self.buckets):
            if count:
                hist._buckets[index].inc(count)
        hist._sum.inc(self.seconds)
        self.requests, self.seconds = 0, 0.0
        self.buckets = [0] * len(self.buckets)


@dataclass(frozen=True, slots=True)
class Figures:
    """The market-data figures of one process at one moment."""

    upstream_requests: int
    upstream_weight: int
    used_weight: int
    banned_until_s: float
    held_back: int
    memory_entries: int
    memory_bytes: int
    writes_pending: int


_HELP = {
    "upstream_requests": "Requests sent to the exchange by this process (retries included).",
    "upstream_weight": "Request weight sent to the exchange by this process, in its units.",
    "used_weight": "The exchange's count of request weight used in its current window (its "
    "X-MBX-USED-WEIGHT header): every process behind this IP.",
    "banned_until": "When the exchange's ban of this IP ends, UTC epoch seconds; 0 when none "
    "stands.",
    "held_back": "1 while the exchange holds Mystic back (a 429 pause or a ban), else 0.",
    "memory_entries": "Entries in this process's memory cache.",
    "memory_bytes": "Estimated bytes held by this process's memory cache.",
    "writes_pending": "Candles answered and not yet written to the store.",
}
_MP_HELP = {  # the same figures summed over the workers
    "upstream_requests": "Requests sent to the exchange by every worker (retries included).",
    "upstream_weight": "Request weight sent to the exchange by every worker, in its units.",
    "memory_entries": "Entries in the workers' memory caches, all together.",
    "memory_bytes": "Estimated bytes held by the workers' memory caches, all together.",
    "writes_pending": "Candles answered by any worker and not yet written to the store.",
}


class _InFlight:
    """The in-flight gauge: the guard hands it a function to read at scrape time, which
    multiprocess mode cannot call in another worker, so ``Metrics.sync`` also sets it."""

    def __init__(self, gauge: Gauge) -> None:
        self.gauge = gauge
        self.read: Callable[[], int] = lambda: 0

    def set_function(self, read: Callable[[], int]) -> None:
        self.read = read
        self.gauge.set_function(read)


class _SharedFigures:
    """The market-data figures as multiprocess metrics, written by ``sync``."""

    def __init__(self) -> None:
        def counter(name: str, key: str) -> Counter:
            return Counter(name, _MP_HELP[key], registry=None)

        def gauge(name: str, key: str, mode: Any) -> Gauge:
            text = _MP_HELP.get(key, _HELP[key])
            return Gauge(name, text, registry=None, multiprocess_mode=mode)

        self.requests = counter("mystic_upstream_requests", "upstream_requests")
        self.weight = counter("mystic_upstream_weight", "upstream_weight")
        self.used_weight = gauge("mystic_upstream_used_weight", "used_weight", "livemax")
        self.banned_until = gauge("mystic_upstream_banned_until_seconds", "banned_until", "livemax")
        self.held_back = gauge("mystic_upstream_held_back", "held_back", "livemax")
        self.entries = gauge("mystic_cache_memory_entries", "memory_entries", "livesum")
        self.bytes = gauge("mystic_cache_memory_bytes", "memory_bytes", "livesum")
        self.pending = gauge("mystic_candle_writes_pending", "writes_pending", "livesum")
        self.per_worker = Gauge(
            "mystic_worker_upstream_requests",
            "Requests sent to the exchange by each live worker since it started (label pid).",
            registry=None,
            multiprocess_mode="liveall",
        )
        self._counted = (0, 0)
        self._source: object = None

    def write(self, source: object, figures: Figures) -> None:
        if source is not self._source:  # a new MarketData counts from 0 again
            self._source, self._counted = source, (0, 0)
        requests, weight = self._counted
        self.requests.inc(max(0, figures.upstream_requests - requests))
        self.weight.inc(max(0, figures.upstream_weight - weight))
        self._counted = (figures.upstream_requests, figures.upstream_weight)
        self.used_weight.set(figures.used_weight)
        self.banned_until.set(figures.banned_until_s)
        self.held_back.set(figures.held_back)
        self.entries.set(figures.memory_entries)
        self.bytes.set(figures.memory_bytes)
        self.pending.set(figures.writes_pending)
        self.per_worker.set(figures.upstream_requests)


class Metrics:
    """The service's metric objects, in their own registry (or, with several workers, in
    prometheus-client's multiprocess files)."""

    def __init__(self) -> None:
        self.multiprocess = is_multiprocess()
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
        self.in_flight = _InFlight(
            Gauge(
                "mystic_http_in_flight",
                "Requests being served now (those under the in-flight bound).",
                registry=self.registry,
                multiprocess_mode="livesum",
            )
        )
        self.source: MarketDataCollector | None = None
        self._answer_children: dict[tuple[str, str, bool], Any] = {}
        self._shared = _SharedFigures() if self.multiprocess else None
        # One process: requests are tallied in plain numbers and added to the metrics when
        # scraped (``_flush``): three prometheus-client updates a request cost about 3 us,
        # a tenth of a cached answer's time. Several workers: each request is written to
        # the shared files at once, so that any worker's scrape counts it.
        self._tallies: dict[tuple[str, int], _Tally] = {}
        self._answer_tallies: dict[tuple[str, str, bool], list[int]] = {}

    def observe(self, route: str, status: int, seconds: float) -> None:
        tally = self._tallies.get((route, status))
        if tally is None:
            tally = self._tallies[(route, status)] = _Tally(
                self.requests.labels(route, f"{status // 100}xx"), self.latency.labels(route)
            )
        if self.multiprocess:
            tally.counter.inc()
            tally.histogram.observe(seconds)
            return
        tally.requests += 1
        tally.seconds += seconds
        tally.buckets[bisect_left(_BOUNDS, seconds)] += 1

    def answered(self, route: str, layer: str, stale: bool) -> None:
        key = (route, layer, stale)
        tally = self._answer_tallies.get(key)
        if tally is None:
            tally = self._answer_tallies[key] = [0]
            self._answer_children[key] = self.answers.labels(
                route, layer, "true" if stale else "false"
            )
        if self.multiprocess:
            self._answer_children[key].inc()
        else:
            tally[0] += 1

    def _flush(self) -> None:
        """Add the tallies kept since the last scrape to the metrics (one process)."""
        for tally in self._tallies.values():
            tally.flush()
        for key, counted in self._answer_tallies.items():
            if counted[0]:
                self._answer_children[key].inc(counted[0])
                counted[0] = 0

    def sync(self) -> None:
        """Multiprocess mode: copy this worker's scrape-time figures into the shared files
        (a no-op in one process, where they are read when scraped)."""
        if self._shared is None:
            return
        self.in_flight.gauge.set(self.in_flight.read())
        source = self.source
        figures = None if source is None else source.figures()
        if source is not None and figures is not None:
            self._shared.write(source.state.md_or_none, figures)

    def render(self) -> bytes:
        if not self.multiprocess:
            self._flush()
            return generate_latest(self.registry)
        self.sync()
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)

    def retire(self) -> None:
        """Multiprocess mode, at this worker's shutdown: last counts written, and its live
        gauges dropped so they stop counting in the deployment's sums."""
        if self._shared is None:
            return
        self.sync()
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


class MarketDataCollector(Collector):
    """Market-data figures read from the app's MarketData and forwarder: at scrape time in
    one process, copied by ``Metrics.sync`` with several workers."""

    def __init__(self, state: ApiState) -> None:
        self.state = state
        state.metrics.source = self

    def figures(self) -> Figures | None:
        """This process's figures now; None while MarketData is not open."""
        md = self.state.md_or_none
        if md is None:
            return None
        forwarder = self.state.forwarder
        throttler = md.throttler
        banned_until = throttler.stats().get("banned_until_ms") or 0
        return Figures(
            upstream_requests=md.provider.calls + (forwarder.calls if forwarder else 0),
            upstream_weight=md.provider.weight + (forwarder.weight if forwarder else 0),
            used_weight=self.state.used_weight(),
            banned_until_s=banned_until / 1000 if banned_until > time.time() * 1000 else 0,
            held_back=1 if throttler.held_back() else 0,
            memory_entries=len(md.memory),
            memory_bytes=md.memory.bytes,
            writes_pending=md.filler.pending_rows,
        )

    def collect(self) -> Iterator[Any]:
        if self.state.metrics.multiprocess:
            return  # the figures are in the multiprocess files (Metrics.sync)
        figures = self.figures()
        if figures is None:
            return
        yield CounterMetricFamily(
            "mystic_upstream_requests", _HELP["upstream_requests"], figures.upstream_requests
        )
        yield CounterMetricFamily(
            "mystic_upstream_weight", _HELP["upstream_weight"], figures.upstream_weight
        )
        gauges = (
            ("mystic_upstream_used_weight", "used_weight", figures.used_weight),
            ("mystic_upstream_banned_until_seconds", "banned_until", figures.banned_until_s),
            ("mystic_upstream_held_back", "held_back", figures.held_back),
            ("mystic_cache_memory_entries", "memory_entries", figures.memory_entries),
            ("mystic_cache_memory_bytes", "memory_bytes", figures.memory_bytes),
            ("mystic_candle_writes_pending", "writes_pending", figures.writes_pending),
        )
        for name, key, value in gauges:
            yield GaugeMetricFamily(name, _HELP[key], value=value)


class MetricsMiddleware:
    """Counts and times every HTTP request by its route's template (pure ASGI: no
    per-request objects beyond a closure). In multiprocess mode it also runs the worker's
    figure copy (``Metrics.sync``) from the app's start to its shutdown, seen on the way
    through as lifespan messages."""

    def __init__(self, app: ASGIApp, metrics: Metrics, clock: Callable[[], float]) -> None:
        self.app = app
        self.metrics = metrics
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan" and self.metrics.multiprocess:
                await self._lifespan(scope, receive, send)
            else:
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

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        copying: asyncio.Task[None] | None = None

        async def receiving() -> Message:
            nonlocal copying
            message = await receive()
            if message["type"] == "lifespan.shutdown" and copying is not None:
                copying.cancel()  # before MarketData closes: the last figures are its own
                with contextlib.suppress(asyncio.CancelledError):
                    await copying
                copying = None
                self.metrics.retire()
            return message

        async def sending(message: Message) -> None:
            nonlocal copying
            await send(message)
            if message["type"] == "lifespan.startup.complete":
                copying = asyncio.create_task(self._copy_figures())

        try:
            await self.app(scope, receiving, sending)
        finally:
            if copying is not None:
                copying.cancel()

    async def _copy_figures(self) -> None:
        while True:
            await asyncio.sleep(SYNC_EVERY_S)
            try:
                self.metrics.sync()
            except OSError as exc:  # the run's directory went away: nothing to share
                log.warning("could not write this worker's metrics (%s)", exc)
