"""exchangeInfo kept fresh and shared: a new listing is usable without a restart, a second
process takes the listing from the store, and a process started during an outage loads it
once the exchange is back (review M1; new-user D6; faults 3)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from mystic_trading.config import StoreSettings
from mystic_trading.errors import UnknownSymbol
from mystic_trading.marketdata.facade import MarketData
from mystic_trading.models import Symbol
from mystic_trading.providers import BinanceProvider
from mystic_trading.sandbox import ManualClock, SandboxConfig, SandboxServer
from mystic_trading.store import Store, open_store
from mystic_trading.throttle import Budget, Throttler


class Monotonic:
    """MarketData's monotonic clock, moved by hand (seconds)."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def market_clock() -> ManualClock:
    """The sandbox's clock: ten minutes before NEWUSDT is listed."""
    listing = SandboxServer(SandboxConfig(port=0)).market.listing_ms("NEWUSDT")
    return ManualClock(listing - 10 * 60_000)


@pytest.fixture
def exchange(market_clock: ManualClock) -> Iterator[SandboxServer]:
    # 1,200 a minute, not the 6,000 fallback: a budget only exchangeInfo can have set.
    server = SandboxServer(SandboxConfig(port=0, clock=market_clock, weight_limit=1200)).start()
    yield server
    server.stop()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await open_store(StoreSettings(url=f"sqlite+aiosqlite:///{tmp_path / 'l.db'}"))
    yield opened
    await opened.aclose()


class Process:
    """One MarketData as a process would build it, on a shared store, with its own clock."""

    def __init__(self, exchange: SandboxServer, store: Store) -> None:
        self.clock = Monotonic()
        self.throttler = Throttler("test", Budget(limit=6000, window_s=60))
        self.provider = BinanceProvider(exchange.url, self.throttler)
        self.md = MarketData(self.provider, store, clock=self.clock)

    async def aclose(self) -> None:
        await self.md.aclose()
        await self.provider.aclose()
        await self.throttler.aclose()


def info_requests(exchange: SandboxServer) -> int:
    return exchange.stats.endpoint("exchangeInfo").requests


async def test_a_new_listing_is_usable_without_a_restart(
    exchange: SandboxServer, store: Store, market_clock: ManualClock
) -> None:
    """A name not yet listed is refused (and remembered a minute, costing nothing); once
    the exchange lists it, the next ask after that minute refreshes the listing and
    resolves it, in the same process."""
    proc = Process(exchange, store)
    try:
        with pytest.raises(UnknownSymbol, match="not listed"):
            await proc.md.symbol("NEWUSDT")
        assert info_requests(exchange) == 1
        for _ in range(5):  # a bot's loop on the name costs nothing
            with pytest.raises(UnknownSymbol):
                await proc.md.symbol("NEWUSDT")
        assert info_requests(exchange) == 1
        market_clock.advance(11 * 60_000)  # the exchange lists it
        proc.clock.now += 61
        assert await proc.md.symbol("NEWUSDT") == Symbol("NEW", "USDT")
        assert info_requests(exchange) == 2
    finally:
        await proc.aclose()


async def test_a_second_process_takes_the_listing_from_the_store(
    exchange: SandboxServer, store: Store
) -> None:
    """A fresh process finds a listing younger than an hour in the store and spends no
    weight on exchangeInfo (seven CLI calls spent 140 of 152 weight on it)."""
    first = Process(exchange, store)
    await first.md.symbol("BTCUSDT")
    await first.aclose()
    assert info_requests(exchange) == 1
    second = Process(exchange, store)
    try:
        assert await second.md.symbol("ETH/BTC") == Symbol("ETH", "BTC")
        with pytest.raises(UnknownSymbol):
            await second.md.symbol("NOPEUSDT")
        assert info_requests(exchange) == 1
        assert second.md.stats()["exchange_info"]["fetched"] == 0
        # The budget came from the kept copy's rateLimits too.
        assert second.throttler.stats()["limit"] == 1200
    finally:
        await second.aclose()


async def test_the_listing_is_refreshed_once_an_hour(exchange: SandboxServer, store: Store) -> None:
    """After an hour the listing is fetched again in the background, once."""
    proc = Process(exchange, store)
    try:
        await proc.md.symbol("BTCUSDT")
        proc.clock.now += 3_601
        await proc.md.symbol("ETHBTC")  # a request that needs the listing notices its age
        await proc.md.symbols.aclose()  # let the background refresh end
        assert info_requests(exchange) == 2
        assert proc.md.stats()["exchange_info"]["age_s"] < 5
    finally:
        await proc.aclose()


async def test_a_process_started_in_an_outage_loads_the_listing_when_it_is_back(
    exchange: SandboxServer, store: Store
) -> None:
    """While exchangeInfo cannot be had, names are parsed unchecked and loading is retried
    every 10 s, not never: once the exchange answers, unknown names are refused locally."""
    proc = Process(exchange, store)
    try:
        exchange.start_outage(60, "503")
        assert await proc.md.symbol("BTCUSDT") == Symbol("BTC", "USDT")
        exchange.reset()
        proc.clock.now += 11
        with pytest.raises(UnknownSymbol, match="not listed"):
            await proc.md.symbol("FOOUSDT")
        assert proc.md.stats()["exchange_info"]["fetched"] == 1
    finally:
        await proc.aclose()


@pytest.mark.parametrize(
    ("name", "suggestion"),
    [
        ("BTCUSTD", "did you mean BTC/USDT?"),  # no known quote: it did not even parse
        ("btc/usdd", "did you mean BTC/USDT"),  # parses, but is not listed
        ("ETHBTX", "did you mean ETH/BTC?"),
    ],
)
async def test_an_unlisted_name_suggests_the_closest_listed_symbols(
    exchange: SandboxServer, store: Store, name: str, suggestion: str
) -> None:
    """BTCUSTD got no "did you mean" (new-user D11): the refusal names the closest listed
    symbols, and spends nothing but the listing."""
    proc = Process(exchange, store)
    try:
        for _ in range(2):  # remembered the second time, with the same hint
            with pytest.raises(UnknownSymbol) as info:
                await proc.md.symbol(name)
            assert suggestion in str(info.value)
            assert "not listed" in str(info.value)
        assert exchange.stats.snapshot()["total"]["requests"] == info_requests(exchange) == 1
    finally:
        await proc.aclose()


async def test_a_name_like_nothing_listed_gets_no_suggestion(
    exchange: SandboxServer, store: Store
) -> None:
    """No suggestion is better than a wrong one."""
    proc = Process(exchange, store)
    try:
        with pytest.raises(UnknownSymbol) as info:
            await proc.md.symbol("QQQ/ZZZ")
        assert "did you mean" not in str(info.value)
    finally:
        await proc.aclose()
