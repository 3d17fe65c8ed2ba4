"""What the monitor measures itself: event-loop lag, resident memory, free disk."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from mystic_trading.monitor import LoopLag, free_disk_bytes, process_rss_bytes

from .conftest import FakeClock


async def test_loop_lag_is_how_late_the_probe_wakes() -> None:
    """Driven by an injected clock and sleep: each wake-up late by a known amount is one
    sample; p99 reads the samples of the window ending now."""
    clock = FakeClock(100.0)
    late = [0.0, 0.002, 0.5, 0.001]
    woke = asyncio.Event()

    async def sleep(seconds: float) -> None:
        if not late:
            woke.set()
            await asyncio.Event().wait()  # parked until aclose cancels it
        clock.advance(seconds + late.pop(0))

    lag = LoopLag(0.1, clock=clock, sleep=sleep)
    lag.start()
    await asyncio.wait_for(woke.wait(), 5)
    await lag.aclose()
    assert lag.samples == 4 and not lag.running
    assert lag.p99_ms(60.0) == pytest.approx(500.0)
    assert lag.percentile_ms(0.5, 60.0) == pytest.approx(1.0)
    clock.advance(120.0)
    assert lag.p99_ms(60.0) is None  # no sample in the last minute


async def test_loop_lag_sees_a_blocked_loop() -> None:
    """On the real loop and clock: a callback that blocks the loop for 50 ms shows as at
    least about that much lag."""
    lag = LoopLag(0.01)
    lag.start()
    await asyncio.sleep(0.05)
    time.sleep(0.05)  # noqa: ASYNC251 (blocks the event loop on purpose)
    await asyncio.sleep(0.05)
    await lag.aclose()
    p99 = lag.p99_ms(10.0)
    assert p99 is not None and p99 >= 30.0


def test_loop_lag_refuses_a_bad_period() -> None:
    """A period of zero or less is refused, naming it."""
    with pytest.raises(ValueError, match="period_s"):
        LoopLag(0.0)


def test_memory_and_disk_are_read() -> None:
    """Resident memory and free disk are positive byte counts on this system."""
    rss = process_rss_bytes()
    assert rss is not None and rss > 1024 * 1024
    assert free_disk_bytes(Path.cwd()) > 0
