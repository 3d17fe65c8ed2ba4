"""Fault paths: locks, dropped connections, an exhausted pool, URLs that cannot be opened."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import asyncpg
import pytest

from mystic_trading.config import StoreSettings
from mystic_trading.errors import StoreError
from mystic_trading.store import Store, open_store

from .conftest import BTC, MIN, OpenStore, candle

P = "binance"


async def test_exhausted_pool_times_out_with_a_clear_error(make_store: OpenStore) -> None:
    """With every connection held, a write waits pool_timeout_s, then raises StoreError."""
    store = await make_store(pool_size=1, pool_timeout_s=0.05)
    held = await store.engine.connect()
    try:
        assert store.pool_stats().in_use == 1
        with pytest.raises(StoreError, match=r"pool exhausted.*pool_size=1") as info:
            await store.candles.upsert(P, [candle(0)])
        assert info.value.target == store.target
    finally:
        await held.close()
    stats = store.pool_stats()
    assert (stats.waits, stats.timeouts, stats.in_use) == (1, 1, 0)
    await store.candles.upsert(P, [candle(0)])  # the pool recovers once the connection is back


async def test_pool_settings_reach_the_pool(make_store: OpenStore) -> None:
    """pool_size and pool_max_overflow are the pool's size and overflow limit."""
    store = await make_store(pool_size=3, pool_max_overflow=2)
    stats = store.pool_stats()
    assert (stats.size, stats.max_overflow) == (3, 2)


def _sqlite_only(store: Store) -> Path:
    if store.backend != "sqlite":
        pytest.skip("SQLite file locking")
    return Path(store.target)


async def test_locked_file_write_waits_then_names_the_file(make_store: OpenStore) -> None:
    """A write blocked by another process's write lock fails after busy_timeout, naming the file."""
    store = await make_store(busy_timeout_ms=50)
    path = _sqlite_only(store)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreError, match="locked") as info:
            await store.candles.upsert(P, [candle(0)])
        assert info.value.target == str(path) and str(path) in str(info.value)
    finally:
        other.execute("ROLLBACK")
        other.close()
    await store.candles.upsert(P, [candle(0)])


async def test_exclusively_locked_file_fails_open_naming_the_file(tmp_path: Path) -> None:
    """A file another process holds in exclusive mode fails at open, naming the file."""
    path = tmp_path / "mystic.db"
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("PRAGMA journal_mode = WAL")
    other.execute("PRAGMA locking_mode = EXCLUSIVE")
    other.execute("CREATE TABLE held (x)")  # takes the exclusive lock and keeps it
    try:
        with pytest.raises(StoreError, match="locked") as info:
            await open_store(StoreSettings(url=f"sqlite:///{path}", busy_timeout_ms=50))
        assert info.value.target == str(path) and str(path) in str(info.value)
    finally:
        other.close()


async def test_dropped_postgres_connections_are_retried_once(
    make_store: OpenStore, postgres_url: str
) -> None:
    """After pg_terminate_backend on every store connection, the next calls succeed."""
    store = await make_store(application_name="mystic-drop-test")
    if store.backend != "postgresql":
        pytest.skip("PostgreSQL connections")
    await store.candles.upsert(P, [candle(0)])
    assert await store.control.load_level(P) is None
    admin = await asyncpg.connect(postgres_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        killed = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = 'mystic-drop-test'"
        )
    finally:
        await admin.close()
    assert killed >= 2
    assert await store.control.load_level(P) is None
    await store.candles.upsert(P, [candle(MIN)])
    assert len(await store.candles.range(P, BTC, "1m", 0, 2 * MIN)) == 2


async def test_unreachable_postgres_url_fails_at_start_with_masked_url() -> None:
    """A URL that cannot be opened names the URL, password masked, and the reason."""
    url = "postgresql+asyncpg://mystic:hunter2@127.0.0.1:1/nowhere"
    with pytest.raises(StoreError) as info:
        await open_store(StoreSettings(url=url))
    message = str(info.value)
    assert "hunter2" not in message and "hunter2" not in info.value.target
    assert "mystic:***@127.0.0.1:1/nowhere" in message
    assert "refused" in message.lower() or "connect" in message.lower()


async def test_sqlite_path_that_cannot_be_created_fails_at_start(tmp_path: Path) -> None:
    """A SQLite file whose directory cannot be made fails with the path and the reason."""
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreError, match="cannot create its directory") as info:
        await open_store(StoreSettings(url=f"sqlite:///{blocker}/sub/mystic.db"))
    assert str(blocker / "sub") in str(info.value)


async def test_in_memory_sqlite_is_refused() -> None:
    """An in-memory database is refused: the readers could not see the writers' data."""
    with pytest.raises(StoreError, match="in-memory"):
        await open_store(StoreSettings(url="sqlite+aiosqlite:///:memory:"))


async def test_missing_sqlite_directory_is_created(tmp_path: Path) -> None:
    """The SQLite file's parent directories are created on open."""
    path = tmp_path / "a" / "b" / "mystic.db"
    async with await open_store(StoreSettings(url=f"sqlite:///{path}")) as store:
        assert store.target == str(path)
    assert path.is_file()
