"""Venues: the venue each base URL identified as, the exchangeInfo kept per venue, and the
operator's tools for a store whose rows are of unknown or unwanted origin.

Every other repository takes the venue as its ``provider`` key; this one knows them all:
``census`` counts each venue's rows in every venue-keyed table, ``move`` re-keys one venue's
rows to another (only into a venue that holds nothing, so no two origins mix), and ``drop``
deletes one venue's rows. Both write an audit entry. Nothing here runs on its own: a store
that holds rows of the pre-venue key is reported at start, and only the operator moves or
drops them (`mystic db venues`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from mystic_trading.store import _sql
from mystic_trading.store._core import Database
from mystic_trading.store._records import Stored

__all__ = ["VenueRecord", "VenueRepository"]

_TABLES = tuple(table for table, _ in _sql.VENUE_TABLES)
_AUDITED = (*_TABLES, "control_audit")


@dataclass(frozen=True, slots=True)
class VenueRecord:
    """What a base URL identified as when it was last reached."""

    base_url: str
    venue: str
    declared: str | None
    first_seen: int
    last_seen: int


class VenueRepository:
    """Base URL to venue, exchangeInfo per venue, and census, move and drop of venues."""

    def __init__(self, db: Database) -> None:
        self._db = db
        q = db.sql
        self._get = q(_sql.VENUE_GET)
        self._put = q(_sql.VENUE_UPSERT)
        self._all = q(_sql.VENUE_ALL)
        self._info_get = q(_sql.INFO_GET)
        self._info_put = q(_sql.INFO_UPSERT)
        self._audit = q(_sql.AUDIT_INSERT)

    # -- base URLs ----------------------------------------------------------------------

    async def remember(self, base_url: str, venue: str, declared: str | None) -> None:
        """``base_url`` identified as ``venue`` (declaring ``declared``) just now."""
        now = self._db.now_ms()
        params = (base_url, venue, declared, now, now)

        async def work(conn: AsyncConnection) -> None:
            await conn.exec_driver_sql(self._put, params)

        await self._db.write("venue.save", work, tables=("venues",), detail=venue)

    async def known(self, base_url: str) -> VenueRecord | None:
        """What ``base_url`` identified as when last reached, or None."""

        def build(row: Any) -> VenueRecord:
            return VenueRecord(base_url, row[0], row[1], row[2], row[3])

        return await self._db.read_one("venue.load", self._get, (base_url,), build)

    async def records(self) -> list[VenueRecord]:
        """Every base URL seen, with its venue."""

        def build(rows: list[Any]) -> list[VenueRecord]:
            return [VenueRecord(*row) for row in rows]

        return await self._db.read_all("venue.list", self._all, (), build)

    # -- exchangeInfo -------------------------------------------------------------------

    async def save_info(self, venue: str, body: str) -> int:
        """Keep ``body`` (exchangeInfo as the exchange sent it, just now) unless a newer one
        is kept; returns its stamp (the store's clock, UTC ms)."""
        fetched_at = self._db.now_ms()

        async def work(conn: AsyncConnection) -> None:
            await conn.exec_driver_sql(self._info_put, (venue, body, fetched_at))

        await self._db.write("info.save", work, tables=("exchange_info",), detail=venue)
        return fetched_at

    async def load_info(self, venue: str) -> tuple[Stored[str], float] | None:
        """The kept exchangeInfo of ``venue`` with its stamp, and its age in seconds on the
        store's clock (every process stamps with its own wall clock), or None."""

        def build(row: Any) -> Stored[str]:
            return Stored(row[0], row[1])

        kept = await self._db.read_one("info.load", self._info_get, (venue,), build)
        if kept is None:
            return None
        return kept, max(0.0, (self._db.now_ms() - kept.fetched_at) / 1000)

    # -- census, move, drop -------------------------------------------------------------

    async def census(self) -> dict[str, dict[str, int]]:
        """Rows per venue and table: ``{venue: {table: rows}}`` (full scans: for tools)."""
        out: dict[str, dict[str, int]] = {}
        for table, column in _sql.VENUE_TABLES:
            sql = self._db.sql(f"SELECT {column}, COUNT(*) FROM {table} GROUP BY {column}")  # noqa: S608
            rows = await self._db.read_all(f"venue.census.{table}", sql, (), list)
            for venue, count in rows:
                out.setdefault(str(venue), {})[table] = int(count)
        return out

    async def holds(self, venue: str) -> bool:
        """Whether any venue-keyed table has a row of ``venue`` (one index seek a table)."""
        for table, column in _sql.VENUE_TABLES:
            sql = self._db.sql(f"SELECT 1 FROM {table} WHERE {column} = ? LIMIT 1")  # noqa: S608
            if await self._db.read_one(f"venue.holds.{table}", sql, (venue,), bool):
                return True
        return False

    async def move(self, source: str, target: str, *, actor: str, reason: str) -> int:
        """Re-key every row of ``source`` to ``target``; returns how many rows moved.

        Refused (ValueError) when ``target`` already holds rows: two origins never mix.
        """
        if source == target:
            raise ValueError(f"cannot move venue {source!r} onto itself")

        async def work(conn: AsyncConnection) -> int:
            for table, column in _sql.VENUE_TABLES:
                probe = self._db.sql(f"SELECT 1 FROM {table} WHERE {column} = ? LIMIT 1")  # noqa: S608
                if (await conn.exec_driver_sql(probe, (target,))).first() is not None:
                    raise ValueError(
                        f"venue {target!r} already holds rows in {table}; drop or move them "
                        "first, so that data of two origins never mixes"
                    )
            moved = 0
            for table, column in _sql.VENUE_TABLES:
                sql = self._db.sql(f"UPDATE {table} SET {column} = ? WHERE {column} = ?")  # noqa: S608
                moved += (await conn.exec_driver_sql(sql, (target, source))).rowcount or 0
            await self._log(conn, source, actor, source, target, reason or "venue moved")
            return moved

        return await self._db.write("venue.move", work, tables=_AUDITED, detail=source)

    async def drop(self, venue: str, *, actor: str, reason: str) -> int:
        """Delete every row of ``venue`` (the audit log keeps its history); returns how many."""

        async def work(conn: AsyncConnection) -> int:
            dropped = 0
            for table, column in _sql.VENUE_TABLES:
                sql = self._db.sql(f"DELETE FROM {table} WHERE {column} = ?")  # noqa: S608
                dropped += (await conn.exec_driver_sql(sql, (venue,))).rowcount or 0
            await self._log(conn, venue, actor, venue, None, reason or "venue dropped")
            return dropped

        return await self._db.write("venue.drop", work, tables=_AUDITED, detail=venue)

    async def _log(
        self,
        conn: AsyncConnection,
        venue: str,
        actor: str,
        old: str | None,
        new: str | None,
        reason: str,
    ) -> None:
        params = (venue, "venue", actor, self._db.now_ms(), old, new, reason)
        await conn.exec_driver_sql(self._audit, params)
