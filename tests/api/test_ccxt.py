"""ccxt's binance class, unchanged but for its public URL, against the service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import ccxt.async_support as ccxt
import pytest

from .conftest import Served


@pytest.fixture
async def binance(served: Served) -> AsyncIterator[Any]:
    """ccxt's binance with ``urls.api.public`` pointed at the service (spot markets only:
    the futures hosts are Binance's own)."""
    exchange = ccxt.binance(
        {
            "urls": {"api": {"public": f"{served.url}/api/v3"}},
            "options": {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False},
        }
    )
    yield exchange
    await exchange.close()


async def test_ccxt_loads_markets_and_fetches_market_data(binance: Any, served: Served) -> None:
    """load_markets, fetch_ticker(s), fetch_order_book and paged fetch_ohlcv work unchanged."""
    markets = await binance.load_markets()
    assert "BTC/USDT" in markets and markets["BTC/USDT"]["id"] == "BTCUSDT"
    ticker = await binance.fetch_ticker("BTC/USDT")
    assert ticker["symbol"] == "BTC/USDT" and ticker["last"] > 0
    tickers = await binance.fetch_tickers(["BTC/USDT", "ETH/USDT"])
    assert set(tickers) == {"BTC/USDT", "ETH/USDT"}
    book = await binance.fetch_order_book("ETH/USDT", limit=10)
    assert len(book["bids"]) == 10 and book["bids"][0][0] < book["asks"][0][0]
    now = served.exchange.clock_ms()
    since = (now // 60_000 - 45) * 60_000
    pages = []
    for _ in range(3):
        page = await binance.fetch_ohlcv("ETH/USDT", "1m", since=since, limit=10)
        assert len(page) == 10
        pages.extend(page)
        since = page[-1][0] + 60_000
    times = [row[0] for row in pages]
    assert times == [times[0] + i * 60_000 for i in range(30)]
    for row in pages:
        truth = served.exchange.final_candle("ETHUSDT", "1m", row[0])
        assert truth is not None and float(truth[4]) == row[4]


async def test_ccxt_maps_the_services_errors(binance: Any) -> None:
    """-1121 becomes BadSymbol, -1120 BadRequest, -2015 AuthenticationError, in ccxt."""
    with pytest.raises(ccxt.BadSymbol):
        await binance.publicGetTickerPrice({"symbol": "NOPEUSDT"})
    with pytest.raises(ccxt.BadRequest):
        await binance.publicGetKlines({"symbol": "BTCUSDT", "interval": "7m"})
    with pytest.raises(ccxt.AuthenticationError):
        # ccxt sends private calls to urls.api.private; sent to the public URL, the refusal
        # still maps to the right exception.
        await binance.fetch2("openOrders", ["public"], "GET", {})
