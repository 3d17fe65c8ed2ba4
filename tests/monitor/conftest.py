"""Monitor fixtures: a real store per test (SQLite file or PostgreSQL schema, the `store_url`
fixture), clocks that move only when told, and Redis heartbeats under a prefix of their own,
deleted after the test."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis

from mystic_trading.config import StoreSettings
from mystic_trading.monitor import RedisHeartbeats
from mystic_trading.store import Store, open_store

WALL_START = 1_700_000_000.0


class FakeClock:
    """A settable clock: ``clock()`` returns ``now``; tests move it with ``advance``."""

    def __init__(self, now: float = WALL_START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class StepTimer:
    """A timer that moves ``step`` seconds every time it is read: each timed call takes
    exactly ``step``."""

    def __init__(self, step: float) -> None:
        self.step = step
        self.now = 0.0

    def __call__(self) -> float:
        self.now += self.step
        return self.now


@pytest.fixture
def wall() -> FakeClock:
    """The store's wall clock (stamps heartbeats kept in the store)."""
    return FakeClock()


@pytest.fixture
def mono() -> FakeClock:
    """A monotonic clock for publishers and checkers."""
    return FakeClock(1000.0)


OpenStore = Callable[..., Any]


@pytest.fixture
async def make_store(store_url: str, wall: FakeClock) -> AsyncIterator[OpenStore]:
    """Open stores on the test database, on the ``wall`` clock; all closed at the end."""
    opened: list[Store] = []

    async def make(**overrides: Any) -> Store:
        store = await open_store(StoreSettings(url=store_url, **overrides), clock=wall)
        opened.append(store)
        return store

    yield make
    for store in opened:
        await store.aclose()


@pytest.fixture
async def store(make_store: OpenStore) -> Store:
    result: Store = await make_store()
    return result


async def delete_prefix(url: str, prefix: str) -> None:
    client = aioredis.Redis.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(f"{prefix}:*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture
async def redis_beats(redis_url: str) -> AsyncIterator[RedisHeartbeats]:
    """Heartbeats in the test Redis under a prefix unique to the test, deleted after."""
    prefix = f"test:monitor:{uuid.uuid4().hex}"
    beats = RedisHeartbeats(redis_url, prefix=prefix)
    yield beats
    await beats.aclose()
    await delete_prefix(redis_url, prefix)
