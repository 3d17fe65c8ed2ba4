"""Throttle stats: the queue wait's percentiles, as the monitor reads them."""

from __future__ import annotations

from mystic_trading.throttle._stats import ThrottleStats


def test_queue_wait_reports_p50_p95_and_p99() -> None:
    """Waits of 1..100 ms: the p95 lies between the median and the p99, at the 95th wait
    within the rank's rounding (the monitor reads the p95, falling back to the p99)."""
    stats = ThrottleStats(window_s=60.0)
    for ms in range(1, 101):
        stats.admitted("/x", 1, ms / 1000, float(ms))
    waits = stats.snapshot(100.0)["wait_ms"]
    assert waits["p50"] < waits["p95"] < waits["p99"]
    assert 94.0 <= waits["p95"] <= 96.0
    assert stats.snapshot(100.0)["endpoints"]["/x"]["wait_ms"]["p95"] == waits["p95"]
