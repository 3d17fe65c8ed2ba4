"""The hot-read path: indexed reads on the bare drivers, beside the SQLAlchemy engine.

Why a second path. Through SQLAlchemy's async engine a read costs a greenlet switch, a pool
checkout with a pre-ping and, for aiosqlite, a hop to the driver's thread and back (about
200 us): some 800 us for a point read that stdlib ``sqlite3`` answers in 15 us. Writes and
migrations keep the engine (transactions, pooling, Alembic); reads that an index answers go
straight to the driver:

- SQLite: one stdlib ``sqlite3`` connection, read-only (``query_only``), used directly on the
  event loop. An indexed read of up to a few thousand rows takes microseconds to a couple of
  milliseconds, less than a thread hop would add. WAL readers never wait for the writer, so
  the loop connection runs with ``busy_timeout = 0``; the rare SQLITE_BUSY (a checkpoint
  restarting the WAL, or another process in exclusive locking mode) and large reads (more
  than :data:`LOOP_MAX_ROWS` expected rows) go to worker threads, each with its own
  connection and the full ``busy_timeout``, so the loop never blocks on a lock or a long
  scan.
- PostgreSQL: a small pool of asyncpg connections of our own, each keeping its statements
  prepared; see ``_postgres_reader``.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from typing import Any, Protocol

from mystic_trading.config import StoreSettings
from mystic_trading.errors import StoreError
from mystic_trading.store._engine import sqlite_pragmas
from mystic_trading.store._target import Target

__all__ = ["LOOP_MAX_ROWS", "Reader", "SqliteReader"]

# Expected rows above which a SQLite read leaves the event loop for a worker thread
# (about 5 ms of row decoding).
LOOP_MAX_ROWS = 5_000

Row = Sequence[Any]


class Reader(Protocol):
    """Runs one read-only statement and returns its rows."""

    async def fetch_all(self, sql: str, params: Sequence[Any], *, large: bool = False) -> list[Row]:
        """Every row of ``sql``; ``large`` says many rows are expected."""
        ...

    async def fetch_one(self, sql: str, params: Sequence[Any]) -> Row | None:
        """The first row of ``sql``, or None."""
        ...

    def stats(self) -> dict[str, Any]:
        """Connections held by the reader."""
        ...

    async def aclose(self) -> None: ...


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) or "locked" in str(exc)


class SqliteReader:
    """Reads on a loop-owned sqlite3 connection, with worker threads for long or blocked ones."""

    def __init__(self, target: Target, settings: StoreSettings) -> None:
        assert target.sqlite_path is not None
        self._path = str(target.sqlite_path)
        self._target = target
        self._settings = settings
        self._loop_conn = self._open(busy_timeout_ms=0)
        self._idle: list[sqlite3.Connection] = []
        self._threads = asyncio.Semaphore(settings.pool_size)
        self._open_threads = 0
        self._closed = False

    def _open(self, *, busy_timeout_ms: int) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self._path,
            isolation_level=None,  # autocommit: every statement is its own read snapshot
            check_same_thread=False,
            timeout=busy_timeout_ms / 1000,
            cached_statements=256,
        )
        for pragma in sqlite_pragmas(self._settings, busy_timeout_ms=busy_timeout_ms):
            if "journal_mode" not in pragma:  # the engine set WAL; a reader need not
                conn.execute(pragma)
        conn.execute("PRAGMA query_only = ON")
        return conn

    def _error(self, exc: sqlite3.Error) -> StoreError:
        waited = self._settings.busy_timeout_ms
        what = (
            f"database is locked (waited busy_timeout {waited} ms)"
            if (isinstance(exc, sqlite3.OperationalError) and _is_busy(exc))
            else str(exc)
        )
        return StoreError(f"store {self._target.display}: read failed: {what}", target=self._path)

    async def fetch_all(self, sql: str, params: Sequence[Any], *, large: bool = False) -> list[Row]:
        if not large:
            try:
                return self._loop_conn.execute(sql, params).fetchall()
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc):
                    raise self._error(exc) from exc
            except sqlite3.Error as exc:
                raise self._error(exc) from exc
        return await self._in_thread(sql, params, many=True)  # type: ignore[no-any-return]

    async def fetch_one(self, sql: str, params: Sequence[Any]) -> Row | None:
        try:
            row: Row | None = self._loop_conn.execute(sql, params).fetchone()
            return row
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc):
                raise self._error(exc) from exc
        except sqlite3.Error as exc:
            raise self._error(exc) from exc
        return await self._in_thread(sql, params, many=False)  # type: ignore[no-any-return]

    async def _in_thread(self, sql: str, params: Sequence[Any], *, many: bool) -> Any:
        async with self._threads:
            conn = self._idle.pop() if self._idle else None
            try:
                if conn is None:
                    conn = await asyncio.to_thread(
                        self._open, busy_timeout_ms=self._settings.busy_timeout_ms
                    )
                    self._open_threads += 1
                return await asyncio.to_thread(_run, conn, sql, params, many)
            except sqlite3.Error as exc:
                raise self._error(exc) from exc
            finally:
                if conn is not None:
                    if self._closed:
                        conn.close()
                    else:
                        self._idle.append(conn)

    def stats(self) -> dict[str, Any]:
        return {"loop_connections": 1, "thread_connections": self._open_threads}

    async def aclose(self) -> None:
        self._closed = True
        self._loop_conn.close()
        for conn in self._idle:
            conn.close()
        self._idle.clear()


def _run(conn: sqlite3.Connection, sql: str, params: Sequence[Any], many: bool) -> Any:
    cur = conn.execute(sql, params)
    return cur.fetchall() if many else cur.fetchone()
