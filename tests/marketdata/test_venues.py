"""One identity per venue: the sandbox's data never answers for another exchange's, nor one
sandbox seed's for another's (review C1, new-user D1)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from mystic_trading.errors import UpstreamError, VenueMismatch
from mystic_trading.marketdata.answer import Layer
from mystic_trading.marketdata.facade import MarketData
from mystic_trading.models import Interval, Symbol
from mystic_trading.providers.venue import LEGACY_VENUE, venue_from_url
from mystic_trading.sandbox import SandboxConfig, SandboxServer
from mystic_trading.store import open_store

from .conftest import listening, refusing, settings

DAY = 86_400_000
START = 1_704_067_200_000  # 2024-01-01


@pytest.fixture
def seed1() -> Iterator[SandboxServer]:
    """A second sandbox with another seed: another market."""
    server = SandboxServer(SandboxConfig(port=0, seed=1)).start()
    yield server
    server.stop()


def closes(answer: Any) -> list[Decimal]:
    return [c.close for c in answer.value]


def test_venue_ids_name_the_exchange() -> None:
    """Binance's hosts are one venue; anything else is keyed by its host and port."""
    assert venue_from_url("https://api.binance.com") == "binance-spot"
    assert venue_from_url("https://data-api.binance.vision/") == "binance-spot"
    assert venue_from_url("http://127.0.0.1:9000") == "binance-compatible@127.0.0.1:9000"
    assert venue_from_url("https://proxy.local") == "binance-compatible@proxy.local:443"


def test_sandboxes_declare_a_venue_per_seed(exchange: SandboxServer, seed1: SandboxServer) -> None:
    """Two seeds are two venues; the same seed is the same venue wherever it listens."""
    again = SandboxServer(SandboxConfig(port=0)).start()
    try:
        assert exchange.venue != seed1.venue
        assert again.venue == exchange.venue
        assert exchange.venue.startswith("sandbox-s0-")
    finally:
        again.stop()


async def test_a_second_seed_is_never_answered_the_firsts_candles(
    exchange: SandboxServer, seed1: SandboxServer, store_url: str
) -> None:
    """Seed 0's stored candles and snapshots are not served to a process on seed 1, whose
    candles equal seed 1's own (new-user D1: they came back "from store")."""
    async with MarketData.open(settings(exchange, store_url)) as md:
        first = await md.candles("ETH/BTC", "1h", start=START, end=START + 2 * 3_600_000)
        await md.ticker("BTCUSDT")
        await md.flush()
        assert md.provider.venue == exchange.venue
    async with MarketData.open(settings(seed1, store_url)) as md:
        second = await md.candles("ETH/BTC", "1h", start=START, end=START + 2 * 3_600_000)
        assert second.layer is Layer.UPSTREAM
        assert md.provider.venue == seed1.venue
    oracle = seed1.market.klines(
        "ETHBTC", "1h", START, START + 2 * 3_600_000 - 1, 10, now=START + DAY
    )
    assert closes(second) == [Decimal(r[4]) for r in oracle]
    assert closes(second) != closes(first)


async def test_another_exchange_on_the_same_store_is_served_nothing_of_the_sandboxs(
    exchange: SandboxServer, store_url: str, unused_tcp_port: int
) -> None:
    """After the sandbox filled the store, an exchange elsewhere (down here) gets no
    sandbox ticker, book or candle, not even as a stale fallback (new-user D1)."""
    async with MarketData.open(settings(exchange, store_url)) as md:
        await md.ticker("BTCUSDT")
        await md.order_book("BTCUSDT", 20)
        await md.candles("BTCUSDT", "1d", start=START, end=START + 5 * DAY)
        await md.flush()
    elsewhere = f"http://127.0.0.1:{unused_tcp_port}"
    real = settings(exchange, store_url).model_copy(
        update={
            "provider": settings(exchange, store_url).provider.model_copy(
                update={"base_url": elsewhere, "venue": "binance-spot"}
            )
        }
    )
    async with MarketData.open(real) as md:
        assert md.provider.venue == "binance-spot"
        with pytest.raises(UpstreamError):
            await md.ticker("BTCUSDT")
        with pytest.raises(UpstreamError):
            await md.order_book("BTCUSDT", 20)
        with pytest.raises(UpstreamError):
            await md.candles("BTCUSDT", "1d", start=START, end=START + 5 * DAY)


async def test_redis_keys_are_per_venue(
    exchange: SandboxServer, seed1: SandboxServer, store_url: str, redis_url: str
) -> None:
    """A ticker cached in Redis by a seed-0 process is not served to a seed-1 process."""
    async with MarketData.open(settings(exchange, store_url, redis_url=redis_url)) as md0:
        await md0.clear()
        zero = await md0.ticker("BTCUSDT")
        await md0.layers.aclose()  # the Redis write is off the caller's path
    async with MarketData.open(settings(seed1, store_url, redis_url=redis_url)) as md1:
        one = await md1.ticker("BTCUSDT")
        assert one.layer is Layer.UPSTREAM
        assert one.value.price != zero.value.price
        await md1.clear()


