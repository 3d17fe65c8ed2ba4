"""MarketData end to end: real sandbox over HTTP, real SQLite/PostgreSQL, real Redis."""

from __future__ import annotations

import asyncio
import random
import uuid
from decimal import Decimal
from typing import Any

import pytest

from mystic_trading.errors import (
    DataError,
    InvalidInterval,
    InvalidRange,
    InvalidSymbol,
    UnknownSymbol,
    UpstreamError,
)
from mystic_trading.marketdata.answer import Layer
from mystic_trading.marketdata.facade import MarketData
from mystic_trading.models import Interval, Symbol
from mystic_trading.sandbox import SandboxServer

from ..conftest import Moved
from .conftest import OpenMd

DAY = 86_400_000


def requests_to(exchange: SandboxServer, endpoint: str) -> int:
    return exchange.stats.endpoint(endpoint).requests


async def test_ticker_comes_from_upstream_then_memory(md: MarketData) -> None:
    """The first ticker read goes upstream; the next is a memory hit with the same value."""
    first = await md.ticker("BTC/USDT")
    second = await md.ticker("BTCUSDT")
    assert first.layer is Layer.UPSTREAM
    assert second.layer is Layer.MEMORY
    assert second.value == first.value
    assert not second.stale
    assert first.value.symbol == Symbol("BTC", "USDT")


async def test_stampede_of_1000_cold_requests_is_one_upstream_call(
    md: MarketData, exchange: SandboxServer
) -> None:
    """1,000 concurrent requests for one cold key make exactly one upstream call."""
    await md.exchange_info()
    before = requests_to(exchange, "ticker/24hr")
    answers = await asyncio.gather(*(md.ticker("ETH/BTC") for _ in range(1000)))
    assert requests_to(exchange, "ticker/24hr") - before == 1
    assert len({a.value for a in answers}) == 1
    assert md.stats()["by_kind"]["ticker"]["coalesced"] == 999


