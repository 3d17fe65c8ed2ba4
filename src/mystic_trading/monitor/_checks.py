"""Health checks as values: :class:`Check`, :class:`HealthReport`, and the checks computed
from a process's figures alone (``heartbeat_figures``), with no I/O.

Every check gives one :class:`Check`: its status, the value it judged, both thresholds and a
one-line reason that says what was measured and against what. A figure the process does not
report (or has not measured yet: no request since the last round) is ``ok`` with no value
and says so, rather than warning about nothing.

Counters are judged over the interval since the previous round (the difference of two
figure sets), not since the process started: a success rate that fell to 50 % in the last
half minute would take hours to show in a lifetime average. The first round, with no
previous figures, judges the totals so far.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

from mystic_trading._thresholds import HealthThresholds

__all__ = ["STATUSES", "Check", "HealthReport", "Status", "figure_checks", "judge", "worst"]

Status = Literal["ok", "warning", "critical"]
STATUSES: tuple[Status, ...] = ("ok", "warning", "critical")
_RANK = {status: rank for rank, status in enumerate(STATUSES)}


@dataclass(frozen=True, slots=True)
class Check:
    """One health check's verdict: ``value`` in ``unit`` against its thresholds (None where
    the check has none), and why, in one line."""

    name: str
    status: Status
    value: float | None
    warning: float | None
    critical: float | None
    unit: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def worst(statuses: Any) -> Status:
    """The worst of ``statuses`` (``ok`` for none)."""
    return max(statuses, key=_RANK.__getitem__, default="ok")


@dataclass(frozen=True, slots=True)
class HealthReport:
    """One round of checks: the worst status, every check, when the round ran (UTC epoch
    ms) and how long it took."""

    overall: Status
    checks: tuple[Check, ...]
    at: int
    duration_ms: float

    def check(self, name: str) -> Check | None:
        """The check called ``name``, if it ran."""
        return next((c for c in self.checks if c.name == name), None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "overall": self.overall,
            "at": self.at,
            "duration_ms": self.duration_ms,
            "checks": [c.as_dict() for c in self.checks],
        }

    def summary(self) -> dict[str, Any]:
        """The round in brief, as a heartbeat carries it to other processes: the worst
        status, when, and each check's status, value, unit and reason by name."""
        return {
            "overall": self.overall,
            "at": self.at,
            "checks": {
                c.name: {"status": c.status, "value": c.value, "unit": c.unit, "reason": c.reason}
                for c in self.checks
            },
        }


def fmt(value: float) -> str:
    """A figure for a reason line: whole numbers with separators, else 3 significant digits."""
    if abs(value) >= 100 or value == int(value):
        return f"{value:,.0f}"
    return f"{value:.3g}"


def judge(
    name: str,
    label: str,
    value: float | None,
    warning: float | None,
    critical: float | None,
    unit: str,
    *,
    lower_is_worse: bool = False,
    note: str = "",
    missing: str = "not measured yet",
) -> Check:
    """The status of ``value`` against its thresholds: beyond (strictly above, or below when
    ``lower_is_worse``) critical, else beyond warning, else ok. None is ok, ``missing``."""
    tail = f"; {note}" if note else ""
    if value is None:
        return Check(name, "ok", None, warning, critical, unit, f"{label}: {missing}{tail}")
    beyond = "below" if lower_is_worse else "above"

    def shown(figure: float) -> str:
        return f"{fmt(figure)} {unit}" if unit else fmt(figure)

    def past(threshold: float | None) -> bool:
        if threshold is None:
            return False
        return value < threshold if lower_is_worse else value > threshold

    measured = f"{label} {shown(value)}"
    status: Status
    if past(critical):
        assert critical is not None
        status, reason = "critical", f"{measured}, {beyond} the critical {shown(critical)}"
    elif past(warning):
        assert warning is not None
        status, reason = "warning", f"{measured}, {beyond} the warning {shown(warning)}"
    elif warning is not None:
        status, reason = "ok", f"{measured} (warning {beyond} {shown(warning)})"
    else:
        status, reason = "ok", measured
    return Check(name, status, value, warning, critical, unit, reason + tail)


def _num(figures: Mapping[str, Any], key: str) -> float | None:
    value = figures.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _delta(now: Mapping[str, Any], before: Mapping[str, Any] | None, *path: str) -> float:
    """A counter's growth since ``before`` (its total without one; 0 if not reported)."""

    def at(tree: Mapping[str, Any] | None) -> float:
        node: Any = tree
        for key in path:
            node = node.get(key) if isinstance(node, Mapping) else None
        return float(node) if isinstance(node, int | float) else 0.0

    grown = at(now) - at(before)
    return grown if before is not None and grown >= 0 else at(now)  # a restart resets totals


def _rate_check(
    name: str,
    label: str,
    part: float,
    whole: float,
    warning: float | None,
    critical: float | None,
    min_requests: int,
    what: str,
) -> Check:
    if whole < min_requests:
        pct = None if whole <= 0 else 100.0 * part / whole
        shown = "" if pct is None else f" ({fmt(pct)} %)"
        return Check(
            name,
            "ok",
            pct,
            warning,
            critical,
            "%",
            f"{label}: {fmt(whole)} {what} since the last round{shown}, "
            f"under {min_requests}: too few to judge",
        )
    return judge(name, label, 100.0 * part / whole, warning, critical, "%", lower_is_worse=True)


