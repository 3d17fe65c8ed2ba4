"""Heartbeats kept in the store: where processes beat when no Redis is configured, or while
it is down (``monitor/`` decides which, and what alive means).

One row per process, upserted at every beat; a beat older (by the process's own ``seq``)
than the kept one changes nothing, so a write delayed behind the store's write lock never
moves a process back in time. Stamps are on the store's clock (``now_ms``; the wall clock
the store was opened with), so a reader compares them with the same clock: on one host that
is exact, and across the hosts of a PostgreSQL deployment it is off by their NTP skew,
milliseconds against the seconds of three missed beats. Rows are read on the hot-read path
but never through the query cache, whose invalidation sees only this process's writes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from mystic_trading.store import _sql
from mystic_trading.store._core import Database

__all__ = ["Heartbeat", "HeartbeatRepository"]

_TABLES = ("heartbeats", "heartbeat_samples")


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """One process's last heartbeat as kept: who it is, when (UTC epoch ms on the keeper's
    clock), the interval it beats at, and its figures."""

    process_id: str
    venue: str
    host: str
    pid: int
    version: str
    started_at: int
    beat_at: int
    interval_ms: int
    seq: int
    figures: dict[str, Any] = field(default_factory=dict)
    stopped_at: int | None = None


def encode_figures(figures: dict[str, Any]) -> str:
    """Figures as compact JSON; a value JSON cannot hold (a Decimal) is kept as its text."""
    return json.dumps(figures, separators=(",", ":"), default=str)


def _build(row: Any) -> Heartbeat:
    figures = json.loads(row[9]) if row[9] else {}
    return Heartbeat(
        process_id=str(row[0]),
        venue=str(row[1]),
        host=str(row[2]),
        pid=int(row[3]),
        version=str(row[4]),
        started_at=int(row[5]),
        beat_at=int(row[6]),
        interval_ms=int(row[7]),
        seq=int(row[8]),
        figures=figures if isinstance(figures, dict) else {},
        stopped_at=None if row[10] is None else int(row[10]),
    )


class HeartbeatRepository:
    """Save, stop, list and prune the heartbeats of a deployment's processes."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._upsert = db.sql(_sql.HEARTBEAT_UPSERT)
        self._stop = db.sql(_sql.HEARTBEAT_STOP)
        self._recent = db.sql(_sql.HEARTBEAT_RECENT)
        self._prune = db.sql(_sql.HEARTBEAT_PRUNE)
        self._sample = db.sql(_sql.SAMPLE_INSERT)
        self._sample_prune = db.sql(_sql.SAMPLE_PRUNE)
        self._samples = db.sql(_sql.SAMPLE_RECENT)

    def now_ms(self) -> int:
        """The store's clock (UTC epoch ms), which stamps and judges the rows."""
        return self._db.now_ms()

    async def save(
        self, beat: Heartbeat, *, prune_before: int | None = None, sample: str | None = None
    ) -> bool:
        """Keep ``beat`` as its process's last (unless a newer one is kept: False), and in
        the same transaction delete the rows of processes silent since before
        ``prune_before``. ``sample`` (JSON), when given, joins the process's ring of samples
        (``heartbeat_samples``) stamped as the beat, whose rows of the beat's venue older than
        ``prune_before`` go."""
        params = (
            beat.process_id,
            beat.venue,
            beat.host,
            beat.pid,
            beat.version,
            beat.started_at,
            beat.beat_at,
            beat.interval_ms,
            beat.seq,
            encode_figures(beat.figures),
            beat.stopped_at,
        )

        async def work(conn: AsyncConnection) -> bool:
            saved = bool((await conn.exec_driver_sql(self._upsert, params)).rowcount)
            if saved and sample is not None:
                row = (beat.process_id, beat.venue, beat.beat_at, sample)
                await conn.exec_driver_sql(self._sample, row)
            if prune_before is not None:
                await conn.exec_driver_sql(self._prune, (prune_before,))
                if sample is not None:
                    await conn.exec_driver_sql(self._sample_prune, (beat.venue, prune_before))
            return saved

        return await self._db.write("heartbeats.save", work, tables=_TABLES, detail=beat.process_id)

    async def stop(self, process_id: str, *, at: int | None = None) -> bool:
        """Mark ``process_id`` stopped (closed cleanly) at ``at`` (default: now); False if
        it has no row or was stopped already."""
        stamp = self._db.now_ms() if at is None else at

        async def work(conn: AsyncConnection) -> bool:
            return bool((await conn.exec_driver_sql(self._stop, (stamp, process_id))).rowcount)

        return await self._db.write("heartbeats.stop", work, tables=_TABLES, detail=process_id)

    async def recent(self, since_ms: int) -> list[Heartbeat]:
        """Every process that beat at or after ``since_ms``, oldest start first."""

        def build(rows: list[Any]) -> list[Heartbeat]:
            return [_build(row) for row in rows]

        return await self._db.read_all("heartbeats.recent", self._recent, (since_ms,), build)

    async def samples(self, venue: str, since_ms: int) -> list[tuple[str, int, str]]:
        """The samples of ``venue``'s processes since ``since_ms``: ``(process id, beat_at,
        sample JSON)`` by process, oldest first."""

        def build(rows: list[Any]) -> list[tuple[str, int, str]]:
            return [(str(r[0]), int(r[1]), str(r[2])) for r in rows]

        return await self._db.read_all(
            "heartbeats.samples", self._samples, (venue, since_ms), build
        )

    async def prune(self, before_ms: int) -> int:
        """Delete the rows of processes silent since before ``before_ms``; how many."""

        async def work(conn: AsyncConnection) -> int:
            return int((await conn.exec_driver_sql(self._prune, (before_ms,))).rowcount or 0)

        return await self._db.write("heartbeats.prune", work, tables=_TABLES, detail=before_ms)