async def test_closed_candles_equal_the_oracle(md: MarketData, exchange: SandboxServer) -> None:
    """Every served closed candle equals the sandbox's deterministic candle, over random
    ranges including listing dates and exchange downtime."""
    rng = random.Random(11)
    now = md.provider.now_ms()
    gap = next(g for g in exchange.market.gaps if g.end < now - 30 * DAY)
    cases = [
        ("SOLUSDT", Interval.H1, exchange.market.listing_ms("SOLUSDT") - 5 * DAY, 10 * DAY),
        ("BTCUSDT", Interval.M1, gap.start - 90 * 60_000, 4 * 3_600_000 + 5 * 3_600_000),
        ("ETHBTC", Interval.M5, gap.start - DAY // 2, DAY),
    ]
    for _ in range(3):
        interval = rng.choice([Interval.M15, Interval.H4, Interval.D1])
        step = interval.ms
        assert step is not None
        start = now - rng.randrange(200, 2000) * step
        cases.append(("BNBUSDT", interval, start, rng.randrange(10, 1000) * step))
    for name, interval, start, span in cases:
        answer = await md.candles(name, interval, start=start, end=start + span)
        oracle = exchange.market.klines(
            name, interval, interval.ceil(start), start + span - 1, 1000, now=now
        )
        closed = [c for c in answer.value if c.closed]
        # The same candles: none invented in a gap or before listing, none missing.
        assert [c.open_time for c in closed] == [r[0] for r in oracle if r[6] < now]
        for candle, row in zip(closed, oracle, strict=False):
            assert (candle.open, candle.high, candle.low, candle.close, candle.volume) == tuple(
                Decimal(x) for x in row[1:6]
            )
            assert (candle.trades, candle.taker_buy_quote_volume) == (row[8], Decimal(row[10]))
        if name == "SOLUSDT":
            assert closed[0].open_time >= exchange.market.listing_ms("SOLUSDT")


async def test_known_empty_ranges_are_not_fetched_again(
    md: MarketData, exchange: SandboxServer
) -> None:
    """A range before listing is fetched once; asking again (memory cleared) costs nothing."""
    listing = exchange.market.listing_ms("NEWUSDT")
    start, end = listing - 40 * DAY, listing - 10 * DAY
    first = await md.candles("NEWUSDT", "1d", start=start, end=end)
    assert first.value == []
    calls = requests_to(exchange, "klines")
    await md.clear()
    again = await md.candles("NEWUSDT", "1d", start=start, end=end)
    assert again.value == []
    assert again.layer is Layer.STORE
    assert requests_to(exchange, "klines") == calls


async def test_a_range_fetches_only_its_gaps_in_pages(
    md: MarketData, exchange: SandboxServer
) -> None:
    """2,500 minutes cost 3 pages; a wider window then fetches only the new part."""
    now = md.provider.now_ms()
    start = Interval.M1.floor(now) - 10_000 * 60_000
    before = requests_to(exchange, "klines")
    first = await md.candles("BTCUSDT", "1m", start=start, end=start + 2500 * 60_000)
    assert len(first.value) == 2500
    assert requests_to(exchange, "klines") - before == 3
    wider = await md.candles("BTCUSDT", "1m", start=start - 500 * 60_000, end=start + 2600 * 60_000)
    assert len(wider.value) == 3100
    assert requests_to(exchange, "klines") - before == 5  # 500 before, 100 after


async def test_a_cold_range_is_answered_from_what_was_fetched(md: MarketData) -> None:
    """A range fetched whole is served from the fetched pages, not read back from the store,
    and is the same as what the store then holds."""
    now = md.provider.now_ms()
    start = Interval.M1.floor(now) - 5_000 * 60_000
    end = start + 1_440 * 60_000
    reads = md.store.metrics.snapshot().get("candles.range", {}).get("count", 0)
    answer = await md.candles("ETHUSDT", "1m", start=start, end=end)
    assert md.store.metrics.snapshot().get("candles.range", {}).get("count", 0) == reads
    await md.flush()  # written in the background
    stored = await md.store.candles.range(md.provider.venue, "ETH/USDT", "1m", start, end)
    assert answer.value == list(stored)
    assert len(answer.value) == 1_440


async def test_a_range_still_being_written_is_not_fetched_again(
    md: MarketData, exchange: SandboxServer
) -> None:
    """A wider request that arrives while a fetched range is still being written waits for
    the write and fetches only what lies outside it."""
    now = md.provider.now_ms()
    start = Interval.M1.floor(now) - 8_000 * 60_000
    before = requests_to(exchange, "klines")
    await md.candles("ADAUSDT", "1m", start=start, end=start + 2_000 * 60_000)
    assert requests_to(exchange, "klines") - before == 2
    # No flush: the write of those two pages may still be running.
    wider = await md.candles("ADAUSDT", "1m", start=start, end=start + 2_300 * 60_000)
    assert len(wider.value) == 2_300
    assert requests_to(exchange, "klines") - before == 3
    assert [c.open_time for c in wider.value] == [start + i * 60_000 for i in range(2_300)]


async def test_open_candle_is_served_but_never_stored(
    md: MarketData, exchange: SandboxServer
) -> None:
    """The last candle of a window reaching now is open; only final candles are closed (one
    that closed less than the grace ago is not yet), and the store holds only those."""
    answer = await md.candles("BTCUSDT", "1m", limit=10)
    flags = [c.closed for c in answer.value]
    assert len(flags) == 10
    assert flags[-1] is False
    assert flags == sorted(flags, reverse=True)
    assert flags.count(False) <= 2
    await md.flush()
    stored = await md.store.candles.range(
        md.provider.venue,
        "BTC/USDT",
        "1m",
        answer.value[0].open_time,
        answer.value[-1].close_time + 1,
    )
    assert list(stored) == [c for c in answer.value if c.closed]


async def test_restart_with_the_store_intact_costs_no_upstream_call(
    open_md: OpenMd, exchange: SandboxServer
) -> None:
    """Closed candles read before a restart are served after it with zero klines calls."""
    async with open_md() as md:
        now = md.provider.now_ms()
        start, end = now - 30 * DAY, now - 2 * DAY
        before = await md.candles("XRPUSDT", "1h", start=start, end=end)
    calls = requests_to(exchange, "klines")
    async with open_md() as md:
        after = await md.candles("XRPUSDT", "1h", start=start, end=end)
    assert requests_to(exchange, "klines") == calls
    assert after.layer is Layer.STORE
    assert after.value == before.value


async def test_unknown_symbol_spends_no_quota(md: MarketData, exchange: SandboxServer) -> None:
    """A symbol the exchange does not list is refused before any request is sent."""
    await md.exchange_info()
    before = exchange.stats.snapshot()["total"]
    for _ in range(3):
        with pytest.raises(UnknownSymbol) as info:
            await md.ticker("DOGE/EUR")
    assert info.value.symbol == "DOGE/EUR"
    assert exchange.stats.snapshot()["total"] == before
    assert md.stats()["negative_hits"] == 3


FEB, JAN = "2024-02-01", "2024-01-01"


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda md: md.ticker("BTC//USDT"), InvalidSymbol, "BTC//USDT"),
        (lambda md: md.candles("BTCUSDT", "7m"), InvalidInterval, "'7m'"),
        (lambda md: md.candles("BTCUSDT", "1h", start=FEB, end=JAN), InvalidRange, "before start"),
        (
            lambda md: md.candles("BTCUSDT", "1s", start="2015-01-01", end="2025-01-01"),
            InvalidRange,
            "allow_large=True",
        ),
        (lambda md: md.candles("BTCUSDT", "1h", start="next tuesday"), InvalidRange, "ISO-8601"),
        (lambda md: md.order_book("BTCUSDT", 0), DataError, "depth"),
    ],
    ids=["symbol", "interval", "end-before-start", "ten-years-of-1s", "bad-date", "depth"],
)
async def test_bad_input_is_a_clear_error_and_sends_nothing(
    md: MarketData, exchange: SandboxServer, call: object, error: type[Exception], match: str
) -> None:
    """Each bad input raises its DataError, naming the problem, before any request is sent."""
    await md.exchange_info()
    before = exchange.stats.snapshot()["total"]["requests"]
    with pytest.raises(error, match=match):
        await call(md)  # type: ignore[operator]
    assert exchange.stats.snapshot()["total"]["requests"] == before


