"""Fixtures of the provider tests: a real sandbox exchange and a throttled Binance provider."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from mystic_trading.providers.binance import BinanceProvider
from mystic_trading.sandbox import SandboxServer
from mystic_trading.throttle import Budget, Throttler


@pytest.fixture(scope="module")
def exchange(shared_exchange: SandboxServer) -> SandboxServer:
    """The module's sandbox (tests/conftest.py)."""
    return shared_exchange


@pytest.fixture
async def binance(exchange: SandboxServer) -> AsyncIterator[BinanceProvider]:
    """A provider pointed at the sandbox, behind a throttler with Binance's budget."""
    throttler = Throttler("binance", Budget(limit=6000, window_s=60))
    provider = BinanceProvider(exchange.url, throttler)
    yield provider
    await provider.aclose()
    await throttler.aclose()
