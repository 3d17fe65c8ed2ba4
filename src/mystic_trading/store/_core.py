"""What every repository shares: the two paths, the cache and the metrics, and error wrapping.

Reads run on the :class:`~mystic_trading.store._readers.Reader` (the bare-driver hot path),
through the query cache when the caller names the tables they read. Writes run in one
transaction on the SQLAlchemy engine; a failed write leaves nothing behind (rolled back), and
a committed one bumps the cache generation of the tables it wrote. On PostgreSQL a write that
finds its connection dropped is retried once on a fresh one (the transaction was rolled back
with the connection, so the retry cannot apply it twice).

SQLite has one writer at a time. Writes of this process queue on an asyncio lock instead of on
SQLite's busy handler, which sleeps in growing steps (up to 100 ms a try) while it waits: with
many writes at once that turned milliseconds of work into seconds of waiting. busy_timeout
still covers writers in other processes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection

from mystic_trading.errors import StoreError
from mystic_trading.store._cache import MISS, QueryCache
from mystic_trading.store._codec import decimal_text
from mystic_trading.store._engine import EnginePool, wrap_error
from mystic_trading.store._metrics import QueryMetrics
from mystic_trading.store._readers import Reader
from mystic_trading.store._sql import for_backend
from mystic_trading.store._target import Target

__all__ = ["Database"]

T = TypeVar("T")
R = TypeVar("R")
Row = Sequence[Any]


def _same(value: Any) -> Any:
    return value


class Database:
    """The store's engine, reader, cache and metrics, as the repositories use them."""

    def __init__(
        self,
        target: Target,
        pool: EnginePool,
        reader: Reader,
        cache: QueryCache,
        metrics: QueryMetrics,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.target = target
        self.backend = target.backend
        self.pool = pool
        self.reader = reader
        self.cache = cache
        self.metrics = metrics
        self._clock = clock
        sqlite = target.backend == "sqlite"
        self._write_lock: asyncio.Lock | None = asyncio.Lock() if sqlite else None
        # SQLite keeps decimals as TEXT; asyncpg encodes and decodes NUMERIC <-> Decimal.
        self.dec: Callable[[Any], Decimal] = Decimal if sqlite else _same
        self.enc: Callable[[Decimal], Any] = decimal_text if sqlite else _same

    def sql(self, statement: str) -> str:
        return for_backend(statement, self.backend)

    def now_ms(self) -> int:
        return int(self._clock() * 1000)

    async def read_one(
        self,
        kind: str,
        sql: str,
        params: tuple[Any, ...],
        build: Callable[[Row], T],
        *,
        tables: tuple[str, ...] = (),
        detail: object = "",
    ) -> T | None:
        """One row through ``build``, or None; cached when ``tables`` are named."""

        async def fetch() -> T | None:
            row = await self.reader.fetch_one(sql, params)
            return None if row is None else build(row)

        return await self._read(kind, (sql, params), fetch, tables, detail)

    async def read_all(
        self,
        kind: str,
        sql: str,
        params: tuple[Any, ...],
        build: Callable[[list[Row]], T],
        *,
        tables: tuple[str, ...] = (),
        detail: object = "",
        large: bool = False,
    ) -> T:
        """All rows through ``build``; cached when ``tables`` are named."""

        async def fetch() -> T:
            return build(await self.reader.fetch_all(sql, params, large=large))

        return await self._read(kind, (sql, params), fetch, tables, detail)

    async def _read(
        self,
        kind: str,
        key: tuple[str, tuple[Any, ...]],
        fetch: Callable[[], Awaitable[R]],
        tables: tuple[str, ...],
        detail: object,
    ) -> R:
        """Through the query cache when ``tables`` are named; timed into the metrics."""
        cache = self.cache
        cached = bool(tables) and cache.enabled
        if cached:
            hit = cache.get(key)
            if hit is not MISS:
                return hit  # type: ignore[no-any-return]
            gens = cache.generations(tables)
        metrics = self.metrics
        t0 = metrics.timer()
        try:
            result = await fetch()
        except BaseException:
            metrics.error(kind, metrics.timer() - t0)
            raise
        metrics.observe(kind, metrics.timer() - t0, detail)
        if cached:
            cache.put(key, result, tables, gens)
        return result

    async def write(
        self,
        kind: str,
        work: Callable[[AsyncConnection], Awaitable[T]],
        *,
        tables: tuple[str, ...],
        detail: object = "",
    ) -> T:
        """Run ``work`` in one transaction; all of it commits or none of it does."""
        metrics = self.metrics
        t0 = metrics.timer()
        retry = self.backend == "postgresql"
        while True:
            try:
                if self._write_lock is None:
                    async with self.pool.begin() as conn:
                        result = await work(conn)
                else:
                    async with self._write_lock, self.pool.begin() as conn:
                        result = await work(conn)
            except sa_exc.DBAPIError as exc:
                if retry and exc.connection_invalidated:
                    retry = False
                    continue
                metrics.error(kind, metrics.timer() - t0)
                raise wrap_error(self.target, f"{kind} failed", exc) from exc
            except OverflowError as exc:  # sqlite3 refuses an int beyond 64 bits this way
                metrics.error(kind, metrics.timer() - t0)
                raise wrap_error(self.target, f"{kind} failed", exc) from exc
            except StoreError:
                metrics.error(kind, metrics.timer() - t0)
                raise
            break
        self.cache.invalidate(tables)
        metrics.observe(kind, metrics.timer() - t0, detail)
        return result
