"""AIMD inside the ceiling, with time passed in."""

from __future__ import annotations

import pytest

from mystic_trading.throttle import AimdController
from mystic_trading.throttle._adaptive import LOSS_COOLDOWN_S, QUIET_S


def test_failure_cuts_once_per_cooldown() -> None:
    """A burst of 5xx from one incident is one 10 % cut."""
    aimd = AimdController(100.0, window_s=10)
    assert aimd.on_failure(1.0)
    assert not aimd.on_failure(1.0 + LOSS_COOLDOWN_S / 2)
    assert aimd.rate(1.0 + LOSS_COOLDOWN_S / 2) == pytest.approx(90.0)


def test_probe_back_to_the_ceiling_after_quiet() -> None:
    """No growth during the quiet period, then back up to (never above) the ceiling."""
    aimd = AimdController(100.0, window_s=10)
    aimd.on_failure(0.0)
    assert aimd.rate(QUIET_S - 0.01) == pytest.approx(90.0)
    assert aimd.rate(QUIET_S + 0.5) == pytest.approx(95.0)
    assert aimd.rate(QUIET_S + 60) == pytest.approx(100.0)


def test_429_lands_on_the_implied_rate_within_bounds() -> None:
    """A 429 drops to the header-implied rate, at least 10 % and at most half."""
    aimd = AimdController(100.0, window_s=10)
    aimd.on_throttled(0.0, implied=60.0)
    assert aimd.rate(0.0) == pytest.approx(60.0)
    aimd = AimdController(100.0, window_s=10)
    aimd.on_throttled(0.0, implied=99.0)
    assert aimd.rate(0.0) == pytest.approx(90.0)
    aimd = AimdController(100.0, window_s=10)
    aimd.on_throttled(0.0, implied=1.0)
    assert aimd.rate(0.0) == pytest.approx(50.0)


def test_repeated_429_lengthens_the_quiet_period() -> None:
    """A 429 soon after another doubles the time before probing again."""
    aimd = AimdController(100.0, window_s=1)
    aimd.on_throttled(0.0)
    first = aimd.rate(0.0)
    assert aimd.rate(QUIET_S * 1.5) == pytest.approx(first)
    aimd.on_throttled(QUIET_S * 1.5)
    second = aimd.rate(QUIET_S * 1.5)
    assert aimd.rate(QUIET_S * 1.5 + QUIET_S * 1.9) == pytest.approx(second)


def test_rising_latency_cuts_and_loopback_jitter_does_not() -> None:
    """Latency far past its baseline cuts; 1 ms to 3 ms jitter is ignored."""
    aimd = AimdController(100.0, window_s=10)
    for i in range(50):
        assert not aimd.on_latency(0.001 + 0.002 * (i % 2), i * 0.01)
    cut = any(aimd.on_latency(1.0, 1.0 + i * 0.01) for i in range(10))
    assert cut
    assert aimd.rate(1.2) < 100.0


def test_ceiling_change_clamps_the_rate() -> None:
    """Lowering the level lowers the rate at once."""
    aimd = AimdController(100.0, window_s=10)
    aimd.set_ceiling(10.0, 0.0)
    assert aimd.rate(0.0) == 10.0
