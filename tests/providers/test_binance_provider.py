"""BinanceProvider over real HTTP against the sandbox, and malformed answers it must refuse."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from decimal import Decimal

import httpx
import pytest

from mystic_trading.errors import (
    Banned,
    InvalidInterval,
    MalformedPayload,
    UnknownSymbol,
    UpstreamError,
    UpstreamRejected,
)
from mystic_trading.models import Interval, Symbol
from mystic_trading.providers.binance import PAGE_LIMIT, BinanceProvider
from mystic_trading.sandbox import SandboxServer
from mystic_trading.throttle import Budget, MemoryQuota, Throttler

BTC = Symbol("BTC", "USDT")
HOUR = 3_600_000


async def test_exchange_info_lists_symbols_and_the_budget(binance: BinanceProvider) -> None:
    """exchangeInfo gives the sandbox's symbols and Binance's 6000-per-minute budget."""
    info = await binance.exchange_info()
    assert "BTCUSDT" in info.symbols
    assert info.symbols["ETHBTC"].symbol == Symbol("ETH", "BTC")
    assert info.request_weight is not None
    assert (info.request_weight.limit, info.request_weight.window_s) == (6000, 60)


async def test_closed_candles_equal_the_exchanges_deterministic_candles(
    binance: BinanceProvider, exchange: SandboxServer
) -> None:
    """Every candle of a random past page equals the sandbox's oracle row, exactly."""
    rng = random.Random(5)
    now = binance.now_ms()
    for interval in (Interval.M1, Interval.H1, Interval.D1):
        step = interval.ms
        assert step is not None
        start = interval.floor(now - rng.randrange(50, 400) * step)
        end = start + 40 * step
        candles = (await binance.klines(BTC, interval, start, end)).candles
        rows = exchange.market.klines("BTCUSDT", interval, start, end - 1, 1000, now=now)
        assert len(candles) == len(rows) == 40
        for candle, row in zip(candles, rows, strict=True):
            assert candle.open_time == row[0]
            assert candle.close == Decimal(row[4])
            assert candle.volume == Decimal(row[5])
            assert candle.closed


async def test_open_candle_is_marked_open(binance: BinanceProvider) -> None:
    """A page reaching now ends with the open candle, closed=False; only final candles (the
    exchange certainly past close + grace) are closed, and final_end splits them."""
    now = binance.now_ms()
    start = Interval.M1.floor(now) - 5 * 60_000
    page = await binance.klines(BTC, Interval.M1, start, Interval.M1.floor(now) + 60_000)
    flags = [c.closed for c in page.candles]
    assert len(flags) == 6
    assert flags[-1] is False
    assert flags == sorted(flags, reverse=True)  # final ones first, then the rest
    assert flags.count(False) <= 2  # the open one, and one that closed < 2 s ago
    for c in page.candles:
        assert c.closed == (c.open_time < page.final_end)


async def test_a_page_is_at_most_1000_candles(binance: BinanceProvider) -> None:
    """A window longer than a page returns the first 1000 candles."""
    now = binance.now_ms()
    start = Interval.M1.floor(now) - 3000 * 60_000
    candles = (await binance.klines(BTC, Interval.M1, start, start + 2000 * 60_000)).candles
    assert len(candles) == PAGE_LIMIT
    assert candles[0].open_time == start


async def test_ticker_tickers_and_depth(binance: BinanceProvider) -> None:
    """Tickers carry 24h stats and book; depth has the asked number of levels."""
    ticker = await binance.ticker(BTC)
    assert ticker.symbol == BTC
    assert ticker.bid is not None
    assert ticker.ask is not None
    assert ticker.bid <= ticker.ask
    many = await binance.tickers([BTC, Symbol("ETH", "BTC")])
    assert [t.symbol for t in many] == [BTC, Symbol("ETH", "BTC")]
    best = await binance.book_ticker(BTC)
    assert best.bid is not None
    assert best.ask is not None
    assert best.price == (best.bid + best.ask) / 2
    book = await binance.depth(BTC, 20)
    assert len(book.bids) == len(book.asks) == 20
    assert book.bids[0][0] < book.asks[0][0]


async def test_calls_and_weight_are_counted_like_the_exchange(
    binance: BinanceProvider, exchange: SandboxServer
) -> None:
    """The weight the provider counts is the weight the exchange charged."""
    before = exchange.stats.snapshot()["total"]["weight"]
    await binance.ticker(BTC)
    await binance.depth(BTC, 500)
    after = exchange.stats.snapshot()["total"]["weight"]
    assert after - before == 2 + 25
    assert binance.weight == 27


async def test_unknown_symbol_and_bad_interval_map_to_data_errors(
    binance: BinanceProvider,
) -> None:
    """-1121 from the exchange is UnknownSymbol; -1120 is InvalidInterval."""
    with pytest.raises(UnknownSymbol) as info:
        await binance.ticker(Symbol("NOPE", "USDT"))
    assert info.value.symbol == "NOPE/USDT"
    response = await binance.throttler.call(
        "/api/v3/klines",
        2,
        lambda: binance._client.get(
            "/api/v3/klines", params={"symbol": "BTCUSDT", "interval": "7m"}
        ),
    )
    assert response.status_code == 400
    assert response.json()["code"] == -1120