def figure_checks(
    f: Mapping[str, Any],
    before: Mapping[str, Any] | None,
    elapsed_s: float | None,
    now_ms: int,
    t: HealthThresholds,
) -> list[Check]:
    """Every check computed from the figures ``f`` of this round and ``before`` of the last
    (None on the first), ``elapsed_s`` apart; ``now_ms`` is this host's wall clock."""
    checks: list[Check] = []

    ok = _delta(f, before, "upstream_successes")
    failed = _delta(f, before, "upstream_failures")
    n429, n418 = _delta(f, before, "n429"), _delta(f, before, "n418")
    success = _rate_check(
        "upstream_success",
        "upstream success",
        ok,
        ok + failed,
        t.upstream_success_warning_pct,
        t.upstream_success_critical_pct,
        t.min_requests,
        "answers",
    )
    if n429 or n418:
        extra = f"; {fmt(n429)} × 429 and {fmt(n418)} × 418 since the last round"
        success = replace(success, reason=success.reason + extra)
    checks.append(success)
    checks.append(
        judge(
            "upstream_latency",
            "upstream latency p95",
            _num(f, "upstream_latency_p95_ms"),
            t.upstream_latency_warning_ms,
            t.upstream_latency_critical_ms,
            "ms",
            missing="no upstream answer yet",
        )
    )
    # The upstream success rate hides 429s among many answers (3 of 1,000 is 99.7 %), but
    # each is the exchange saying stop, and a few more are a ban: judged on their own.
    checks.append(
        judge(
            "rate_limited",
            "429 answers since the last round:",
            n429,
            t.rate_limited_warning,
            t.rate_limited_critical,
            "",
            note=f"{fmt(n418)} × 418" if n418 else "",
        )
    )

    banned_until = _num(f, "banned_until_ms")
    left = None if banned_until is None else max(0.0, (banned_until - now_ms) / 1000)
    if left:
        checks.append(
            Check(
                "ban",
                "critical",
                left,
                None,
                0.0,
                "s",
                f"banned by the exchange, {fmt(left)} s left",
            )
        )
    else:
        checks.append(Check("ban", "ok", 0.0, None, 0.0, "s", "not banned"))
    paused = _num(f, "paused_for_s") or 0.0
    checks.append(
        judge("pause", "paused after a 429 for", paused, t.pause_warning_s, t.pause_critical_s, "s")
        if paused
        else Check("pause", "ok", 0.0, t.pause_warning_s, t.pause_critical_s, "s", "not paused")
    )

    synced = bool(f.get("clock_synced"))
    offset = _num(f, "clock_offset_ms") if synced else None
    error = _num(f, "clock_error_ms") if synced else None
    unsynced = "not measured yet (no answer from the exchange)"
    checks.append(
        judge(
            "clock_offset",
            "exchange clock offset",
            None if offset is None else abs(offset),
            t.clock_offset_warning_ms,
            t.clock_offset_critical_ms,
            "ms",
            missing=unsynced,
        )
    )
    checks.append(
        judge(
            "clock_error",
            "exchange clock error bound ±",
            error,
            t.clock_error_warning_ms,
            t.clock_error_critical_ms,
            "ms",
            missing=unsynced,
        )
    )

    depth = _num(f, "queue_depth")
    checks.append(
        judge(
            "throttle_utilisation",
            "weight per second against the ceiling",
            _num(f, "ceiling_utilisation_pct"),
            t.throttle_utilisation_warning_pct,
            t.throttle_utilisation_critical_pct,
            "%",
            missing="no ceiling reported",
        )
    )
    checks.append(
        judge(
            "queue_wait",
            "throttle queue wait p95",
            _num(f, "queue_wait_p95_ms"),
            t.queue_wait_warning_ms,
            t.queue_wait_critical_ms,
            "ms",
            note="" if depth is None else f"{fmt(depth)} waiting now",
            missing="no request queued yet",
        )
    )

    checks.extend(_cache_checks(f, before, elapsed_s, t))
    checks.append(
        judge(
            "candle_backlog",
            "candles waiting to be written",
            _num(f, "candle_backlog_rows"),
            t.candle_backlog_warning_rows,
            t.candle_backlog_critical_rows,
            "rows",
            missing="not reported by this process",
        )
    )
    return checks


def _cache_checks(
    f: Mapping[str, Any],
    before: Mapping[str, Any] | None,
    elapsed_s: float | None,
    t: HealthThresholds,
) -> list[Check]:
    """Hit rate per layer, each of the requests that reached it, and evictions a second."""
    requests = _delta(f, before, "requests")
    memory = _delta(f, before, "hits", "memory")
    redis = _delta(f, before, "hits", "redis")
    store = _delta(f, before, "hits", "store")
    checks = [
        _rate_check(
            "cache_hit_memory",
            "memory cache hit rate",
            memory,
            requests,
            t.memory_hit_rate_warning_pct,
            t.memory_hit_rate_critical_pct,
            t.min_requests,
            "requests",
        )
    ]
    if f.get("redis_available") is not None:
        checks.append(
            _rate_check(
                "cache_hit_redis",
                "Redis cache hit rate (of memory misses)",
                redis,
                requests - memory,
                None,
                None,
                t.min_requests,
                "memory misses",
            )
        )
    checks.append(
        _rate_check(
            "cache_hit_store",
            "store hit rate (of cache misses)",
            store,
            requests - memory - redis,
            None,
            None,
            t.min_requests,
            "cache misses",
        )
    )
    evictions = _delta(f, before, "memory_evictions")
    per_s = None if before is None or not elapsed_s else evictions / elapsed_s
    checks.append(
        judge(
            "cache_evictions",
            "memory cache evictions",
            per_s,
            t.evictions_warning_per_s,
            t.evictions_critical_per_s,
            "/s",
            missing="first round: no interval to count over yet",
        )
    )
    return checks
