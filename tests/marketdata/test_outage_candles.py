""" "The last N candles" through outages and bans: what the store holds is answered, stale,
with its age, and only the missing tail is fetched when the exchange is back (faults 1, 2).

Time is injected: the sandbox runs on a ManualClock and Mystic's local clocks are moved by
hand, so a minute rolls over inside the outage without a test waiting for one.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from mystic_trading.config import StoreSettings, ThrottleSettings
from mystic_trading.errors import UpstreamError
from mystic_trading.marketdata.answer import Layer
from mystic_trading.marketdata.facade import MarketData
from mystic_trading.providers import BinanceProvider
from mystic_trading.providers._clock import ExchangeClock
from mystic_trading.providers.venue import venue_from_url
from mystic_trading.sandbox import ManualClock, SandboxConfig, SandboxServer
from mystic_trading.store import Store, open_store
from mystic_trading.throttle import Budget, Throttler

from .conftest import listening, refusing

MINUTE = 60_000
T0 = 1_790_000_000_000 + 30_000  # half a minute into a minute


class Local:
    """This process's monotonic clock, moved by hand: ms for the exchange clock, s for the
    caches."""

    def __init__(self) -> None:
        self.ms = 1_000_000.0

    def monotonic_ms(self) -> float:
        return self.ms

    def monotonic_s(self) -> float:
        return self.ms / 1000


@pytest.fixture
def market() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def exchange(market: ManualClock) -> Iterator[SandboxServer]:
    server = SandboxServer(SandboxConfig(port=0, clock=market)).start()
    yield server
    server.stop()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await open_store(StoreSettings(url=f"sqlite+aiosqlite:///{tmp_path / 'o.db'}"))
    yield opened
    await opened.aclose()


class Process:
    def __init__(
        self,
        exchange: SandboxServer,
        store: Store,
        local: Local,
        settings: ThrottleSettings | None = None,
    ) -> None:
        # Keyed by the venue, as MarketData.open keys it (bans are kept per venue).
        self.throttler = Throttler(
            venue_from_url(exchange.url),
            Budget(limit=6000, window_s=60),
            settings=settings,
            control=store.control,
        )
        self.provider = BinanceProvider(
            exchange.url,
            self.throttler,
            clock=ExchangeClock(local=local.monotonic_ms, wall=lambda: float(T0)),
        )
        self.md = MarketData(self.provider, store, clock=local.monotonic_s)

    async def aclose(self) -> None:
        await self.md.aclose()
        await self.provider.aclose()
        await self.throttler.aclose()


def advance(ms: int, market: ManualClock, local: Local) -> None:
    market.advance(ms)
    local.ms += ms


def klines_sent(exchange: SandboxServer) -> int:
    return exchange.stats.endpoint("klines").requests


@pytest.mark.parametrize("mode", ["refuse", "503"])
async def test_the_last_n_is_served_from_the_store_through_an_outage(
    exchange: SandboxServer, store: Store, market: ManualClock, mode: str
) -> None:
    """Once the minute rolls during an outage, "the last 100 1m" is the store's candles,
    marked stale with their age, not UpstreamUnavailable; when the exchange is back only
    the tail is fetched (one page)."""
    local = Local()
    proc = Process(exchange, store, local)
    try:
        before = await proc.md.candles("BTCUSDT", "1m", limit=100)
        assert len(before.value) == 100
        await proc.md.flush()
        exchange.start_outage(600, mode)  # type: ignore[arg-type]
        if mode == "refuse":
            await refusing(exchange.port)
        advance(90_000, market, local)  # the minute rolls: a new window
        during = await proc.md.candles("BTCUSDT", "1m", limit=100)
        assert during.stale
        assert during.layer is Layer.STORE
        assert during.value == [c for c in before.value if c.closed][-len(during.value) :]
        assert len(during.value) >= 97
        assert 60_000 <= during.age_ms <= 200_000
        exchange.reset()
        await listening(exchange.port)
        sent = klines_sent(exchange)
        advance(1_000, market, local)
        # The first call after the outage is answered at once from the store, stale, while
        # one refresh goes to the exchange; once it is back, the answer is whole and fresh.
        assert (await proc.md.candles("BTCUSDT", "1m", limit=100)).stale
        await proc.md.flush()
        after = await proc.md.candles("BTCUSDT", "1m", limit=100)
        assert not after.stale
        assert len(after.value) == 100
        assert klines_sent(exchange) - sent == 1  # only the tail, with the open candle
    finally:
        exchange.reset()
        await proc.aclose()


async def test_a_process_restarted_during_a_ban_answers_from_the_store(
    exchange: SandboxServer, store: Store, market: ManualClock
) -> None:
    """A process that starts while a ban stands sends nothing and answers "the last N" from
    the store, stale (2,197 Banned before)."""
    local = Local()
    first = Process(exchange, store, local)
    await first.md.candles("ETHBTC", "1m", limit=50)
    await first.md.flush()
    venue = first.provider.venue
    await first.aclose()
    advance(30_000, market, local)
    # Bans are kept on this machine's wall clock, as the throttler records them.
    until = time.time_ns() // 1_000_000 + 3_600_000
    await store.control.save_ban(venue, until, "HTTP 418 on /api/v3/klines")
    second = Process(exchange, store, local)
    await second.throttler.start()  # reads the ban from the store
    try:
        sent = exchange.stats.snapshot()["total"]["requests"]
        answer = await second.md.candles("ETHBTC", "1m", limit=50)
        assert answer.stale
        assert len(answer.value) >= 47
        assert exchange.stats.snapshot()["total"]["requests"] == sent
    finally:
        await second.aclose()


async def test_a_window_with_a_hole_is_not_answered_partially(
    exchange: SandboxServer, store: Store, market: ManualClock
) -> None:
    """A past window the store holds only part of (a hole before its end) is an error in an
    outage, not a partial history passed off as stale."""
    local = Local()
    proc = Process(exchange, store, local)
    try:
        start = T0 - 500 * MINUTE
        await proc.md.candles("BTCUSDT", "1m", start=start + 100 * MINUTE, end=start + 200 * MINUTE)
        await proc.md.flush()
        exchange.start_outage(600, "503")
        with pytest.raises(UpstreamError):
            await proc.md.candles("BTCUSDT", "1m", start=start, end=start + 200 * MINUTE)
    finally:
        exchange.reset()
        await proc.aclose()
