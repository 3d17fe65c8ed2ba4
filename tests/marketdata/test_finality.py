"""A candle is final only when the exchange has certainly closed it, and one that closes
while its page is in flight stays in the answer (review C2, M2)."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from mystic_trading.marketdata.facade import MarketData
from mystic_trading.marketdata.window import Window
from mystic_trading.models import Interval, Symbol
from mystic_trading.sandbox import SandboxConfig, SandboxServer

from .conftest import settings

SECOND = 1_000
BTC = Symbol("BTC", "USDT")


async def test_a_candle_that_closes_in_flight_stays_in_the_answer(
    md: MarketData, exchange: SandboxServer
) -> None:
    """A window laid while candle X was open, whose page the exchange answers after X
    closed, still answers X (not final yet: closed=False) and stores nothing past what is
    final. It used to fall between the closed part and the open candle (review M2)."""
    await md.provider.sync_clock()
    md.provider.final_grace_ms = 10_000  # X stays within the grace however slow this runs
    x = Interval.S1.floor(exchange.clock_ms()) - SECOND  # closed at the exchange already
    window = Window(BTC, Interval.S1, x - 2 * SECOND, x + SECOND)
    candles, _, _ = await md.filler.fill(window, now=x + 999)  # laid while X was open
    assert [c.open_time for c in candles] == [x - 2 * SECOND, x - SECOND, x]
    assert candles[-1].closed is False  # closed less than the grace ago: not final
    await md.flush()
    stored = await md.store.candles.range(md.provider.venue, BTC, Interval.S1, x - 2000, x + 1000)
    assert all(c.closed for c in stored)
    assert x not in {c.open_time for c in stored}


async def test_a_candle_is_stored_only_after_the_grace(
    md: MarketData, exchange: SandboxServer
) -> None:
    """Candles that closed less than final_grace_s ago are served closed=False and never
    stored; asked again once the exchange is past the grace, they are final and stored."""
    answer = await md.candles("BTCUSDT", "1s", limit=6)
    lower = md.provider.clock.lower_bound(md.provider.clock.local())
    grace = md.provider.final_grace_ms
    for c in answer.value:
        # Closed is decided on a lower bound of the exchange's clock, with the grace.
        if c.closed:
            assert c.close_time + grace < lower
    young = [c for c in answer.value if not c.closed]
    assert len(young) >= 2  # the open one, and at least the one that closed last
    await md.flush()
    stored = await md.store.candles.range(
        md.provider.venue, BTC, Interval.S1, answer.value[0].open_time, young[-1].open_time + 1
    )
    assert {c.open_time for c in stored}.isdisjoint(c.open_time for c in young)
    target = young[0]
    await asyncio.sleep(max(0.0, (target.close_time + grace + 600 - exchange.clock_ms()) / 1000))
    again = await md.candles("BTCUSDT", "1s", start=target.open_time, end=target.open_time + SECOND)
    assert [c.closed for c in again.value] == [True]
    await md.flush()
    final = exchange.final_candle("BTCUSDT", "1s", target.open_time)
    assert final is not None
    (kept,) = await md.store.candles.range(
        md.provider.venue, BTC, Interval.S1, target.open_time, target.open_time + SECOND
    )
    assert kept.volume == again.value[0].volume
    assert kept.volume == Decimal(final[5])


async def test_age_is_not_shifted_by_the_exchanges_clock(store_url: str) -> None:
    """An answer's age is measured on this machine's clock: fetched from an exchange whose
    clock is 30 s behind ours, a fresh ticker is not 30 s old (its stale-if-error bound
    would be cut by 30 s), and the exchange's offset shows in stats instead."""
    behind = SandboxServer(SandboxConfig(port=0, clock_skew_ms=-30_000)).start()
    try:
        async with MarketData.open(settings(behind, store_url)) as md:
            answer = await md.ticker("BTCUSDT")
            candles = await md.candles("BTCUSDT", "1m", limit=3)
            assert answer.age_ms < 10_000
            assert candles.age_ms < 10_000
            clock = md.stats()["clock"]
            assert clock["synced"]
            assert -31_000 < clock["offset_ms"] < -29_000
            assert clock["error_ms"] < 1_000
    finally:
        behind.stop()


async def test_the_clock_is_measured_once_for_a_burst(
    md: MarketData, exchange: SandboxServer
) -> None:
    """After a clock step, a burst of candle requests that all find the clock due measures
    it with one /time call (every page that found it due used to send its own)."""
    await md.candles("BTCUSDT", "1m", limit=5)
    before = exchange.stats.endpoint("time").requests
    exchange.set_clock_skew(5_000)
    await md.ticker("BTCUSDT")  # its Date header shows the step
    assert md.provider.clock.needs_sync
    await asyncio.gather(
        *(md.candles(name, "1m", limit=5) for name in ("ETHBTC", "SOLUSDT", "BNBUSDT") * 5)
    )
    assert exchange.stats.endpoint("time").requests - before == 1


async def test_a_window_laid_on_a_clock_that_ran_ahead_is_not_kept_a_day(
    md: MarketData, exchange: SandboxServer
) -> None:
    """After a backward step not yet seen, a window just before our "now" lies in the
    exchange's future and comes back empty: that answer is asked again soon, not cached as
    final for a day, so the candle is served once the exchange has it."""
    await md.candles("BTCUSDT", "1s", limit=3)  # the clock is measured
    exchange.set_clock_skew(-5_000)
    await asyncio.sleep(3)  # past what the exchange had shown before it stepped back
    start = Interval.S1.floor(md.provider.now_ms()) - 2 * SECOND
    first = await md.candles("BTCUSDT", "1s", start=start, end=start + SECOND)
    assert first.value == []  # the exchange is not there yet
    await asyncio.sleep(max(0.0, (start + 4 * SECOND - exchange.clock_ms()) / 1000))
    later = await md.candles("BTCUSDT", "1s", start=start, end=start + SECOND)
    if later.stale:  # served once more while its refresh runs (stale-while-revalidate)
        assert later.value == []
        for _ in range(40):
            await asyncio.sleep(0.05)
            later = await md.candles("BTCUSDT", "1s", start=start, end=start + SECOND)
            if not later.stale:
                break
    assert not later.stale
    assert [c.open_time for c in later.value] == [start]
