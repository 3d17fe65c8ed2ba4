"""Throttle stats: the queue wait's percentiles, as the monitor reads them, and the usage
header against what this process sent (the weight other clients behind its IP spent)."""

from __future__ import annotations

from mystic_trading.throttle._stats import ThrottleStats, UsageStats


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


def test_foreign_weight_is_the_header_beyond_what_was_sent_summed_over_windows() -> None:
    """Per exchange window, the largest header less what this process had sent when it came;
    summed over windows. Weight sent just before a window began may be counted in it, so it
    is never taken for another client's; a header of a window with nothing of ours known
    proves nothing."""
    usage = UsageStats(skew_s=0.05)
    usage.sent(60.5, 10, 60.0)
    usage.header(1, 10)  # all ours
    assert (usage.foreign_weight, usage.own_in(1)) == (0, 10)
    usage.header(1, 25)  # 15 more than we sent: another client
    usage.sent(61.0, 5, 60.0)
    usage.header(1, 30)  # still 15 beyond ours
    assert usage.foreign_weight == 15
    usage.sent(119.98, 4, 60.0)  # within the skew of the window's end
    usage.sent(120.5, 2, 60.0)
    assert (usage.own_in(1), usage.own_in(2)) == (0, 2)
    usage.header(2, 6)  # the exchange dated our last 4 in its window 2: nobody else's
    assert usage.foreign_weight == 15
    usage.header(2, 16)  # 10 beyond ours in window 2, added to window 1's 15
    assert usage.foreign_weight == 25
    usage.header(7, 500)  # a window we sent nothing in (as far as we know)
    assert usage.foreign_weight == 25