async def test_an_exchange_that_changes_identity_mid_run_is_refused(
    exchange: SandboxServer, store_url: str
) -> None:
    """A process keyed by one venue refuses answers from another at the same address
    (a sandbox restarted with another seed), and stores nothing of them."""
    async with MarketData.open(settings(exchange, store_url)) as md:
        md.provider._declared = "sandbox-s99-00000000"  # as if started against another seed
        with pytest.raises(VenueMismatch) as info:
            await md.candles("BTCUSDT", "1d", start=START, end=START + 5 * DAY)
        assert info.value.found == exchange.venue
        await md.flush()
        assert await md.store.candles.gaps(
            md.provider.venue, Symbol("BTC", "USDT"), Interval.D1, START, START + 5 * DAY
        ) == [(START, START + 5 * DAY)]


async def test_rows_from_before_venues_are_reported_and_never_served(
    exchange: SandboxServer, store_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A store holding rows of the pre-venue key is named at start with its repair command,
    and none of them is served; moving them makes them a venue's."""
    async with MarketData.open(settings(exchange, store_url)) as md:
        real = await md.candles("BTCUSDT", "1d", start=START, end=START + 3 * DAY)
        await md.flush()
        venue = md.provider.venue
    async with await open_store(settings(exchange, store_url).store) as store:
        moved = await store.venues.move(venue, LEGACY_VENUE, actor="test", reason="old store")
        assert moved > 0
    with caplog.at_level(logging.WARNING):
        async with MarketData.open(settings(exchange, store_url)) as md:
            again = await md.candles("BTCUSDT", "1d", start=START, end=START + 3 * DAY)
            assert again.layer is Layer.UPSTREAM  # not the legacy rows
    assert "mystic db venues" in caplog.text
    assert LEGACY_VENUE in caplog.text
    async with await open_store(settings(exchange, store_url).store) as store:
        census = await store.venues.census()
        assert census[LEGACY_VENUE]["candles"] == 3
        with pytest.raises(ValueError, match="already holds rows"):
            await store.venues.move(LEGACY_VENUE, venue, actor="test", reason="")
        dropped = await store.venues.drop(LEGACY_VENUE, actor="test", reason="cleanup")
        assert dropped > 0
        assert LEGACY_VENUE not in await store.venues.census()
    assert closes(again) == closes(real)


async def test_a_process_started_while_its_exchange_is_down_keys_as_last_seen(
    exchange: SandboxServer, store_url: str
) -> None:
    """The venue a base URL last declared is kept, so a process that starts during an
    outage still serves (stale) what that venue stored."""
    async with MarketData.open(settings(exchange, store_url)) as md:
        await md.ticker("BTCUSDT")
        await md.layers.aclose()
    exchange.start_outage(30, "refuse")
    await refusing(exchange.port)
    try:
        async with MarketData.open(settings(exchange, store_url)) as md:
            assert md.provider.venue == exchange.venue
            answer = await md.ticker("BTCUSDT")
            assert answer.stale
            assert answer.layer is Layer.STORE
    finally:
        exchange.reset()


async def test_an_exchange_unreachable_at_start_is_identified_by_its_first_answer(
    exchange: SandboxServer, store_url: str
) -> None:
    """With no record of the base URL and the exchange down when the process opens, the
    venue is unconfirmed; its first answer names it before anything is kept."""
    exchange.start_outage(60, "refuse")
    await refusing(exchange.port)
    try:
        async with MarketData.open(settings(exchange, store_url)) as md:
            assert md.provider.venue == venue_from_url(exchange.url)
            exchange.reset()  # the outage ends; the listener reopens at once
            await listening(exchange.port)
            await md.ticker("BTCUSDT")  # the first answer: its snapshot is the venue's
            await md.candles("BTCUSDT", "1d", start=START, end=START + 3 * DAY)
            await md.flush()
            await md.layers.aclose()
            assert md.provider.venue == exchange.venue
            # Throttle state follows too, and a later start falls back on the record.
            assert md.throttler.provider == exchange.venue
            record = await md.store.venues.known(exchange.url.rstrip("/"))
            assert record is not None
            assert record.venue == exchange.venue
            census = await md.store.venues.census()
            data_tables = {"candles", "coverage", "tickers", "books", "exchange_info"}
            assert {v for v, rows in census.items() if data_tables & set(rows)} == {exchange.venue}
    finally:
        exchange.reset()
