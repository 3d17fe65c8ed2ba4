"""The PostgreSQL read pool: bounded, timed out, recycled, and robust to a changed table."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from mystic_trading.errors import StoreError
from mystic_trading.store import Store

from .conftest import BTC, MIN, FakeClock, OpenStore, candle

P = "binance"


def _postgres_only(store: Store) -> None:
    if store.backend != "postgresql":
        pytest.skip("the PostgreSQL read pool")


async def _backend_pid(store: Store) -> int:
    row = await store._db.reader.fetch_one("SELECT pg_backend_pid()", ())
    assert row is not None
    return int(row[0])


async def test_read_pool_never_opens_more_than_pool_size(make_store: OpenStore) -> None:
    """Many concurrent reads share pool_size connections and all succeed."""
    store = await make_store(pool_size=2, query_cache_ttl_s=0)
    _postgres_only(store)
    await store.candles.upsert(P, [candle(t * MIN) for t in range(3)])
    reads = [store.candles.range(P, BTC, "1m", 0, 3 * MIN) for _ in range(20)]
    assert all(len(r) == 3 for r in await asyncio.gather(*reads))
    stats = store.stats()["reader"]
    assert stats["size"] <= 2 and stats["max_size"] == 2 and stats["in_use"] == 0


async def test_exhausted_read_pool_times_out_with_a_clear_error(make_store: OpenStore) -> None:
    """With its only connection busy, a read waits pool_timeout_s, then raises StoreError."""
    store = await make_store(pool_size=1, pool_timeout_s=0.05, query_cache_ttl_s=0)
    _postgres_only(store)
    busy = asyncio.create_task(store._db.reader.fetch_one("SELECT pg_sleep(0.5)", ()))
    await asyncio.sleep(0.01)  # let it take the connection
    with pytest.raises(StoreError, match="read pool exhausted") as info:
        await store.candles.get(P, BTC, "1m", 0)
    assert info.value.target == store.target
    await busy
    stats = store.stats()["reader"]
    assert (stats["waits"], stats["timeouts"], stats["in_use"]) == (1, 1, 0)
    assert await store.candles.get(P, BTC, "1m", 0) is None  # the pool recovers


async def test_idle_connection_past_recycle_time_is_replaced(
    make_store: OpenStore, monotonic: FakeClock
) -> None:
    """A connection idle longer than pool_recycle_s is closed and a new one opened."""
    store = await make_store(pool_recycle_s=60)
    _postgres_only(store)
    first = await _backend_pid(store)
    monotonic.advance(59)
    assert await _backend_pid(store) == first
    monotonic.advance(61)
    assert await _backend_pid(store) != first
    assert store.stats()["reader"]["size"] == 1


async def test_read_survives_a_table_change_under_its_prepared_statement(
    make_store: OpenStore, postgres_url: str, store_url: str
) -> None:
    """A statement the server invalidated (column type changed) is prepared again, once."""
    store = await make_store(query_cache_ttl_s=0)
    _postgres_only(store)
    await store.candles.upsert(P, [candle(0)])
    assert (await store.candles.get(P, BTC, "1m", 0)) == candle(0)
    schema = store_url.rpartition("search_path=")[2]
    admin = await asyncpg.connect(postgres_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        await admin.execute(f'ALTER TABLE "{schema}".candles ALTER COLUMN trades TYPE numeric')
    finally:
        await admin.close()
    got = await store.candles.get(P, BTC, "1m", 0)
    assert got is not None and got.trades == 42
    assert store.stats()["reader"]["retries"] == 1
