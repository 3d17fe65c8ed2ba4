"""ExchangeClock: bounds of the exchange's clock from round trips alone, steps detected."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from mystic_trading.providers._clock import ExchangeClock

T0 = 1_800_000_000_000  # the exchange's clock at local monotonic 0, in most tests


class Local:
    """A local monotonic clock the test moves by hand (ms)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def date_of(ms: int) -> str:
    """An HTTP Date header (second resolution) for exchange time ``ms``."""
    return format_datetime(datetime.fromtimestamp(ms // 1000, tz=UTC), usegmt=True)


def make(offset: int = T0) -> tuple[ExchangeClock, Local]:
    local = Local()
    return ExchangeClock(local=local, wall=lambda: offset + local.now + 5_000.0), local


def test_before_any_sample_nothing_is_certain() -> None:
    """Without a sample the lower bound is the epoch and a sync is due."""
    clock, _ = make()
    assert clock.lower_bound(0) == 0
    assert clock.needs_sync
    assert clock.error_ms() is None


def test_a_round_trip_bounds_the_offset_by_its_own_duration() -> None:
    """serverTime stamped inside [t0, t1] bounds the clock within the round trip."""
    clock, local = make()
    local.now = 100.0
    clock.observe(90.0, 100.0, server_time=T0 + 95)
    # The true offset is T0: the lower bound never passes the truth.
    assert clock.lower_bound(100.0) <= T0 + 100
    assert clock.lower_bound(100.0) >= T0 + 100 - 11
    assert clock.error_ms() is not None and clock.error_ms() <= 6
    assert not clock.needs_sync


def test_a_slow_answer_never_puts_the_clock_ahead() -> None:
    """An answer that took 11 s (a timeout and a retry before it) widens the bound, never
    biases it ahead: the old midpoint estimate ran ahead by half the wait (review C2)."""
    clock, local = make()
    local.now = 11_000.0
    # Sent at 0, the server stamped at local 10_990 (it answered late), received at 11_000.
    clock.observe(0.0, 11_000.0, server_time=T0 + 10_990)
    assert clock.lower_bound(11_000.0) <= T0 + 11_000
    # A quick sample later tightens it again.
    local.now = 12_010.0
    clock.observe(12_000.0, 12_010.0, server_time=T0 + 12_004)
    assert T0 + 12_000 <= clock.lower_bound(12_010.0) <= T0 + 12_010
    assert clock.error_ms() is not None and clock.error_ms() <= 6


@pytest.mark.parametrize("step_ms", [-5_000, -2_000, 2_000, 5_000])
def test_a_step_of_the_exchanges_clock_shows_in_the_next_date_header(step_ms: int) -> None:
    """A Date header that cannot meet the known bounds is a step: the bounds follow it at
    once (never left ahead of the exchange) and a precise re-measurement is due."""
    clock, local = make()
    local.now = 100.0
    clock.observe(90.0, 100.0, server_time=T0 + 95)
    assert clock.steps == 0
    local.now = 10_000.0
    stepped = T0 + step_ms  # the exchange's clock at local 0, after the step
    clock.observe(9_990.0, 10_000.0, date=date_of(stepped + 9_995))
    assert clock.steps == 1
    assert clock.needs_sync
    assert clock.lower_bound(10_000.0) <= stepped + 10_000
    assert clock.lower_bound(10_000.0) >= stepped + 10_000 - 1_020


def test_date_headers_consistent_with_the_clock_change_nothing_but_count() -> None:
    """A Date header within the bounds is no step and keeps the precise bound."""
    clock, local = make()
    local.now = 100.0
    clock.observe(90.0, 100.0, server_time=T0 + 95)
    before = clock.lower_bound(100.0)
    local.now = 600.0
    clock.observe(590.0, 600.0, date=date_of(T0 + 595))
    assert clock.steps == 0
    assert abs(clock.lower_bound(100.0) - before) <= 1


def test_a_date_header_from_another_clock_is_ignored() -> None:
    """A Date that disagrees with serverTime in the same answer (a proxy's clock) is no
    evidence: it is ignored from then on, and never reported as a step."""
    clock, local = make()
    local.now = 100.0
    clock.observe(90.0, 100.0, server_time=T0 + 95, date=date_of(T0 + 95 + 7_000))
    assert not clock.date_trusted
    local.now = 500.0
    clock.observe(490.0, 500.0, date=date_of(T0 + 495 + 7_000))
    assert clock.steps == 0


def test_a_resync_is_due_every_resync_s() -> None:
    """The clock asks to be measured again once ``resync_s`` has passed."""
    local = Local()
    clock = ExchangeClock(local=local, wall=lambda: T0 + local.now, resync_s=60.0)
    clock.observe(0.0, 10.0, server_time=T0 + 5)
    local.now = 59_000.0
    assert not clock.needs_sync
    local.now = 60_011.0
    assert clock.needs_sync


def test_bounds_widen_with_drift_over_time() -> None:
    """Between samples the error bound grows with the allowed drift, never shrinks."""
    clock, local = make()
    local.now = 10.0
    clock.observe(0.0, 10.0, server_time=T0 + 5)
    first = clock.error_ms()
    local.now = 3_600_000.0
    later = clock.error_ms()
    assert first is not None and later is not None
    assert later > first
    assert clock.lower_bound(local.now) <= T0 + local.now


def test_stats_show_offset_error_samples_and_steps() -> None:
    """stats() reports the offset from the local wall clock, its error bound and steps."""
    clock, local = make()
    local.now = 10.0
    clock.observe(0.0, 10.0, server_time=T0 + 5)
    stats = clock.stats(wall=lambda: T0 + local.now + 5_000.0)
    assert stats["synced"] is True
    assert stats["offset_ms"] == pytest.approx(-5_000, abs=6)
    assert stats["error_ms"] <= 6
    assert stats["samples"] == 1
    assert stats["steps"] == 0
