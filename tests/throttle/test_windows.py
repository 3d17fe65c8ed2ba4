"""The exchange's fixed windows counted: each holds at most its cap, requests on a boundary
count in both windows, the usage header raises a window's count, and lighter waiters take
what a heavy head leaves of a window."""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from mystic_trading.config import ThrottleSettings
from mystic_trading.throttle import BucketSpec, Budget, MemoryQuota, Quota, Throttler
from mystic_trading.throttle._gcra import BucketState, Windows, reserve, sync_window

WEIGHTS = (1, 2, 4, 5, 2, 25, 50)


def _greedy(windows: Windows, rate: float, burst: float, seconds: float) -> list[tuple[float, int]]:
    """One caller sending mixed weights back to back; (start, weight) of each admission."""
    rng = random.Random(11)
    state = BucketState(at=0.0)
    now, admitted = 0.0, []
    weight = rng.choice(WEIGHTS)
    while now < seconds:
        grant = reserve(state, weight, rate, burst, now, int(now * 1000), 0.0, windows)
        if grant.granted:
            admitted.append((now, weight))
            weight = rng.choice(WEIGHTS)
        else:
            now += grant.delay_s
    return admitted


@pytest.mark.parametrize("offset", [0.0, 0.013, 1.7, 2.999])
def test_every_exchange_window_holds_its_cap_and_no_more(offset: float) -> None:
    """Paced above the window's share, greedy traffic fills each window of the exchange (its
    clock ``offset`` from ours) to within one request of the cap, never past it: the whole
    limit less the margin, where a GCRA alone had to keep a burst of every window aside."""
    cap, length, burst = 4410.0, 3.0, 50
    windows = Windows(cap=cap, length_s=length, offset_s=offset)
    admitted = _greedy(windows, 1.05 * cap / length, burst, 60.0)
    sums: dict[int, int] = {}
    for t, w in admitted:
        index = int((t + offset) // length)
        sums[index] = sums.get(index, 0) + w
    whole = sorted(sums)[1:-1]  # the first and last windows are cut by the run
    assert len(whole) >= 18
    for index in whole:
        assert cap - max(WEIGHTS) < sums[index] <= cap, index


def test_a_request_on_a_boundary_counts_in_both_windows() -> None:
    """Within the clock's error bound of a boundary the exchange may count a request in either
    window, so it is charged to both: the next window has that much less room."""
    windows = Windows(cap=100.0, length_s=10.0, offset_s=0.0, skew_s=0.1)
    state = BucketState(at=9.95)
    assert reserve(state, 60, 1000.0, 100, 9.95, 9950, 0.0, windows).granted
    refused = reserve(state, 50, 1000.0, 100, 10.5, 10500, 0.0, windows)
    assert not refused.granted
    assert refused.delay_s == pytest.approx(20.1 - 10.5, abs=1e-3)
    # Without the error bound the same request is the next window's alone.
    exact = Windows(cap=100.0, length_s=10.0, offset_s=0.0)
    state = BucketState(at=9.95)
    assert reserve(state, 60, 1000.0, 100, 9.95, 9950, 0.0, exact).granted
    assert reserve(state, 50, 1000.0, 100, 10.5, 10500, 0.0, exact).granted


def test_header_sync_raises_a_window_count_and_never_lowers_it() -> None:
    """The exchange's usage raises the count of its window; less than ours, or for a window
    already past, changes nothing."""
    windows = Windows(cap=100.0, length_s=10.0, offset_s=0.0)
    state = BucketState(at=0.0)
    assert reserve(state, 10, 1000.0, 100, 1.0, 1000, 0.0, windows).granted
    assert not sync_window(state, 5, 0)
    assert sync_window(state, 95, 0)
    refused = reserve(state, 10, 1000.0, 100, 2.0, 2000, 0.0, windows)
    assert not refused.granted
    assert refused.delay_s == pytest.approx(8.0, abs=1e-3)
    assert sync_window(state, 40, 1)  # the next window, already used elsewhere
    assert not sync_window(state, 99, -1)  # a window before the count: gone
    assert reserve(state, 60, 1000.0, 100, 10.5, 10500, 0.0, windows).granted
    assert not reserve(state, 1, 1000.0, 100, 10.6, 10600, 0.0, windows).granted


def test_a_shared_window_cap_splits_for_the_local_fallback() -> None:
    """A process metering its share alone gets its share of the rate and of each window."""
    spec = BucketSpec(rate=100.0, burst=10, window_s=10, cap=1000.0)
    share = spec.share(4)
    assert (share.rate, share.cap, share.burst) == (25.0, 250.0, 10)


def _spec_before_boundary(left_s: float) -> BucketSpec:
    """Windows of 60 s, the exchange's clock ``left_s`` before the end of one."""
    return BucketSpec(rate=100.0, burst=10, window_s=60, cap=10.0, exchange_s=60_000 - left_s)


async def test_a_full_window_waits_for_the_next(quota: Quota) -> None:
    """On every backend: once the window's cap is spent, the next request waits for the
    exchange's next window (not for the GCRA, which would let it go in 10 ms)."""
    spec = _spec_before_boundary(0.5)
    assert (await quota.reserve("p", 10, spec, 0.0)).granted
    refused = await quota.reserve("p", 1, _spec_before_boundary(0.5), 0.0)
    assert not refused.granted
    assert 0.4 < refused.delay_s <= 0.55


async def test_usage_header_fills_the_window(quota: Quota) -> None:
    """On every backend: the exchange's reported usage leaves only the rest of the cap."""
    await quota.sync_usage("p", 8, 10.0, 0.5, _spec_before_boundary(0.5))
    assert (await quota.reserve("p", 2, _spec_before_boundary(0.5), 0.0)).granted
    assert not (await quota.reserve("p", 1, _spec_before_boundary(0.5), 0.0)).granted


async def test_lighter_waiters_use_what_a_heavy_head_leaves_of_the_window() -> None:
    """A 100-weight head that does not fit in the rest of the window waits for the next one;
    a 10-weight request behind it takes the rest now, and the head goes when the window turns
    (strict FIFO left that rest unspent: up to one heavy request's weight every window)."""
    budget = Budget(limit=2000, window_s=2.0, max_weight=100)
    settings = ThrottleSettings(level="unlimited", safety_margin=0.0)
    wall = time.time()
    started = time.monotonic()
    # The exchange's clock 1 s before the end of one of its windows as the test starts.
    offset_ms = (int(wall / 2) + 1) * 2000 - 1000 - wall * 1000

    def exchange_ms() -> float:
        return time.time() * 1000 + offset_ms

    boundary = started + 1.0
    async with Throttler(
        "t", budget, settings=settings, quota=MemoryQuota(), exchange_ms=exchange_ms
    ) as throttler:
        async with throttler.slot("/x", 1) as slot:
            # The exchange says 1,950 of this window's 2,000 are used.
            slot.record(200, {budget.header: "1950"})
        sent: dict[str, float] = {}

        async def send(name: str, weight: int) -> None:
            async with throttler.slot(name, weight) as slot:
                slot.record(200, {})
            sent[name] = slot.sent_at

        heavy = asyncio.create_task(send("heavy", 100))
        await asyncio.sleep(0.01)
        light = asyncio.create_task(send("light", 10))
        await asyncio.gather(heavy, light)
    assert sent["light"] < sent["heavy"]
    assert sent["light"] < boundary
    assert sent["heavy"] >= boundary - 0.01
