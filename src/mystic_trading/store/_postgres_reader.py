"""The PostgreSQL hot-read path: a small pool of asyncpg connections of our own.

Why not ``asyncpg.Pool``. Its acquire and release are general: a queue of connection holders,
a timeout task unless told otherwise, a reset query on release (skippable), and a proxy
object per checkout; on a point read that answers in about 150 us they added some 30%. The
reads here are single autocommit SELECTs that leave no session state, so the pool can be
simpler:

- an ``asyncio.Semaphore`` of ``pool_size`` bounds the connections in use; acquiring it
  when a permit is free never suspends; when none is, the read waits up to
  ``pool_timeout_s``, then raises :class:`StoreError`;
- idle connections wait in a deque, used last-in first-out (the warmest first); one idle
  longer than ``pool_recycle_s`` is closed instead of reused, and connections are opened on
  demand, so there are never more than ``pool_size``;
- each connection keeps its statements prepared (one ``PreparedStatement`` per SQL text,
  which the repositories take from the constants of ``_sql``), so a read is a single
  Bind/Execute round trip, as with raw asyncpg.

A read that meets a connection the server dropped is retried once, on a freshly opened
connection; the idle ones are closed too, since a restarted or terminating server has
dropped them as well. A prepared statement that the server invalidated (a migration changed
a table it reads) is prepared again and the read retried once.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import asyncpg  # type: ignore[import-untyped]

from mystic_trading.config import StoreSettings
from mystic_trading.errors import StoreError
from mystic_trading.store._target import Target

__all__ = ["PostgresReader"]

Row = Sequence[Any]

# The connection died under the read: the server restarted, terminated the backend, or the
# socket broke. Safe to retry a read once on another connection.
_DISCONNECTED = (
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.InterfaceError,
    # The server's FATAL arrived while the connection sat idle and left the protocol in a
    # state it cannot leave ("cannot switch to state ..."); only a new connection helps.
    asyncpg.exceptions._base.InternalClientError,
    ConnectionError,
)


class _Connection:
    """One pooled connection, its prepared statements and when it was last released."""

    __slots__ = ("conn", "statements", "used_at")

    def __init__(self, conn: Any, used_at: float) -> None:
        self.conn = conn
        self.statements: dict[str, Any] = {}
        self.used_at = used_at


class PostgresReader:
    """Reads on a small asyncpg pool with prepared statements, retried once on a lost connection."""

    def __init__(
        self,
        target: Target,
        settings: StoreSettings,
        *,
        application_name: str,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._target = target
        self._settings = settings
        self._server_settings = {"application_name": application_name, **target.server_settings}
        self._monotonic = monotonic
        self._permits = asyncio.Semaphore(settings.pool_size)
        self._idle: deque[_Connection] = deque()
        self._open = 0  # idle and in use
        self._closed = False
        self.retries = 0
        self.waits = 0
        self.timeouts = 0

    @classmethod
    async def open(
        cls,
        target: Target,
        settings: StoreSettings,
        *,
        application_name: str,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> PostgresReader:
        """A reader with one connection open already: proof that the server answers."""
        reader = cls(target, settings, application_name=application_name, monotonic=monotonic)
        try:
            reader._idle.append(await reader._connect())
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise StoreError(
                f"cannot open store {target.display}: {exc}", target=target.display
            ) from exc
        return reader

    async def _connect(self) -> _Connection:
        conn = await asyncpg.connect(
            self._target.asyncpg_dsn, server_settings=self._server_settings
        )
        self._open += 1
        return _Connection(conn, self._monotonic())

    def _discard(self, c: _Connection) -> None:
        self._open -= 1
        c.conn.terminate()

    async def _acquire(self, *, fresh: bool) -> _Connection:
        permits = self._permits
        if permits.locked():
            self.waits += 1
            try:
                await asyncio.wait_for(permits.acquire(), self._settings.pool_timeout_s)
            except TimeoutError as exc:
                self.timeouts += 1
                raise StoreError(
                    f"store {self._target.display}: read pool exhausted, all "
                    f"{self._settings.pool_size} connections stayed in use for "
                    f"{self._settings.pool_timeout_s:g} s; raise MYSTIC_STORE__POOL_SIZE",
                    target=self._target.display,
                ) from exc
        else:
            await permits.acquire()  # a permit is free: returns without suspending
        idle = self._idle
        if idle and not fresh:
            oldest_allowed = self._monotonic() - self._settings.pool_recycle_s
            while idle and idle[0].used_at < oldest_allowed:
                self._discard(idle.popleft())
            while idle:
                c = idle.pop()
                if not c.conn.is_closed():
                    return c
                self._discard(c)
        if idle and self._open >= self._settings.pool_size:
            self._discard(idle.popleft())  # make room for the fresh one
        try:
            return await self._connect()
        except BaseException:
            permits.release()
            raise

    def _release(self, c: _Connection, *, broken: bool) -> None:
        if broken or self._closed:
            self._discard(c)
        else:
            c.used_at = self._monotonic()
            self._idle.append(c)
        self._permits.release()

    async def _run(self, sql: str, params: Sequence[Any], *, many: bool) -> Any:
        retried = fresh = False
        while True:
            try:
                c = await self._acquire(fresh=fresh)
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                raise self._failed("read failed, cannot connect", exc) from exc
            broken = False
            try:
                stmt = c.statements.get(sql)
                if stmt is None:
                    stmt = c.statements[sql] = await c.conn.prepare(sql)
                if many:
                    return await stmt.fetch(*params)
                return await stmt.fetchrow(*params)
            except asyncpg.exceptions.InvalidCachedStatementError as exc:
                c.statements.clear()  # prepare again on this connection
                if retried:
                    raise self._failed("read failed", exc) from exc
            except _DISCONNECTED as exc:
                broken = True
                if retried:
                    raise self._failed("read failed twice, connection lost", exc) from exc
                # The server dropped this one; it has likely dropped the idle ones too.
                while self._idle:
                    self._discard(self._idle.pop())
                fresh = True
            except asyncpg.PostgresError as exc:
                raise self._failed("read failed", exc) from exc
            finally:
                self._release(c, broken=broken)
            retried = True
            self.retries += 1

    def _failed(self, what: str, exc: BaseException) -> StoreError:
        return StoreError(
            f"store {self._target.display}: {what}: {exc}", target=self._target.display
        )

    async def fetch_all(self, sql: str, params: Sequence[Any], *, large: bool = False) -> list[Row]:
        return await self._run(sql, params, many=True)  # type: ignore[no-any-return]

    async def fetch_one(self, sql: str, params: Sequence[Any]) -> Row | None:
        return await self._run(sql, params, many=False)  # type: ignore[no-any-return]

    def stats(self) -> dict[str, Any]:
        idle = len(self._idle)
        return {
            "size": self._open,
            "max_size": self._settings.pool_size,
            "in_use": self._open - idle,
            "idle": idle,
            "retries": self.retries,
            "waits": self.waits,
            "timeouts": self.timeouts,
        }

    async def aclose(self) -> None:
        """Close the idle connections; one in use is closed when its read ends."""
        self._closed = True
        idle, self._idle = list(self._idle), deque()
        self._open -= len(idle)
        for c in idle:
            try:
                await asyncio.wait_for(c.conn.close(), 5)
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
                c.conn.terminate()
