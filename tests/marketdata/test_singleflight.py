"""Single flight: one upstream call per key in flight, shielded from cancellation."""

from __future__ import annotations

import asyncio

import pytest

from mystic_trading.marketdata.singleflight import SingleFlight


async def test_concurrent_callers_share_one_call() -> None:
    """1,000 concurrent callers of one key cause exactly one call and all get its result."""
    flight: SingleFlight[int] = SingleFlight()
    calls = 0
    gate = asyncio.Event()

    async def fetch() -> int:
        nonlocal calls
        calls += 1
        await gate.wait()
        return 42

    waiters = [asyncio.create_task(flight.do("k", fetch)) for _ in range(1000)]
    await asyncio.sleep(0)
    gate.set()
    assert await asyncio.gather(*waiters) == [42] * 1000
    assert calls == 1
    assert (flight.started, flight.joined) == (1, 999)
    assert len(flight) == 0  # finished entries are removed


async def test_one_cancelled_caller_does_not_cancel_the_others() -> None:
    """Cancelling one waiter leaves the shared call running for the rest."""
    flight: SingleFlight[str] = SingleFlight()
    gate = asyncio.Event()

    async def fetch() -> str:
        await gate.wait()
        return "done"

    first = asyncio.create_task(flight.do("k", fetch))
    second = asyncio.create_task(flight.do("k", fetch))
    await asyncio.sleep(0)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    gate.set()
    assert await second == "done"


async def test_timeout_of_the_starter_does_not_cancel_the_work() -> None:
    """wait_for timing out on the first caller still lets a later joiner get the result."""
    flight: SingleFlight[str] = SingleFlight()
    gate = asyncio.Event()
    calls = 0

    async def fetch() -> str:
        nonlocal calls
        calls += 1
        await gate.wait()
        return "late"

    with pytest.raises(TimeoutError):
        await asyncio.wait_for(flight.do("k", fetch), timeout=0.01)
    joiner = asyncio.create_task(flight.do("k", fetch))
    await asyncio.sleep(0)
    gate.set()
    assert await joiner == "late"
    assert calls == 1


async def test_failure_reaches_every_waiter_and_is_not_cached() -> None:
    """An error goes to all current waiters; the next call runs again."""
    flight: SingleFlight[int] = SingleFlight()
    attempts = 0

    async def fetch() -> int:
        nonlocal attempts
        attempts += 1
        await asyncio.sleep(0)
        if attempts == 1:
            raise RuntimeError("upstream down")
        return 7

    results = await asyncio.gather(
        flight.do("k", fetch), flight.do("k", fetch), return_exceptions=True
    )
    assert all(isinstance(r, RuntimeError) for r in results)
    assert await flight.do("k", fetch) == 7
    assert attempts == 2


async def test_all_waiters_gone_leaves_no_unretrieved_error() -> None:
    """A flight that fails after every waiter left logs no 'never retrieved' warning."""
    flight: SingleFlight[int] = SingleFlight()
    gate = asyncio.Event()

    async def fetch() -> int:
        await gate.wait()
        raise RuntimeError("boom")

    waiter = asyncio.create_task(flight.do("k", fetch))
    await asyncio.sleep(0)
    waiter.cancel()
    gate.set()
    for _ in range(3):
        await asyncio.sleep(0)
    assert len(flight) == 0
