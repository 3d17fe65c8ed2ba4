"""One contract over every quota backend (memory, Redis): same algorithm, same answers."""

from __future__ import annotations

import time

import pytest

from mystic_trading.throttle import BucketSpec, Quota

# Slow enough that the few milliseconds a test takes on Redis's clock do not matter.
SPEC = BucketSpec(rate=1.0, burst=10, window_s=60)


async def test_burst_then_wait(quota: Quota) -> None:
    """The burst goes at once; the next weight is refused with its wait, spending nothing."""
    assert (await quota.reserve("p", 10, SPEC, 0.0)).granted
    refused = await quota.reserve("p", 2, SPEC, 0.0)
    assert not refused.granted
    assert 1.8 < refused.delay_s <= 2.0
    again = await quota.reserve("p", 2, SPEC, 0.0)
    assert again.delay_s >= refused.delay_s - 0.1


async def test_reserve_ahead_grants_with_delay(quota: Quota) -> None:
    """Within the horizon the reservation is made and its delay returned."""
    await quota.reserve("p", 10, SPEC, 0.0)
    grant = await quota.reserve("p", 1, SPEC, 5.0)
    assert grant.granted
    assert 0.9 < grant.delay_s <= 1.0
    assert (await quota.reserve("p", 1, SPEC, 0.0)).delay_s > 1.8


async def test_keys_are_separate(quota: Quota) -> None:
    """Two providers never share a bucket."""
    await quota.reserve("a", 10, SPEC, 0.0)
    assert (await quota.reserve("b", 10, SPEC, 0.0)).granted


async def test_pause_stops_everyone(quota: Quota) -> None:
    """A 429 pause refuses every request until it ends."""
    await quota.pause("p", 30.0)
    grant = await quota.reserve("p", 1, SPEC, 0.0)
    assert not grant.granted
    assert 29.0 < grant.delay_s <= 30.0


async def test_ban_refuses_and_is_readable(quota: Quota) -> None:
    """A ban in force refuses with its end and the time it has left; an expired one is gone.
    (Redis keeps the ban on its own clock: its end reads back within a round trip.)"""
    until = int(time.time() * 1000) + 60_000
    await quota.ban("p", until)
    read = await quota.banned_until("p")
    assert read is not None and abs(read - until) < 1_000
    grant = await quota.reserve("p", 1, SPEC, 100.0)
    assert not grant.granted
    assert grant.banned_until_ms is not None and abs(grant.banned_until_ms - until) < 1_000
    assert 58 < grant.delay_s <= 60
    await quota.ban("q", int(time.time() * 1000) - 1)
    assert await quota.banned_until("q") is None


async def test_sync_usage_counts_foreign_weight(quota: Quota) -> None:
    """Reported usage near the limit leaves only what the window still allows."""
    await quota.sync_usage("p", 95, 100.0, 60.0, SPEC)
    grant = await quota.reserve("p", 10, SPEC, 0.0)
    assert not grant.granted
    assert grant.delay_s > 60.0


async def test_sync_usage_never_lowers(quota: Quota) -> None:
    """Usage below our own count leaves the bucket as it was."""
    await quota.reserve("p", 10, SPEC, 0.0)
    await quota.sync_usage("p", 0, 10_000.0, 60.0, SPEC)
    assert not (await quota.reserve("p", 1, SPEC, 0.0)).granted


@pytest.mark.parametrize("weight", [1, 7])
async def test_exact_total_over_burst(quota: Quota, weight: int) -> None:
    """Weights add up exactly: burst / weight requests fit at once, not one more."""
    fits = 10 // weight
    for _ in range(fits):
        assert (await quota.reserve("p", weight, SPEC, 0.0)).granted
    assert not (await quota.reserve("p", weight, SPEC, 0.0)).granted
