"""Candles and the coverage map: what the market-data layer reads and fills.

A series is (provider, symbol, interval). ``range`` reads stored candles of [start, end);
``gaps`` says which aligned sub-ranges of it are not yet known; ``save_range`` stores the
fetched candles of a range and marks the range known in one transaction, so a crash never
leaves a range marked known without its candles (or candles without their range). Unknown
intervals and an end before its start are refused before any SQL runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from sqlalchemy.ext.asyncio import AsyncConnection

from mystic_trading.models import Candle, Interval, Symbol
from mystic_trading.store import _sql
from mystic_trading.store._codec import candle_from_native, candle_from_text, candle_params
from mystic_trading.store._core import Database
from mystic_trading.store._coverage import aligned, check_range, gaps, merged
from mystic_trading.store._range import CandleRange
from mystic_trading.store._readers import LOOP_MAX_ROWS

__all__ = ["CandleRepository"]

Range = tuple[int, int]
CANDLES = ("candles",)
COVERAGE = ("coverage",)


class RangeWrite(NamedTuple):
    """One range for ``save_ranges``: its candles, and [start, end) to mark covered."""

    symbol: Symbol | str
    interval: Interval | str
    start: int
    end: int
    candles: Sequence[Candle]
    fetched_at: int | None = None


class CandleRepository:
    """Batch upserts, point and range reads of candles; the coverage map of each series."""

    def __init__(self, db: Database) -> None:
        self._db = db
        q = db.sql
        self._get = q(_sql.CANDLE_GET)
        self._range = q(_sql.CANDLE_RANGE)
        self._upsert = q(_sql.CANDLE_UPSERT)
        self._overlap = q(_sql.COVERAGE_OVERLAP)
        self._all = q(_sql.COVERAGE_ALL)
        self._touching = q(_sql.COVERAGE_TOUCHING)
        self._delete = q(_sql.COVERAGE_DELETE_TOUCHING)
        self._insert = q(_sql.COVERAGE_INSERT)
        pg = db.backend == "postgresql"
        self._lock = q(_sql.COVERAGE_LOCK) if pg else ""
        self._native = pg
        self._decode = candle_from_native if pg else candle_from_text

    async def get(
        self, provider: str, symbol: Symbol | str, interval: Interval | str, open_time: int
    ) -> Candle | None:
        """The stored candle of the series that opens at ``open_time``, or None."""
        sym = Symbol.parse(symbol)
        iv = Interval.parse(interval)
        decode = self._decode
        series = (provider, str(sym), str(iv))  # str() of the StrEnum is its value, in C

        def build(row: Any) -> Candle:
            return decode(sym, iv, row)

        return await self._db.read_one(
            "candles.get", self._get, (*series, open_time), build, tables=CANDLES, detail=series
        )

    async def range(
        self,
        provider: str,
        symbol: Symbol | str,
        interval: Interval | str,
        start: int,
        end: int,
    ) -> CandleRange:
        """Stored candles opening in [start, end), oldest first.

        A read-only sequence that builds each candle on first access (see ``_range``);
        ``list()`` of it gives plain candles.
        """
        sym = Symbol.parse(symbol)
        iv = Interval.parse(interval)
        check_range(start, end)
        step = iv.ms
        expected = (end - start) // step if step else 0
        native = self._native
        series = (provider, str(sym), str(iv))

        def build(rows: Any) -> CandleRange:
            return CandleRange(rows, sym, iv, native=native)

        return await self._db.read_all(
            "candles.range",
            self._range,
            (*series, start, end),
            build,
            # A large read is bulk work (a long window walked chunk by chunk): kept in the
            # query cache, every chunk would stay in memory for its TTL (2.1 GB for two
            # years of 1m candles read back); the memory cache keeps answers anyway.
            tables=() if expected > LOOP_MAX_ROWS else CANDLES,
            detail=(*series, expected),
            large=expected > LOOP_MAX_ROWS,
        )

    async def upsert(
        self, provider: str, candles: Sequence[Candle], *, fetched_at: int | None = None
    ) -> int:
        """Store ``candles`` in one transaction; returns how many were sent.

        Idempotent: a stored closed candle never changes; a stored open candle is replaced by
        its closed version, or by an open version fetched no earlier (``fetched_at``, UTC
        epoch ms, defaults to now).
        """
        if not candles:
            return 0
        db = self._db
        params = candle_params(
            provider, candles, db.now_ms() if fetched_at is None else fetched_at, db.enc
        )

        async def work(conn: AsyncConnection) -> None:
            await conn.exec_driver_sql(self._upsert, params)

        await db.write("candles.upsert", work, tables=CANDLES, detail=(provider, len(params)))
        return len(params)

    async def gaps(
        self,
        provider: str,
        symbol: Symbol | str,
        interval: Interval | str,
        start: int,
        end: int,
    ) -> list[Range]:
        """The [start, end) sub-ranges not in the coverage map, aligned to open times."""
        sym = Symbol.parse(symbol)
        iv = Interval.parse(interval)
        lo, hi = aligned(iv, start, end)
        if lo >= hi:
            return []
        return await self._db.read_all(
            "coverage.gaps",
            self._overlap,
            (provider, str(sym), iv.value, lo, hi),
            lambda rows: gaps(((r[0], r[1]) for r in rows), lo, hi),
            tables=COVERAGE,
            detail=(provider, str(sym), iv.value),
        )

    async def coverage(
        self, provider: str, symbol: Symbol | str, interval: Interval | str
    ) -> list[Range]:
        """Every known range of the series, ascending and disjoint."""
        sym = Symbol.parse(symbol)
        iv = Interval.parse(interval)
        return await self._db.read_all(
            "coverage.list",
            self._all,
            (provider, str(sym), iv.value),
            lambda rows: [(r[0], r[1]) for r in rows],
            tables=COVERAGE,
            detail=(provider, str(sym), iv.value),
        )

    async def mark_covered(
        self,
        provider: str,
        symbol: Symbol | str,
        interval: Interval | str,
        start: int,
        end: int,
    ) -> None:
        """Record that every candle opening in [start, end) is stored or known not to exist."""
        await self.save_range(provider, symbol, interval, start, end, ())

    async def save_range(
        self,
        provider: str,
        symbol: Symbol | str,
        interval: Interval | str,
        start: int,
        end: int,
        candles: Sequence[Candle],
        *,
        fetched_at: int | None = None,
    ) -> None:
        """Upsert ``candles`` and mark [start, end) covered, all in one transaction.

        Only a range whose candles are all closed (or known absent) should be marked.
        """
        await self.save_ranges(
            provider, [RangeWrite(symbol, interval, start, end, candles, fetched_at)]
        )

    async def save_ranges(self, provider: str, writes: Sequence[RangeWrite]) -> None:
        """``save_range`` for many ranges, of any series, in one transaction: one commit and
        one statement for all their candles instead of one each (a write-behind queue
        drains this way). All of it is stored, or none."""
        if not writes:
            return
        db = self._db
        now = db.now_ms()
        # Series and ranges in one order, so two processes' batches lock the same candle rows
        # and PostgreSQL's per-series coverage locks in the same order, and never deadlock.
        ordered = sorted(
            ((str(Symbol.parse(w.symbol)), Interval.parse(w.interval), w) for w in writes),
            key=lambda t: (t[0], t[1].value, t[2].start),
        )
        params: list[tuple[Any, ...]] = []
        merges: list[tuple[tuple[str, str, str], Range]] = []
        for sym_text, iv, w in ordered:
            lo, hi = aligned(iv, w.start, w.end)
            at = now if w.fetched_at is None else w.fetched_at
            params.extend(candle_params(provider, w.candles, at, db.enc))
            if lo < hi:
                merges.append(((provider, sym_text, iv.value), (lo, hi)))
        merges.sort()

        async def work(conn: AsyncConnection) -> None:
            if params:
                await conn.exec_driver_sql(self._upsert, params)
            for series, new in merges:
                await self._merge(conn, series, new)

        tables = ("candles", "coverage") if params else COVERAGE
        first = merges[0][0] if merges else (provider,)
        detail = (*first, len(params)) if len(writes) == 1 else (provider, len(writes), len(params))
        await db.write("coverage.save", work, tables=tables, detail=detail)

    async def _merge(self, conn: AsyncConnection, series: tuple[str, str, str], new: Range) -> None:
        if self._lock:
            await conn.exec_driver_sql(self._lock, ("coverage:" + "|".join(series),))
        bounds = (*series, new[0], new[1])
        touching: list[Any] = list((await conn.exec_driver_sql(self._touching, bounds)).fetchall())
        lo, hi = merged(new, ((r[0], r[1]) for r in touching))
        if len(touching) == 1 and (touching[0][0], touching[0][1]) == (lo, hi):
            return  # already inside one known range
        await conn.exec_driver_sql(self._delete, bounds)
        await conn.exec_driver_sql(self._insert, (*series, lo, hi))
