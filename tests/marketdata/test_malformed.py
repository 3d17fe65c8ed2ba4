"""A malformed exchange answer raises, naming the endpoint, and nothing of it is stored."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from mystic_trading.config import StoreSettings
from mystic_trading.errors import MalformedPayload
from mystic_trading.marketdata import MarketData
from mystic_trading.providers import BinanceProvider
from mystic_trading.store import open_store
from mystic_trading.throttle import Budget, Throttler

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "binance"
INFO = json.loads((FIXTURES / "exchangeInfo_2025-06_ETHBTC.json").read_text())
ROW = [1750477740000, "0.02345", "0.02345", "0.02345", "0.02345", "0", 1750477799999, "0", 0,
       "0", "0", "0"]  # fmt: skip
JSON = {"content-type": "application/json"}


@pytest.mark.parametrize(
    "klines",
    [
        httpx.Response(200, json=[[*ROW[:1], 0.02345, *ROW[2:]]]),  # a float price
        httpx.Response(200, json=[ROW[:11]]),  # a short row
        httpx.Response(200, content=b'[[1750477740000, "0.02', headers=JSON),
        httpx.Response(200, content=b"<html>502</html>", headers={"content-type": "text/html"}),
    ],
    ids=["float", "short-row", "truncated", "html"],
)  # fmt: skip
async def test_malformed_klines_store_nothing(store_url: str, klines: httpx.Response) -> None:
    """MalformedPayload reaches the caller; the store has no candle and no coverage."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/exchangeInfo"):  # a capture: its serverTime is now
            return httpx.Response(200, json={**INFO, "serverTime": int(time.time() * 1000)})
        if request.url.path.endswith("/time"):
            return httpx.Response(200, json={"serverTime": int(time.time() * 1000)})
        return klines

    throttler = Throttler("binance", Budget(limit=6000, window_s=60))
    provider = BinanceProvider(
        "http://127.0.0.1:9", throttler, transport=httpx.MockTransport(handler)
    )
    store = await open_store(StoreSettings(url=store_url))
    try:
        md = MarketData(provider, store)
        start = 1750477740000
        with pytest.raises(MalformedPayload) as info:
            await md.candles("ETHBTC", "1m", start=start, end=start + 10 * 60_000)
        assert info.value.endpoint == "klines"
        venue = provider.venue
        assert await store.candles.coverage(venue, "ETH/BTC", "1m") == []
        assert list(await store.candles.range(venue, "ETH/BTC", "1m", 0, 2 * start)) == []
        await md.aclose()
    finally:
        await store.aclose()
        await provider.aclose()
        await throttler.aclose()