async def test_outage_serves_stale_marked_stale(open_md: OpenMd, exchange: SandboxServer) -> None:
    """With the exchange down, the last good ticker is served marked stale."""
    clock = Moved()
    async with open_md(clock, cache={"ticker_ttl_s": 0.05, "stale_if_error_s": 60}) as md:
        good = await md.ticker("BTCUSDT")
        exchange.start_outage(30, "refuse")
        clock.advance(1.0)  # past fresh and past the SWR window
        stale = await md.ticker("BTCUSDT")
        assert stale.stale
        assert stale.value == good.value
        assert md.stats()["by_kind"]["ticker"]["stale"] >= 1


async def test_outage_after_restart_serves_the_stores_snapshot(
    open_md: OpenMd, exchange: SandboxServer
) -> None:
    """A fresh process with the exchange down serves the stored ticker, marked stale."""
    async with open_md() as md:
        good = await md.ticker("ETHUSDT")
        await md.flush()  # the snapshot is written in the background
    exchange.start_outage(30, "503")
    async with open_md() as md:
        stale = await md.ticker("ETHUSDT")
    assert stale.layer is Layer.STORE
    assert stale.stale
    assert stale.value.price == good.value.price


async def test_outage_without_any_good_value_raises(
    open_md: OpenMd, exchange: SandboxServer
) -> None:
    """With nothing to fall back on, the upstream error reaches the caller."""
    exchange.start_outage(30, "refuse")
    async with open_md() as md:
        with pytest.raises(UpstreamError):
            await md.order_book("ADAUSDT", 5)


async def test_stale_while_revalidate_refreshes_once(
    open_md: OpenMd, exchange: SandboxServer
) -> None:
    """Past its TTL a ticker is served stale while exactly one background refresh runs."""
    clock = Moved()
    async with open_md(clock, cache={"ticker_ttl_s": 2.0}) as md:
        await md.ticker("LTCUSDT")
        before = requests_to(exchange, "ticker/24hr")
        clock.advance(2.3)  # inside the stale window, 2.0-4.0 s after the fetch
        answers = await asyncio.gather(*(md.ticker("LTCUSDT") for _ in range(50)))
        assert all(a.stale for a in answers)
        await md.flush()  # the one background refresh
        fresh = await md.ticker("LTCUSDT")
        assert not fresh.stale
        assert requests_to(exchange, "ticker/24hr") - before == 1


