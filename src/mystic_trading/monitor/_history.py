"""Every process's ring of samples: what the dashboard draws of the deployment's last hour.

Each heartbeat carries a **sample**: the few figures the dashboard charts
(:data:`SAMPLE_FIGURES`: the process's counters since it started, and its gauges now), as a
compact JSON array (:func:`sample_of`). The keeper the beat went to keeps it with the beat,
on the same clock, for ``keep_gone_s`` (an hour): a Redis list per process, capped to an
hour of beats, or the store's ``heartbeat_samples`` (migration 0005). So a dashboard opened
on a service that started a minute ago, or on any worker of several, draws the hour every
process of the venue lived, not only what it saw itself (``api/_dashboard.py`` merges the
rings: per-process differences of the counters, summed per time step).

A sample is about 150 bytes; an hour of a process beating every 2 s is 1,800 of them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "COUNTERS",
    "GAUGES",
    "SAMPLE_FIGURES",
    "ProcessSamples",
    "counter",
    "parse_sample",
    "sample_of",
    "values_of",
]

# The counters (totals since the process started; differenced by the reader), as
# (name, figure, layer or None) of heartbeat_figures.
COUNTERS = (
    ("req", "requests", None),
    ("memory", "hits", "memory"),
    ("redis", "hits", "redis"),
    ("store", "hits", "store"),
    ("upstream", "hits", "upstream"),
    ("calls", "upstream_calls", None),
    ("stale", "stale", None),
    ("n429", "n429", None),
    ("n418", "n418", None),
)
# The gauges, as they were at the beat: weight per minute sent, the exchange's limit and the
# level's ceiling per minute, upstream latency p50/p95 (ms), queue depth and wait p95 (ms),
# paused (0/1) and the end of a ban (UTC ms on the exchange's clock, 0 for none).
GAUGES = ("used", "limit", "ceiling", "p50", "p95", "qd", "qw", "paused", "banned_until")
SAMPLE_FIGURES = tuple(name for name, _, _ in COUNTERS) + GAUGES


def _num(value: Any) -> float | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    return float(value) if ok else None


def counter(figures: Mapping[str, Any], figure: str, layer: str | None) -> int:
    """The counter ``figure`` (of ``layer``) of heartbeat figures; 0 when it is not one."""
    value = figures.get(figure)
    if layer is not None:
        value = value.get(layer) if isinstance(value, Mapping) else None
    return int(_num(value) or 0)


def _per_min(per_s: float | None) -> float | None:
    return None if per_s is None else round(per_s * 60, 1)


def values_of(figures: Mapping[str, Any]) -> list[float | int | None]:
    """The sample of ``figures`` (``heartbeat_figures`` plus the publisher's), in the order
    of :data:`SAMPLE_FIGURES`."""
    window_s = _num(figures.get("window_s"))
    limit = _num(figures.get("limit"))
    limit_per_min = None if not window_s or limit is None else round(limit / window_s * 60, 1)

    def ms(name: str) -> float | None:
        value = _num(figures.get(name))
        return None if value is None else round(value, 2)

    gauges: list[float | int | None] = [
        _per_min(_num(figures.get("weight_per_s"))),
        limit_per_min,
        _per_min(_num(figures.get("ceiling"))),
        ms("upstream_latency_p50_ms"),
        ms("upstream_latency_p95_ms"),
        counter(figures, "queue_depth", None),
        ms("queue_wait_p95_ms"),
        int((_num(figures.get("paused_for_s")) or 0) > 0),
        int(_num(figures.get("banned_until_ms")) or 0),
    ]
    return [counter(figures, f, layer) for _, f, layer in COUNTERS] + gauges


def sample_of(figures: Mapping[str, Any]) -> str:
    """:func:`values_of` as the compact JSON a keeper stores."""
    return json.dumps(values_of(figures), separators=(",", ":"))


def parse_sample(text: str) -> list[float | int | None] | None:
    """A stored sample, or None when it is not one (another version's, or damaged)."""
    try:
        values = json.loads(text)
    except ValueError:
        return None
    if not isinstance(values, list) or len(values) != len(SAMPLE_FIGURES):
        return None
    if not all(v is None or (isinstance(v, int | float) and v == v) for v in values):
        return None
    return values


@dataclass(frozen=True, slots=True)
class ProcessSamples:
    """One process's ring as a keeper holds it: ``(beat_at, values)`` oldest first, on the
    keeper's clock, and the interval the process beats at."""

    process_id: str
    interval_ms: int
    samples: tuple[tuple[int, list[float | int | None]], ...]