def mock_provider(handler: Callable[[httpx.Request], httpx.Response]) -> BinanceProvider:
    throttler = Throttler("binance", Budget(limit=6000, window_s=60))
    return BinanceProvider("http://127.0.0.1:9", throttler, transport=httpx.MockTransport(handler))


JSON = {"content-type": "application/json"}
HTML = {"content-type": "text/html"}


@pytest.mark.parametrize(
    ("response", "needle"),
    [
        (httpx.Response(200, content=b"<html>gateway</html>", headers=HTML), "expected JSON"),
        (httpx.Response(200, content=b'[[1499040000000,"0.1"', headers=JSON), "not JSON"),
        (httpx.Response(200, content=b'{"code": 0}', headers=JSON), "array"),
        (httpx.Response(200, content=b'[[1499040000000, 0.1]]', headers=JSON), "12-field"),
        (httpx.Response(200, content=b"", headers=JSON), "not JSON"),
    ],
    ids=["html-page", "truncated", "object", "short-row", "empty"],
)  # fmt: skip
async def test_malformed_klines_raise_naming_the_endpoint(
    response: httpx.Response, needle: str
) -> None:
    """HTML, truncated, wrong-shape or empty answers raise MalformedPayload for klines."""
    provider = mock_provider(lambda request: response)
    with pytest.raises(MalformedPayload, match=needle) as info:
        await provider.klines(BTC, Interval.D1, 0, 86_400_000)
    assert info.value.endpoint == "klines"
    await provider.aclose()


async def test_rows_outside_the_window_are_refused() -> None:
    """Rows the exchange sends outside the asked window are a malformed answer."""
    row = [0, "1", "1", "1", "1", "1", 86_399_999, "1", 1, "1", "1", "0"]
    provider = mock_provider(lambda request: httpx.Response(200, json=[row]))
    with pytest.raises(MalformedPayload, match="outside"):
        await provider.klines(BTC, Interval.D1, 86_400_000, 2 * 86_400_000)
    await provider.aclose()


async def test_other_4xx_is_rejected_not_retried() -> None:
    """A 400 other than -1121/-1120 is UpstreamRejected after exactly one request."""
    sent = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal sent
        sent += 1
        return httpx.Response(400, json={"code": -1102, "msg": "Mandatory parameter"})

    provider = mock_provider(handler)
    with pytest.raises(UpstreamRejected) as info:
        await provider.depth(BTC)
    assert info.value.code == -1102
    assert sent == 1
    await provider.aclose()


async def test_invalid_interval_from_exchange() -> None:
    """A -1120 answer raises InvalidInterval naming the interval."""
    provider = mock_provider(
        lambda request: httpx.Response(400, json={"code": -1120, "msg": "Invalid interval."})
    )
    with pytest.raises(InvalidInterval) as info:
        await provider.klines(BTC, Interval.M3, 0, 180_000)
    assert info.value.interval == "3m"
    await provider.aclose()


async def test_absurdly_nested_json_is_a_malformed_payload() -> None:
    """A body nested past the parser's recursion limit is MalformedPayload, not the parser's
    RecursionError; a /time answer like it leaves the clock unmeasured, not broken."""
    deep = b"[" * 200_000 + b"]" * 200_000
    provider = mock_provider(lambda request: httpx.Response(200, content=deep, headers=JSON))
    with pytest.raises(MalformedPayload, match="not JSON"):
        await provider.depth(BTC)
    await provider.sync_clock(force=True)
    assert not provider.clock.synced
    await provider.aclose()


async def test_calls_are_counted_when_sent_retries_included_refusals_not(
    exchange: SandboxServer,
) -> None:
    """A retried request counts each attempt that reached the exchange; one refused before
    it left (a ban) counts nothing (review: counted before admission, retries not)."""
    throttler = Throttler("count", Budget(limit=6000, window_s=60))
    provider = BinanceProvider(exchange.url, throttler)
    try:
        exchange.set_error_rate(1.0, (503,))
        before = exchange.stats.snapshot()["total"]["requests"]
        with pytest.raises(UpstreamError):
            await provider.ticker(BTC)
        reached = exchange.stats.snapshot()["total"]["requests"] - before
        assert reached >= 2  # retried
        assert provider.calls == reached
    finally:
        exchange.reset()
        await provider.aclose()
        await throttler.aclose()
    quota = MemoryQuota()
    await quota.ban("banned", time.time_ns() // 1_000_000 + 3_600_000)
    banned = Throttler("banned", Budget(limit=6000, window_s=60), quota=quota)
    provider = BinanceProvider(exchange.url, banned)
    try:
        before = exchange.stats.snapshot()["total"]["requests"]
        with pytest.raises(Banned):
            await provider.ticker(BTC)
        assert provider.calls == provider.weight == 0
        assert exchange.stats.snapshot()["total"]["requests"] == before
    finally:
        await provider.aclose()
        await banned.aclose()
