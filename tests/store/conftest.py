"""Store fixtures: one database per test, SQLite (a temporary file) or PostgreSQL (a fresh
schema, dropped after; the `store_url` fixture of tests/conftest.py), so the contract tests
run unchanged over both backends."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import pytest

from mystic_trading.config import StoreSettings
from mystic_trading.models import Candle, Interval, Symbol
from mystic_trading.store import Store, open_store

BTC = Symbol("BTC", "USDT")
MIN = 60_000


class FakeClock:
    """A settable clock: ``clock()`` returns ``now``; tests move it with ``advance``."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def candle(open_time: int, *, close: str = "100.5", closed: bool = True, **kw: Any) -> Candle:
    """A 1m BTC/USDT candle with exact decimal fields."""
    fields: dict[str, Any] = {
        "symbol": BTC,
        "interval": Interval.M1,
        "open_time": open_time,
        "open": Decimal("100.1"),
        "high": Decimal("101"),
        "low": Decimal("99.99999999"),
        "close": Decimal(close),
        "volume": Decimal("12.5"),
        "close_time": open_time + MIN - 1,
        "quote_volume": Decimal("1250.25"),
        "trades": 42,
        "taker_buy_volume": Decimal("6"),
        "taker_buy_quote_volume": Decimal("600.1"),
        "closed": closed,
    }
    fields.update(kw)
    return Candle(**fields)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def monotonic() -> FakeClock:
    return FakeClock(1000.0)


OpenStore = Callable[..., Any]


@pytest.fixture
async def make_store(
    store_url: str, clock: FakeClock, monotonic: FakeClock
) -> AsyncIterator[OpenStore]:
    """Open stores on the test database (settings overridable); all closed at the end."""
    opened: list[Store] = []

    async def make(**overrides: Any) -> Store:
        extra = {k: overrides.pop(k) for k in ("timer", "application_name") if k in overrides}
        settings = StoreSettings(url=store_url, **overrides)
        store = await open_store(settings, clock=clock, monotonic=monotonic, **extra)
        opened.append(store)
        return store

    yield make
    for store in opened:
        await store.aclose()


@pytest.fixture
async def store(make_store: OpenStore) -> Store:
    result: Store = await make_store()
    return result
