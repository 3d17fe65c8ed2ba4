"""Fixtures of the MarketData tests: a real sandbox, a real store (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest

from mystic_trading.config import Settings
from mystic_trading.marketdata.facade import MarketData
from mystic_trading.sandbox import SandboxConfig, SandboxServer


@pytest.fixture
def exchange() -> Iterator[SandboxServer]:
    """A sandbox of its own for each test (faults and counters are per test)."""
    server = SandboxServer(SandboxConfig(port=0)).start()
    yield server
    server.stop()


def settings(exchange: SandboxServer, store_url: str, **extra: Any) -> Settings:
    data: dict[str, Any] = {
        "store": {"url": store_url},
        "provider": {"base_url": exchange.url, "read_timeout_s": 2.0, "connect_timeout_s": 0.5},
        "throttle": {"max_retries": 1, "default_deadline_s": 5.0},
    }
    for key, value in extra.items():
        if isinstance(value, dict):
            data.setdefault(key, {}).update(value)
        else:
            data[key] = value
    return Settings(**data)


OpenMd = Callable[..., AbstractAsyncContextManager[MarketData]]


@pytest.fixture
def open_md(exchange: SandboxServer, store_url: str) -> OpenMd:
    """Open MarketData on the test's sandbox and database, with setting overrides."""

    def make(**extra: Any) -> AbstractAsyncContextManager[MarketData]:
        return MarketData.open(settings(exchange, store_url, **extra))

    return make


@pytest.fixture
async def md(open_md: OpenMd) -> AsyncIterator[MarketData]:
    async with open_md() as opened:
        yield opened
