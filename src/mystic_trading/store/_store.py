"""The store: one object that opens both paths and hands out the repositories.

::

    async with await open_store(settings.store) as store:
        await store.candles.save_range("binance", "BTC/USDT", "1m", start, end, candles)
        ticker = await store.snapshots.load_ticker("binance", "BTC/USDT")
        await store.control.save_level("binance", "moderate", actor="ops", reason="quiet")
        store.stats()  # pool, reader, cache and per-statement query metrics

Opening proves the database answers (a URL that cannot be opened fails here, naming the
file or the URL with its password masked, and the reason), migrates it to head under the
cross-process migration lock, then opens the hot-read path.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncEngine

from mystic_trading.config import StoreSettings
from mystic_trading.store import _sql
from mystic_trading.store._alerts import AlertRepository
from mystic_trading.store._cache import QueryCache
from mystic_trading.store._candles import CandleRepository
from mystic_trading.store._control import ControlRepository
from mystic_trading.store._core import Database
from mystic_trading.store._engine import PoolStats, open_pool
from mystic_trading.store._heartbeats import HeartbeatRepository
from mystic_trading.store._metrics import QueryMetrics
from mystic_trading.store._migrate import MigrationStatus, status_pool, upgrade_pool
from mystic_trading.store._readers import Reader, SqliteReader
from mystic_trading.store._snapshots import SnapshotRepository
from mystic_trading.store._target import parse_target
from mystic_trading.store._venues import VenueRepository

__all__ = ["Store", "open_store"]


class Store:
    """The persistent store (L3): repositories, pool, query cache and query metrics."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self.candles = CandleRepository(db)
        self.snapshots = SnapshotRepository(db)
        self.control = ControlRepository(db)
        self.alerts = AlertRepository(db)
        self.venues = VenueRepository(db)
        self.heartbeats = HeartbeatRepository(db)
        self._ping_sql = db.sql(_sql.STORE_PING)
        self._closed = False

    @property
    def backend(self) -> Literal["sqlite", "postgresql"]:
        return self._db.backend

    @property
    def target(self) -> str:
        """The SQLite file path, or the URL with its password masked."""
        return self._db.target.display

    @property
    def engine(self) -> AsyncEngine:
        """The SQLAlchemy engine of the write path (pooled), for tools and tests."""
        return self._db.pool.engine

    @property
    def cache(self) -> QueryCache:
        return self._db.cache

    @property
    def metrics(self) -> QueryMetrics:
        return self._db.metrics

    def pool_stats(self) -> PoolStats:
        """The write pool now: size, in use, idle, overflow, and waits and timeouts so far."""
        return self._db.pool.stats()

    def stats(self) -> dict[str, Any]:
        """Everything measurable about the store, as plain data."""
        return {
            "backend": self.backend,
            "target": self.target,
            "pool": self.pool_stats().as_dict(),
            "reader": self._db.reader.stats(),
            "cache": self.cache.stats(),
            "queries": self.metrics.snapshot(),
        }

    async def ping(self) -> str | None:
        """One trivial read on the read path (the schema revision): proves the database
        answers, for health checks to time."""

        def build(row: Any) -> str:
            return str(row[0])

        return await self._db.read_one("store.ping", self._ping_sql, (), build)

    async def migration_status(self) -> MigrationStatus:
        return await status_pool(self._db.pool)

    async def aclose(self) -> None:
        """Close the reader and the pool; idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            await self._db.reader.aclose()
        finally:
            await self._db.pool.aclose()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


async def open_store(
    settings: StoreSettings,
    *,
    upgrade: bool = True,
    application_name: str = "mystic",
    clock: Callable[[], float] = time.time,
    monotonic: Callable[[], float] = time.monotonic,
    timer: Callable[[], float] = time.perf_counter,
) -> Store:
    """Open the store of ``settings``; migrate it to head first unless ``upgrade`` is False.

    ``clock`` gives the wall time stamped on writes (``fetched_at``, audit times),
    ``monotonic`` the query cache's TTL time and the PostgreSQL read pool's idle time, and
    ``timer`` the query metrics' latencies; tests inject all three. Raises
    :class:`StoreError` if the database cannot be opened.
    """
    target = parse_target(settings.url)
    pool = await open_pool(target, settings, application_name=application_name)
    reader: Reader | None = None
    try:
        if upgrade:
            await upgrade_pool(pool)
        if target.backend == "sqlite":
            reader = SqliteReader(target, settings)
        else:
            # asyncpg is imported only for a PostgreSQL store (a SQLite one never needs it).
            from mystic_trading.store._postgres_reader import PostgresReader

            reader = await PostgresReader.open(
                target, settings, application_name=application_name, monotonic=monotonic
            )
    except BaseException:
        await pool.aclose()
        raise
    cache = QueryCache(
        ttl_s=settings.query_cache_ttl_s,
        max_entries=settings.query_cache_max_entries,
        clock=monotonic,
    )
    metrics = QueryMetrics(slow_query_ms=settings.slow_query_ms, timer=timer)
    return Store(Database(target, pool, reader, cache, metrics, clock))
