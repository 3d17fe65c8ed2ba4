"""Admission ahead of time: a grant counted at its exact start, still stopped by a 429."""

from __future__ import annotations

import asyncio

from mystic_trading.config import ThrottleSettings
from mystic_trading.throttle import Budget, MemoryQuota, Throttler

SETTINGS = ThrottleSettings(level="unlimited", safety_margin=0.1)
# limit 1000 less 10 %: 900 weight/s a window, paced at 945/s, so 10 weight wait ~10.6 ms.
BUDGET = Budget(limit=1000, window_s=1.0, max_weight=100)


async def test_grant_ahead_is_counted_at_its_start_not_at_the_wake_up() -> None:
    """Back-to-back admissions at saturation are charged at their exact theoretical starts:
    the event loop waking a caller late does not push the next start later, so no budget is
    lost to wake-up latency (it was 3 % of the limit in bench/throttle.py)."""
    quota = MemoryQuota()
    async with Throttler("t", BUDGET, settings=SETTINGS, quota=quota) as throttler:
        assert quota.reserve_ahead_s > 0
        async with throttler.slot("/x", 100) as first:
            first.record(200, {})
        full_at = quota._bucket("t").at
        for _ in range(10):
            async with throttler.slot("/x", 10) as slot:
                slot.record(200, {})
        rate = throttler.rate() * throttler.pace
        # Each caller actually started at or after its theoretical start ...
        assert slot.sent_at >= full_at + 10 * 10 / rate - 1e-6
    # ... and the bucket was charged at exactly the theoretical starts.
    assert abs(quota._bucket("t").at - (full_at + 10 * 10 / rate)) < 1e-6


async def test_a_429_stops_a_request_granted_ahead() -> None:
    """A request granted 12.5 ms ahead and sleeping until its start does not go out when a
    429 arrives meanwhile: it waits for the pause like every other caller."""
    async with Throttler("t", BUDGET, settings=SETTINGS, quota=MemoryQuota()) as throttler:
        async with throttler.slot("/x", 100) as first:
            sent: list[float] = []

            async def second() -> None:
                async with throttler.slot("/y", 10) as slot:
                    slot.record(200, {})
                sent.append(slot.sent_at)

            task = asyncio.create_task(second())
            for _ in range(3):
                await asyncio.sleep(0)
            assert not sent, "the second request should be sleeping until its grant"
            first.record(429, {"Retry-After": "1"})
        paused_from = throttler.clock()
        await task
    assert sent[0] >= paused_from + 1.0 - 0.01


async def test_a_gate_sees_each_request_and_refuses_it_before_any_weight_is_spent() -> None:
    """``add_gate``: called with the endpoint and weight of every request as it comes to be
    admitted (once however often it is added); one it refuses is refused there, with nothing
    reserved in the quota nor counted as admitted."""
    quota = MemoryQuota()
    seen: list[tuple[str, int]] = []

    class Refused(Exception):
        pass

    async def gate(endpoint: str, weight: int) -> None:
        seen.append((endpoint, weight))
        if endpoint == "/no":
            raise Refused(endpoint)

    async with Throttler("t", BUDGET, settings=SETTINGS, quota=quota) as throttler:
        throttler.add_gate(gate)
        throttler.add_gate(gate)
        async with throttler.slot("/yes", 10) as slot:
            slot.record(200, {})
        charged = quota._bucket("t").at
        try:
            async with throttler.slot("/no", 50) as slot:
                raise AssertionError("a refused request must not be admitted")
        except Refused:
            pass
        assert quota._bucket("t").at == charged
        assert throttler.stats()["weight"] == 10
    assert seen == [("/yes", 10), ("/no", 50)]
