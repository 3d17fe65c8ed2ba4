"""Backoff bounds, Retry-After and the retry budget."""

from __future__ import annotations

import random

import pytest

from mystic_trading.throttle import Backoff, RetryBudget, parse_retry_after


def test_full_jitter_stays_within_its_bound() -> None:
    """Each delay lies in [0, min(cap, base * 2**attempt)] and spreads over it."""
    backoff = Backoff(base_s=0.1, cap_s=2.0, rng=random.Random(1))
    for attempt in range(8):
        delays = [backoff.delay(attempt) for _ in range(200)]
        bound = min(2.0, 0.1 * 2**attempt)
        assert all(0 <= d <= bound for d in delays)
        assert max(delays) > bound / 2


def test_never_sooner_than_retry_after() -> None:
    """The exchange's Retry-After is a floor."""
    backoff = Backoff(base_s=0.1, cap_s=2.0, rng=random.Random(1))
    assert all(backoff.delay(0, retry_after=3.0) >= 3.0 for _ in range(100))


def test_retry_after_forms() -> None:
    """Seconds and HTTP-dates parse; garbage is ignored."""
    assert parse_retry_after("7", now_epoch_s=0) == 7.0
    assert parse_retry_after("Thu, 01 Jan 1970 00:00:10 GMT", now_epoch_s=4.0) == 6.0
    assert parse_retry_after("soon", now_epoch_s=0) is None
    assert parse_retry_after("-1", now_epoch_s=0) is None


def test_budget_caps_retries_at_ten_percent() -> None:
    """With no reserve, 100 requests allow exactly 10 retries in the window."""
    budget = RetryBudget(ratio=0.1, window_s=10, reserve=0)
    for _ in range(100):
        budget.record_request(1.0)
    spent = sum(budget.try_spend(1.0) for _ in range(50))
    assert spent == 10


def test_budget_refills_as_the_window_slides() -> None:
    """Old requests and retries leave the window; new traffic earns new retries."""
    budget = RetryBudget(ratio=0.1, window_s=10, reserve=0)
    for _ in range(10):
        budget.record_request(0.0)
    assert budget.try_spend(0.0)
    assert not budget.try_spend(0.0)
    for _ in range(10):
        budget.record_request(20.0)
    assert budget.try_spend(20.0)


@pytest.mark.parametrize("ratio", [-0.1, 1.5])
def test_budget_ratio_bounds(ratio: float) -> None:
    """A ratio outside [0, 1] is refused."""
    with pytest.raises(ValueError, match="ratio"):
        RetryBudget(ratio=ratio)
