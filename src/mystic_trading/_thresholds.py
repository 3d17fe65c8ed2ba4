"""The thresholds of the health checks, as one settings model with sane defaults.

Each check has a warning and a critical threshold. Most are "higher is worse" (latency,
lag, backlog, memory): a value **beyond** the threshold (strictly above it) gives that
status. A few are "lower is worse" (success rate, hit rate, free disk): strictly below.
So a threshold of 0 on a higher-is-worse check fires on any positive value, and warning and
critical may be equal (no warning band). A warning beyond its critical (above it, or below
it for lower-is-worse) or a negative threshold is refused, naming the field.

The defaults and why:

- store round trip 50 / 500 ms: a one-row read takes microseconds on SQLite and well under
  a millisecond on a PostgreSQL on the LAN; 50 ms means the store is queueing.
- store pool waits 0 / 10 per round (more than): any wait for a write connection means the
  pool is too small for the load (the ``grow the store pool`` recommendation of issue 12).
- Redis PING 20 / 250 ms; unreachable is critical (the shared budget and cache are lost:
  each process meters a local share).
- upstream success 99 / 95 %, over the round's interval (4xx rejections excluded: they are
  the caller's); upstream latency p95 1,000 / 3,000 ms.
- paused by a 429: warning beyond 0 s, critical beyond 60 s; a ban is always critical.
- clock offset 1,000 / 5,000 ms: Binance refuses signed requests whose timestamp is more
  than ``recvWindow`` (5,000 ms by default) from its own (Binance spot API, "Timing
  security"); error bound 500 / 2,000 ms (a candle is final only 2 s after it closed, on
  the lower bound of the exchange's clock: a wider error delays every candle's finality).
- throttle utilisation of the ceiling 90 / 99 %: the ceiling binds and callers queue
  (``raise the level``); queue wait p95 250 / 2,000 ms.
- memory cache hit rate 50 / 10 % (judged only over ``min_requests`` requests);
  evictions 50 / 500 a second (the cache churns: ``grow the memory cache``).
- candle write backlog 50,000 / 200,000 rows (fills wait for room at 250,000).
- event-loop lag p99 100 / 1,000 ms.
- process memory (RSS) 1,024 / 4,096 MiB (the memory cache's default bound is 256 MiB).
- free disk for a SQLite store 1,024 / 200 MiB.
- processes lost (gone without closing, still kept) 0 / 2 (more than): one lost is a
  warning, three are critical.
- 429 answers since the last round 0 / 2 (more than): the throttler never sends past the
  exchange's budget, so one 429 means someone else spends it (other clients behind the same
  IP) or the exchange cut it; several in one round mean we are not backing off enough, and
  Binance bans an IP that keeps going after 429s ("Repeatedly violating rate limits and/or
  failing to back off after receiving 429s will result in an automated IP ban", Binance
  spot API, "LIMITS").

:data:`CHECK_NAMES` is every check a round can give, which alert rules are named after.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

__all__ = ["CHECK_NAMES", "HealthThresholds"]

# Every check a health round can give (``monitor/_checks.py`` and ``_health.py``), in the
# order a round gives them; alert rules (``monitor.alerts.rules``) are named after them.
CHECK_NAMES: tuple[str, ...] = (
    "figures",
    "upstream_success",
    "upstream_latency",
    "rate_limited",
    "ban",
    "pause",
    "clock_offset",
    "clock_error",
    "throttle_utilisation",
    "queue_wait",
    "cache_hit_memory",
    "cache_hit_redis",
    "cache_hit_store",
    "cache_evictions",
    "candle_backlog",
    "store_round_trip",
    "store_pool",
    "disk_free",
    "redis",
    "processes",
    "heartbeat",
    "loop_lag",
    "memory",
)

Threshold = Annotated[float, Field(ge=0)]
Percent = Annotated[float, Field(ge=0, le=100)]

# (warning field, critical field) of the checks where a higher value is worse ...
_HIGHER_IS_WORSE = (
    ("store_round_trip_warning_ms", "store_round_trip_critical_ms"),
    ("store_pool_waits_warning", "store_pool_waits_critical"),
    ("redis_latency_warning_ms", "redis_latency_critical_ms"),
    ("upstream_latency_warning_ms", "upstream_latency_critical_ms"),
    ("pause_warning_s", "pause_critical_s"),
    ("clock_offset_warning_ms", "clock_offset_critical_ms"),
    ("clock_error_warning_ms", "clock_error_critical_ms"),
    ("throttle_utilisation_warning_pct", "throttle_utilisation_critical_pct"),
    ("queue_wait_warning_ms", "queue_wait_critical_ms"),
    ("evictions_warning_per_s", "evictions_critical_per_s"),
    ("candle_backlog_warning_rows", "candle_backlog_critical_rows"),
    ("loop_lag_warning_ms", "loop_lag_critical_ms"),
    ("memory_warning_mib", "memory_critical_mib"),
    ("processes_lost_warning", "processes_lost_critical"),
    ("rate_limited_warning", "rate_limited_critical"),
)
# ... and where a lower value is worse.
_LOWER_IS_WORSE = (
    ("upstream_success_warning_pct", "upstream_success_critical_pct"),
    ("memory_hit_rate_warning_pct", "memory_hit_rate_critical_pct"),
    ("disk_free_warning_mib", "disk_free_critical_mib"),
)
_WARNING_OF = {c: (w, True) for w, c in _HIGHER_IS_WORSE} | {
    c: (w, False) for w, c in _LOWER_IS_WORSE
}


class HealthThresholds(BaseModel):
    """Warning and critical thresholds of every health check (see the module for why)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    store_round_trip_warning_ms: Threshold = 50.0
    store_round_trip_critical_ms: Threshold = 500.0
    store_pool_waits_warning: Threshold = 0.0
    store_pool_waits_critical: Threshold = 10.0
    redis_latency_warning_ms: Threshold = 20.0
    redis_latency_critical_ms: Threshold = 250.0
    upstream_success_warning_pct: Percent = 99.0
    upstream_success_critical_pct: Percent = 95.0
    upstream_latency_warning_ms: Threshold = 1000.0
    upstream_latency_critical_ms: Threshold = 3000.0
    pause_warning_s: Threshold = 0.0
    pause_critical_s: Threshold = 60.0
    clock_offset_warning_ms: Threshold = 1000.0
    clock_offset_critical_ms: Threshold = 5000.0
    clock_error_warning_ms: Threshold = 500.0
    clock_error_critical_ms: Threshold = 2000.0
    throttle_utilisation_warning_pct: Threshold = 90.0
    throttle_utilisation_critical_pct: Threshold = 99.0
    queue_wait_warning_ms: Threshold = 250.0
    queue_wait_critical_ms: Threshold = 2000.0
    memory_hit_rate_warning_pct: Percent = 50.0
    memory_hit_rate_critical_pct: Percent = 10.0
    evictions_warning_per_s: Threshold = 50.0
    evictions_critical_per_s: Threshold = 500.0
    candle_backlog_warning_rows: Threshold = 50_000
    candle_backlog_critical_rows: Threshold = 200_000
    loop_lag_warning_ms: Threshold = 100.0
    loop_lag_critical_ms: Threshold = 1000.0
    memory_warning_mib: Threshold = 1024.0
    memory_critical_mib: Threshold = 4096.0
    disk_free_warning_mib: Threshold = 1024.0
    disk_free_critical_mib: Threshold = 200.0
    processes_lost_warning: Threshold = 0.0
    processes_lost_critical: Threshold = 2.0
    rate_limited_warning: Threshold = 0.0
    rate_limited_critical: Threshold = 2.0
    # Rates (success, hit rate) are judged only over at least this many requests in the
    # round's interval: three failures of the first four calls say little.
    min_requests: Annotated[int, Field(ge=1)] = 20

    @field_validator(*_WARNING_OF, mode="after")
    @classmethod
    def _not_beyond_critical(cls, value: float, info: ValidationInfo) -> float:
        # Fields validate in declaration order, so the warning beside this critical field
        # is in info.data already (absent only when it failed validation itself).
        assert info.field_name is not None
        warning_name, higher_is_worse = _WARNING_OF[info.field_name]
        warning: Any = info.data.get(warning_name)
        if warning is None:
            return value
        if higher_is_worse and warning > value:
            raise ValueError(
                f"{info.field_name} ({value:g}) is below {warning_name} ({warning:g}): a "
                "warning must come at or before its critical threshold (higher is worse here)"
            )
        if not higher_is_worse and warning < value:
            raise ValueError(
                f"{info.field_name} ({value:g}) is above {warning_name} ({warning:g}): a "
                "warning must come at or before its critical threshold (lower is worse here)"
            )
        return value