async def test_cancelled_waiter_does_not_cancel_the_shared_fetch(
    md: MarketData, exchange: SandboxServer
) -> None:
    """Cancelling one of two waiters leaves the other with the answer, from one call."""
    await md.exchange_info()
    exchange.set_latency(100)
    before = requests_to(exchange, "depth")
    first = asyncio.create_task(md.order_book("BTCUSDT", 5))
    second = asyncio.create_task(md.order_book("BTCUSDT", 5))
    await asyncio.sleep(0.02)
    first.cancel()
    answer = await second
    assert answer.value.symbol == Symbol("BTC", "USDT")
    assert first.cancelled()
    assert requests_to(exchange, "depth") - before == 1


@pytest.mark.redis
async def test_redis_shares_answers_between_processes(
    open_md: OpenMd, exchange: SandboxServer, redis_url: str
) -> None:
    """A second MarketData sharing Redis gets the first one's ticker from Redis."""
    prefix = f"test:{uuid.uuid4().hex}"
    async with open_md(redis_url=redis_url) as one, open_md(redis_url=redis_url) as two:
        for md in (one, two):
            assert md.redis is not None
            md.redis.prefix = prefix + ":md:"
        await one.ticker("DOTUSDT")
        await one.flush()  # the Redis write is in the background
        calls = requests_to(exchange, "ticker/24hr")
        shared = await two.ticker("DOTUSDT")
        assert shared.layer is Layer.REDIS
        assert requests_to(exchange, "ticker/24hr") == calls
        await one.clear()


async def test_dead_redis_is_skipped_and_answers_still_come(
    open_md: OpenMd,
) -> None:
    """With Redis unreachable, MarketData answers from the exchange and says Redis is down."""
    async with open_md(redis_url="redis://127.0.0.1:1/0") as md:
        answer = await md.ticker("BTCUSDT")
        assert answer.layer is Layer.UPSTREAM
        redis = md.stats()["redis"]
        assert redis["available"] is False
        assert redis["errors"] >= 1


async def test_concurrent_first_requests_fetch_exchange_info_once(
    md: MarketData, exchange: SandboxServer
) -> None:
    """A cold process's first burst of requests loads exchangeInfo (weight 20) only once."""
    await asyncio.gather(*(md.ticker(name) for name in ("BTCUSDT", "ETHUSDT", "SOLUSDT") * 20))
    assert requests_to(exchange, "exchangeInfo") == 1


async def test_cold_tickers_are_fetched_in_one_batched_call(
    md: MarketData, exchange: SandboxServer
) -> None:
    """Five cold tickers cost one /ticker/24hr call of weight 2; asked again, none."""
    await md.exchange_info()
    names = ["BTCUSDT", "ETH/USDT", "SOLUSDT", "BTCUSDT", "XRPUSDT", "ADAUSDT"]
    before = exchange.stats.endpoint("ticker/24hr")
    answers = await md.tickers(names)
    after = exchange.stats.endpoint("ticker/24hr")
    assert (after.requests - before.requests, after.weight - before.weight) == (1, 2)
    assert [str(a.value.symbol) for a in answers] == [
        "BTC/USDT", "ETH/USDT", "SOL/USDT", "BTC/USDT", "XRP/USDT", "ADA/USDT",
    ]  # fmt: skip
    assert all(a.layer is Layer.UPSTREAM for a in answers)
    again = await md.tickers(names)
    assert all(a.layer is Layer.MEMORY for a in again)
    assert exchange.stats.endpoint("ticker/24hr").requests == after.requests


async def test_batched_tickers_fall_back_one_by_one(
    open_md: OpenMd, exchange: SandboxServer
) -> None:
    """When the batch fails, each ticker takes its own path and stale fallback."""
    clock = Moved()
    async with open_md(clock, cache={"ticker_ttl_s": 0.05}) as md:
        first = await md.tickers(["BTCUSDT", "ETHUSDT"])
        exchange.start_outage(30, "503")
        clock.advance(1.0)  # past fresh and past the SWR window
        stale = await md.tickers(["BTCUSDT", "ETHUSDT"])
    assert [a.value for a in stale] == [a.value for a in first]
    assert all(a.stale for a in stale)


