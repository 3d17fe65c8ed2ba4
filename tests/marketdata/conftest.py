"""Fixtures of the MarketData tests: a real sandbox, a real store (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import time
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

    def make(
        clock: Callable[[], float] = time.monotonic, **extra: Any
    ) -> AbstractAsyncContextManager[MarketData]:
        return MarketData.open(settings(exchange, store_url, **extra), clock=clock)

    return make


@pytest.fixture
async def md(open_md: OpenMd) -> AsyncIterator[MarketData]:
    async with open_md() as opened:
        yield opened


async def listening(port: int) -> None:
    """Wait until a sandbox's listener on ``port`` accepts connections again (after a
    refuse outage ended); fail after 4 s."""
    for _ in range(200):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.02)
            continue
        writer.close()
        await writer.wait_closed()
        return
    raise AssertionError(f"the sandbox on port {port} did not listen again")


async def refusing(port: int) -> None:
    """Wait until a sandbox told to refuse has closed its listener on ``port``."""
    for _ in range(200):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            return
        writer.close()
        await writer.wait_closed()
        await asyncio.sleep(0.02)
    raise AssertionError(f"the sandbox on port {port} still listens")
