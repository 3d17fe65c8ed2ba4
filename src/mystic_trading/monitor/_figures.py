"""The figures a process publishes in its heartbeat and its health checks judge, taken from
``MarketData.stats()``.

``md.stats()`` is deep (per kind, per layer, per endpoint) and grows as Mystic measures more;
a heartbeat carries a flat, small subset of it, the same for every process, so a reader
(``mystic status``, the registry, Prometheus later) can sum and compare processes without
knowing where each number sits in the tree. :func:`heartbeat_figures` is that mapping, and
the only code that knows the tree's shape: a figure ``md.stats()`` does not (yet) give is
None, never an error.

Counters are totals since the process started (a reader takes differences between two
beats); ``*_ms`` are percentiles over the samples the process keeps; ``*_pct`` are ratios in
percent. The keys:

==============================  =========================================================
requests, stale, errors          requests answered, of which stale, and failed
hits                             {memory, redis, store, upstream}: answers per layer
coalesced                        waiters that shared another request's upstream call
upstream_calls, upstream_weight  calls sent upstream and the weight they spent
upstream_successes / _failures   answers, and failures of the exchange or the network
                                 (4xx rejections are the caller's; cancellations nobody's)
upstream_5xx                     of those failures, the exchange's 5xx answers (overload:
                                 a lower level helps)
upstream_unreachable             of those failures, timeouts and connections that failed
                                 (the exchange or the network down: a lower level does not)
upstream_latency_p50/p95_ms      upstream latency
n429, n418                       rate-limit answers and bans
level, ceiling, adaptive_rate    throttle level, its ceiling and the adaptive rate (weight/s)
safe_rate                        the exchange's limit less the margin and burst (weight/s):
                                 the ceiling of "unlimited"
foreign_weight                   weight the exchange's usage header counted that this process
                                 did not send (summed over the exchange's windows; other
                                 clients behind the same IP); None if the throttler does not
                                 report it
usage_header_used, usage_own     the usage header for the exchange's current window (None
                                 before an answer in it) and what this process sent in it
weight_per_s                     weight admitted per second over the exchange's window
limit, window_s                  the exchange's budget: weight per window
ceiling_utilisation_pct          weight_per_s against the ceiling
limit_utilisation_pct            weight over the window against the exchange's limit
queue_depth, queue_wait_p95_ms   waiting callers; their wait (p99 where no p95 is kept)
paused_for_s, banned_until_ms    429 pause left; ban end (UTC ms), None when not banned
quota_mode                       "memory", "redis" or "local-fallback"
clock_synced/offset_ms/error_ms  the exchange's clock against ours, and its error bound
memory_entries/bytes/evictions   the L1 cache
redis_available                  L2 usable (None when no Redis is configured)
candle_backlog_rows              candles queued for the store (write-behind)
store_pool_waits/_timeouts       waits for a write connection, and acquire timeouts
candle_history_pages             pages of closed candles fetched upstream for callers
candle_refetched_pages           of which fetched again though complete before
candle_history_series            {"BTCUSDT 1m": pages}: the series with most such pages
==============================  =========================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["LAYERS", "heartbeat_figures"]

LAYERS = ("memory", "redis", "store", "upstream")
# Failure kinds that are neither the exchange's nor the network's (throttle/_slot.py).
_NOT_UPSTREAM_FAULTS = frozenset({"rejected", "cancelled"})
# Failure kinds that say the exchange could not be reached at all: no answer to judge.
_UNREACHABLE = ("timeout", "transport")


def _get(tree: Mapping[str, Any] | None, *path: str) -> Any:
    node: Any = tree
    for key in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _int(value: Any) -> int:
    number = _num(value)
    return 0 if number is None else int(number)


def _pct(part: float | None, whole: float | None) -> float | None:
    if part is None or not whole:
        return None
    return 100.0 * part / whole


def heartbeat_figures(stats: Mapping[str, Any]) -> dict[str, Any]:
    """The flat heartbeat figures of ``md.stats()`` (see the module's table)."""
    kinds = _get(stats, "by_kind")
    kinds = kinds if isinstance(kinds, Mapping) else {}
    hits = {layer: sum(_int(_get(k, "hits", layer)) for k in kinds.values()) for layer in LAYERS}
    throttle = _get(stats, "throttle")
    failures = _get(throttle, "failures")
    failures = failures if isinstance(failures, Mapping) else {}
    failed = sum(_int(n) for kind, n in failures.items() if kind not in _NOT_UPSTREAM_FAULTS)
    weight_per_s = _num(_get(throttle, "current_rate"))
    ceiling = _num(_get(throttle, "ceiling"))
    limit = _num(_get(throttle, "limit"))
    window_s = _num(_get(throttle, "window_s"))
    wait_p95 = _num(_get(throttle, "wait_ms", "p95"))
    if wait_p95 is None:
        wait_p95 = _num(_get(throttle, "wait_ms", "p99"))
    redis = _get(stats, "redis")
    backlog = _num(_get(stats, "candle_writes", "pending_rows"))
    series = _get(stats, "candle_history", "series")
    foreign = _num(_get(throttle, "usage", "foreign_weight"))
    header_used = _num(_get(throttle, "usage", "header_used"))
    return {
        "requests": _int(_get(stats, "requests")),
        "hits": hits,
        "stale": sum(_int(_get(k, "stale")) for k in kinds.values()),
        "errors": sum(_int(_get(k, "errors")) for k in kinds.values()),
        "coalesced": _int(_get(stats, "coalesced_total")),
        "upstream_calls": _int(_get(stats, "upstream_calls")),
        "upstream_weight": _int(_get(stats, "upstream_weight")),
        "upstream_successes": _int(_get(throttle, "successes")),
        "upstream_failures": failed,
        "upstream_5xx": _int(failures.get("server_error")),
        "upstream_unreachable": sum(_int(failures.get(kind)) for kind in _UNREACHABLE),
        "upstream_latency_p50_ms": _num(_get(throttle, "latency_ms", "p50")),
        "upstream_latency_p95_ms": _num(_get(throttle, "latency_ms", "p95")),
        "n429": _int(_get(throttle, "n429")),
        "n418": _int(_get(throttle, "n418")),
        "level": _get(throttle, "level"),
        "ceiling": ceiling,
        "adaptive_rate": _num(_get(throttle, "rate")),
        "safe_rate": _num(_get(throttle, "safe_rate")),
        "foreign_weight": None if foreign is None else int(foreign),
        "usage_header_used": None if header_used is None else int(header_used),
        "usage_own": _int(_get(throttle, "usage", "own_in_window")),
        "weight_per_s": weight_per_s,
        "limit": limit,
        "window_s": window_s,
        "ceiling_utilisation_pct": _pct(weight_per_s, ceiling),
        "limit_utilisation_pct": _pct(
            None if weight_per_s is None or window_s is None else weight_per_s * window_s, limit
        ),
        "queue_depth": _int(_get(throttle, "queue_depth")),
        "queue_wait_p95_ms": wait_p95,
        "paused_for_s": _num(_get(throttle, "paused_for_s")) or 0.0,
        "banned_until_ms": _get(throttle, "banned_until_ms") or None,
        "quota_mode": _get(throttle, "quota", "mode"),
        "clock_synced": bool(_get(stats, "clock", "synced")),
        "clock_offset_ms": _num(_get(stats, "clock", "offset_ms")),
        "clock_error_ms": _num(_get(stats, "clock", "error_ms")),
        "memory_entries": _int(_get(stats, "memory", "entries")),
        "memory_bytes": _int(_get(stats, "memory", "bytes")),
        "memory_evictions": _int(_get(stats, "memory", "evictions")),
        "redis_available": None if not isinstance(redis, Mapping) else bool(redis.get("available")),
        "candle_backlog_rows": None if backlog is None else int(backlog),
        "store_pool_waits": _int(_get(stats, "store", "pool", "waits")),
        "store_pool_timeouts": _int(_get(stats, "store", "pool", "timeouts")),
        "candle_history_pages": _int(_get(stats, "candle_history", "history_pages")),
        "candle_refetched_pages": _int(_get(stats, "candle_history", "refetched_pages")),
        "candle_history_series": (
            {str(k): _int(v) for k, v in series.items()} if isinstance(series, Mapping) else {}
        ),
    }