async def test_redis_killed_mid_run_and_back(
    open_md: OpenMd, exchange: SandboxServer, own_redis: Any
) -> None:
    """Redis dying mid-run costs no answer; it is skipped, then used again when it is back."""
    clock = Moved()
    async with open_md(clock, redis_url=own_redis.url, cache={"ticker_ttl_s": 0.05}) as md:
        assert md.redis is not None
        await md.ticker("BTCUSDT")
        own_redis.stop()
        # Past fresh, past the stale-while-revalidate window, and far past what the failing
        # answer could be served stale for: the exchange must answer.
        clock.advance(1.0)
        md.memory.clear()
        during = await md.ticker("BTCUSDT")
        assert during.layer is Layer.UPSTREAM
        assert not during.stale
        assert md.stats()["redis"]["errors"] >= 1
        own_redis.start()
        clock.advance(md.redis.retry_after_s)  # Redis is tried again after its pause
        await md.ticker("ETHUSDT")
        await md.flush()  # the Redis write is in the background
        assert md.redis.available
        assert await md.redis.get("t|ETHUSDT") is not None


async def test_overlapping_windows_at_once_fetch_each_gap_once(
    md: MarketData, exchange: SandboxServer
) -> None:
    """Two overlapping windows asked together cost 3 pages, not 4: the later one waits for
    the first and fetches only what is still missing."""
    await md.exchange_info()
    now = md.provider.now_ms()
    s = Interval.M1.floor(now) - 20_000 * 60_000
    before = requests_to(exchange, "klines")
    a, b = await asyncio.gather(
        md.candles("ETHUSDT", "1m", start=s, end=s + 1500 * 60_000),
        md.candles("ETHUSDT", "1m", start=s + 500 * 60_000, end=s + 2000 * 60_000),
    )
    assert (len(a.value), len(b.value)) == (1500, 1500)
    assert requests_to(exchange, "klines") - before == 3


async def test_a_full_write_queue_makes_fills_wait_and_loses_nothing(md: MarketData) -> None:
    """With room for one candle in the write-behind queue, concurrent cold fills wait their
    turn: every answer is complete, the queue never holds more than one window, and all of it
    ends up in the store."""
    md.filler.max_pending_rows = 1
    now = md.provider.now_ms()
    start = Interval.M1.floor(now) - 3_000 * 60_000
    end = start + 1_500 * 60_000
    names = ["DOGEUSDT", "DOTUSDT", "LINKUSDT", "ETCUSDT"]
    answers = await asyncio.gather(*(md.candles(n, "1m", start=start, end=end) for n in names))
    assert [len(a.value) for a in answers] == [1_500] * 4
    assert md.filler.pending_peak == 1_500  # one window (two pages) at a time
    await md.flush()
    for name, answer in zip(names, answers, strict=True):
        stored = await md.store.candles.range(md.provider.venue, name, "1m", start, end)
        assert list(stored) == answer.value


async def test_a_cancelled_writer_strands_no_window(md: MarketData) -> None:
    """If the write-behind task is cancelled before it runs, the queue is not lost: an
    overlapping fill restarts it instead of waiting forever, and flush() writes it all."""
    now = md.provider.now_ms()
    start = Interval.M1.floor(now) - 6_000 * 60_000
    await md.candles("TRXUSDT", "1m", start=start, end=start + 1_000 * 60_000)
    assert md.filler._writer is not None
    md.filler._writer.cancel()
    wider = await asyncio.wait_for(
        md.candles("TRXUSDT", "1m", start=start, end=start + 1_200 * 60_000), timeout=10
    )
    assert len(wider.value) == 1_200
    await asyncio.wait_for(md.flush(), timeout=10)
    assert md.filler.pending_rows == 0
    assert (
        await md.store.candles.gaps(
            md.provider.venue, "TRX/USDT", "1m", start, start + 1_200 * 60_000
        )
        == []
    )


async def test_a_fill_after_closing_began_writes_its_own_pages(md: MarketData) -> None:
    """Once MarketData is closing, a fill still running writes its pages before it answers,
    so closing never leaves fetched candles unwritten behind it."""
    await md.filler.aclose()
    now = md.provider.now_ms()
    start = Interval.M1.floor(now) - 4_000 * 60_000
    answer = await md.candles("UNIUSDT", "1m", start=start, end=start + 500 * 60_000)
    assert len(answer.value) == 500
    assert md.filler.pending_rows == 0
    assert (
        await md.store.candles.gaps(
            md.provider.venue, "UNI/USDT", "1m", start, start + 500 * 60_000
        )
        == []
    )
