"""The SQLAlchemy engine for writes and migrations, its pool, and its statistics.

One ``AsyncAdaptedQueuePool`` per store: ``pool_size`` connections (10 by default) plus
``pool_max_overflow``, recycled after ``pool_recycle_s``, pre-pinged on checkout (a
connection the server dropped is replaced before use), and an acquire timeout of
``pool_timeout_s`` that raises :class:`StoreError` instead of waiting for ever.

SQLite connections are tuned on every connect from the settings: WAL (readers never wait for
the writer), ``synchronous=NORMAL`` (durable at each checkpoint, and a crash never corrupts
in WAL mode: sqlite.org/pragma.html#pragma_synchronous), ``busy_timeout``,
``foreign_keys=ON``, ``temp_store=MEMORY``, ``cache_size`` and ``mmap_size``. pysqlite's
own transaction handling is switched off and every transaction starts with
``BEGIN IMMEDIATE``, so a writer takes the write lock up front and waits up to
``busy_timeout`` for it, instead of failing at its first write when another process
committed in between (sqlite.org/lang_transaction.html; SQLAlchemy docs, "Serializable
isolation / Savepoints / Transactional DDL" for pysqlite and aiosqlite).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool

from mystic_trading.config import StoreSettings
from mystic_trading.errors import StoreError
from mystic_trading.store._target import Target

__all__ = ["EnginePool", "PoolStats", "open_pool", "sqlite_pragmas", "wrap_error"]


def sqlite_pragmas(settings: StoreSettings, *, busy_timeout_ms: int | None = None) -> list[str]:
    """The PRAGMA statements every SQLite connection of the store runs when it opens."""
    busy = settings.busy_timeout_ms if busy_timeout_ms is None else busy_timeout_ms
    return [
        f"PRAGMA busy_timeout = {int(busy)}",
        "PRAGMA journal_mode = WAL",
        "PRAGMA synchronous = NORMAL",
        "PRAGMA foreign_keys = ON",
        "PRAGMA temp_store = MEMORY",
        # A negative cache_size is in KiB (sqlite.org/pragma.html#pragma_cache_size).
        f"PRAGMA cache_size = -{int(settings.sqlite_cache_size_kib)}",
        f"PRAGMA mmap_size = {int(settings.sqlite_mmap_size_mib) * 1024 * 1024}",
    ]


def _set_wal(cursor: Any, pragma: str, timeout_s: float) -> None:
    """Switch to WAL, retrying SQLITE_BUSY until ``timeout_s``.

    On a new (rollback-journal) file, two connections switching at once hold SHARED and both
    want EXCLUSIVE: SQLite answers one "database is locked" at once, without the busy handler
    (deadlock avoidance), so busy_timeout does not cover it. WAL is persistent: once set,
    the read below returns "wal" and nothing is written.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        cursor.execute("PRAGMA journal_mode")
        if str(cursor.fetchone()[0]).lower() == "wal":
            return
        try:
            cursor.execute(pragma)
            return
        except Exception as exc:  # the adapted driver's OperationalError
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(0.01)


