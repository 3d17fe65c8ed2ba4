"""Per-statement query metrics and the slow-query log.

Every repository operation has a short kind (``candles.range``, ``ban.save``); for each kind
the store counts executions and errors and keeps the latest :data:`RESERVOIR` latencies in a
ring, from which p50/p95/p99 are read on demand. Executions at or above ``slow_query_ms`` are
logged on ``mystic_trading.store`` with the kind, the time and a summary the repository
wrote for that call (series, row count): at INFO for the routine writes of
:data:`ROUTINE_WRITES` (candles and coverage saved behind the answers, snapshots, the
listing), which under load wait for SQLite's one writer as a matter of course and which no
caller waits for, and at WARNING for the rest (reads on a caller's path, control and ban
writes). Statement parameters are never logged,
since audit reasons and alert messages may hold anything. Each kind logs at most once every
:data:`SLOW_LOG_EVERY_S`, saying how many slow executions it did not log since: under a write
backlog every statement is slow, and thousands of identical lines would bury everything else.
Every slow execution is counted in ``slow`` either way.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

__all__ = ["RESERVOIR", "ROUTINE_WRITES", "QueryMetrics"]

log = logging.getLogger("mystic_trading.store")

RESERVOIR = 1024
SLOW_LOG_EVERY_S = 10.0
# Writes made behind the answers (write-behind candles and coverage, ticker and book
# snapshots, the kept exchangeInfo and venue): a slow one delays no caller. "WARNING slow
# query coverage.save: 484.2 ms" on routine requests read as a fault (new-user D11).
ROUTINE_WRITES = frozenset(
    {"coverage.save", "candles.upsert", "ticker.save", "book.save", "info.save", "venue.save"}
)


class _Kind:
    __slots__ = ("count", "errors", "latencies", "logged_at", "slow", "total_s", "unlogged")

    def __init__(self) -> None:
        self.count = 0
        self.errors = 0
        self.total_s = 0.0
        self.latencies: deque[float] = deque(maxlen=RESERVOIR)
        self.slow = 0
        self.unlogged = 0
        self.logged_at = -SLOW_LOG_EVERY_S


class QueryMetrics:
    """Counts, errors and latency percentiles per statement kind."""

    def __init__(
        self, *, slow_query_ms: float, timer: Callable[[], float] = time.perf_counter
    ) -> None:
        self.timer = timer
        self._slow_s = slow_query_ms / 1000
        self._kinds: dict[str, _Kind] = {}

    def _kind(self, kind: str) -> _Kind:
        k = self._kinds.get(kind)
        if k is None:
            k = self._kinds[kind] = _Kind()
        return k

    def observe(self, kind: str, seconds: float, detail: object = "") -> None:
        """One successful execution of ``kind`` that took ``seconds``."""
        k = self._kind(kind)
        k.count += 1
        k.total_s += seconds
        k.latencies.append(seconds)
        if seconds >= self._slow_s:
            k.slow += 1
            now = self.timer()
            if now - k.logged_at < SLOW_LOG_EVERY_S:
                k.unlogged += 1
                return
            more = f"; {k.unlogged} more slow since the last line" if k.unlogged else ""
            level = logging.INFO if kind in ROUTINE_WRITES else logging.WARNING
            log.log(
                level, "slow query %s: %.1f ms (%s)%s", kind, seconds * 1000, detail or "-", more
            )
            k.logged_at, k.unlogged = now, 0

    def error(self, kind: str, seconds: float) -> None:
        """One failed execution of ``kind``."""
        k = self._kind(kind)
        k.count += 1
        k.errors += 1
        k.total_s += seconds
        k.latencies.append(seconds)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Plain data per kind: count, errors, mean and p50/p95/p99 in milliseconds."""
        out: dict[str, dict[str, Any]] = {}
        for name, k in sorted(self._kinds.items()):
            ordered = sorted(k.latencies)
            out[name] = {
                "count": k.count,
                "errors": k.errors,
                "slow": k.slow,
                "mean_ms": k.total_s / k.count * 1000 if k.count else 0.0,
                "p50_ms": _percentile(ordered, 0.50) * 1000,
                "p95_ms": _percentile(ordered, 0.95) * 1000,
                "p99_ms": _percentile(ordered, 0.99) * 1000,
            }
        return out


def _percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (0.0 when empty)."""
    if not ordered:
        return 0.0
    rank = max(0, min(len(ordered) - 1, int(q * len(ordered) + 0.999999) - 1))
    return ordered[rank]
