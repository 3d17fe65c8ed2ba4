"""Budgets as the exchange advertises them, however small (faults 6)."""

from __future__ import annotations

import pytest

from mystic_trading.marketdata.facade import MarketData
from mystic_trading.sandbox import SandboxConfig, SandboxServer

from .conftest import settings


@pytest.mark.parametrize("limit", [200, 260, 277])
async def test_a_small_advertised_budget_is_the_budget(limit: int, store_url: str) -> None:
    """An exchange advertising 200-277 weight a minute is throttled to that budget (200
    was replaced by 6,000; 251-277 raised ConfigError on every call), and answers come."""
    exchange = SandboxServer(SandboxConfig(port=0, weight_limit=limit)).start()
    try:
        async with MarketData.open(settings(exchange, store_url)) as md:
            answer = await md.ticker("BTCUSDT")
            assert answer.value.price > 0
            stats = md.stats()["throttle"]
            assert stats["limit"] == limit
            assert md.throttler.safe_rate < limit / 60
            await md.candles("BTCUSDT", "1h", limit=10)
        assert exchange.stats.snapshot()["total"]["http_429"] == 0
    finally:
        exchange.stop()