@dataclass(frozen=True, slots=True)
class PoolStats:
    """The write pool at one instant, with the counts of waits and timeouts since start."""

    size: int
    in_use: int
    idle: int
    overflow: int
    max_overflow: int
    waits: int
    timeouts: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class EnginePool:
    """The SQLAlchemy engine of one store and the acquisition of its connections."""

    def __init__(self, target: Target, settings: StoreSettings, *, application_name: str) -> None:
        self.target = target
        self._settings = settings
        self._waits = 0
        self._timeouts = 0
        connect_args: dict[str, Any] = {}
        if target.backend == "sqlite":
            connect_args["timeout"] = settings.busy_timeout_ms / 1000
        else:
            connect_args["server_settings"] = {
                "application_name": application_name,
                **target.server_settings,
            }
        self.engine: AsyncEngine = create_async_engine(
            target.sqlalchemy_url,
            poolclass=AsyncAdaptedQueuePool,
            pool_size=settings.pool_size,
            max_overflow=settings.pool_max_overflow,
            pool_recycle=settings.pool_recycle_s,
            pool_timeout=settings.pool_timeout_s,
            pool_pre_ping=True,
            connect_args=connect_args,
        )
        if target.backend == "sqlite":
            self._tune_sqlite()

    def _tune_sqlite(self) -> None:
        pragmas = sqlite_pragmas(self._settings)

        @event.listens_for(self.engine.sync_engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            try:
                for pragma in pragmas:
                    if "journal_mode" in pragma:
                        _set_wal(cursor, pragma, self._settings.busy_timeout_ms / 1000)
                    else:
                        cursor.execute(pragma)
            finally:
                cursor.close()

        @event.listens_for(self.engine.sync_engine, "begin")
        def _on_begin(connection: Any) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    @property
    def capacity(self) -> int:
        return self._settings.pool_size + self._settings.pool_max_overflow

    def stats(self) -> PoolStats:
        pool = self.engine.pool
        size = self._settings.pool_size
        in_use = int(pool.checkedout())  # type: ignore[attr-defined]
        idle = int(pool.checkedin())  # type: ignore[attr-defined]
        return PoolStats(
            size=size,
            in_use=in_use,
            idle=idle,
            overflow=max(0, in_use + idle - size),
            max_overflow=self._settings.pool_max_overflow,
            waits=self._waits,
            timeouts=self._timeouts,
        )

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        """A pooled connection in a transaction, committed on success, rolled back on error."""
        conn = await self.connect()
        try:
            async with conn.begin():
                yield conn
        finally:
            await conn.close()

    async def connect(self) -> AsyncConnection:
        """Check a connection out of the pool, counting waits and timeouts."""
        pool = self.engine.pool
        if pool.checkedin() == 0 and pool.checkedout() >= self.capacity:  # type: ignore[attr-defined]
            self._waits += 1
        try:
            return await self.engine.connect()
        except sa_exc.TimeoutError as exc:
            self._timeouts += 1
            s = self._settings
            raise StoreError(
                f"store {self.target.display}: connection pool exhausted, all {self.capacity} "
                f"connections stayed in use for {s.pool_timeout_s:g} s "
                f"(pool_size={s.pool_size}, pool_max_overflow={s.pool_max_overflow}); "
                "raise MYSTIC_STORE__POOL_SIZE or MYSTIC_STORE__POOL_TIMEOUT_S",
                target=self.target.display,
            ) from exc
        except (sa_exc.DBAPIError, OSError, sqlite3.Error) as exc:
            raise wrap_error(self.target, "cannot connect", exc) from exc

    async def aclose(self) -> None:
        await self.engine.dispose()


def error_reason(exc: BaseException) -> str:
    """The driver's own words for ``exc``, without SQLAlchemy's SQL and parameter echo."""
    orig = getattr(exc, "orig", None)
    inner = orig if isinstance(orig, BaseException) else exc
    text = str(inner).strip() or type(inner).__name__
    return text.splitlines()[0]


def wrap_error(target: Target, what: str, exc: BaseException) -> StoreError:
    """A :class:`StoreError` naming the target; the caller raises it ``from exc``."""
    return StoreError(f"store {target.display}: {what}: {error_reason(exc)}", target=target.display)


async def open_pool(
    target: Target, settings: StoreSettings, *, application_name: str
) -> EnginePool:
    """The engine for ``target``, proven by one round trip; a clear error if it cannot open.

    The SQLite file's directory is created if missing. The error names the file, or the URL
    with its password masked, and the driver's reason.
    """
    if target.sqlite_path is not None:
        try:
            target.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot open store {target.display}: cannot create its directory "
                f"{target.sqlite_path.parent}: {exc.strerror or exc}",
                target=target.display,
            ) from exc
    pool = EnginePool(target, settings, application_name=application_name)
    try:
        conn = await pool.engine.connect()
        try:
            await conn.exec_driver_sql("SELECT 1")
        finally:
            await conn.close()
    except BaseException as exc:
        await pool.aclose()
        if isinstance(exc, sa_exc.DBAPIError | OSError | sqlite3.Error | sa_exc.ArgumentError):
            raise StoreError(
                f"cannot open store {target.display}: {error_reason(exc)}",
                target=target.display,
            ) from exc
        raise
    return pool
