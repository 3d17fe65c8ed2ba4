"""Alerts raised by monitoring rules, kept in the store so every process sees them.

At most one alert is open per rule and subject, whatever number of processes judge them:
the store decides (a partial unique index over the open rows, migration 0004), so opening
is an insert that does nothing when another process got there first, and escalating and
resolving are updates that change a row once. Each method says whether it changed
something, so that only the process that did reports the event.

Reads never go through the query cache: its invalidation sees only this process's writes,
and alerts are written by every process of a deployment.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from mystic_trading.errors import DataError
from mystic_trading.store import _sql
from mystic_trading.store._core import Database
from mystic_trading.store._records import Alert, Severity

__all__ = ["AlertRepository"]

ALERTS = ("alerts",)
SEVERITIES = ("warning", "critical")


def _alert(row: Any) -> Alert:
    return Alert(*row)


class AlertRepository:
    """Open, escalate, mark seen, resolve and list alerts."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._insert = db.sql(_sql.ALERT_INSERT)
        self._get_open = db.sql(_sql.ALERT_GET_OPEN)
        self._escalate = db.sql(_sql.ALERT_ESCALATE)
        self._seen = db.sql(_sql.ALERT_SEEN)
        self._resolve = db.sql(_sql.ALERT_RESOLVE)
        self._resolve_quiet = db.sql(_sql.ALERT_RESOLVE_QUIET)
        self._open = db.sql(_sql.ALERT_OPEN)
        self._all = db.sql(_sql.ALERT_ALL)

    def now_ms(self) -> int:
        """The store's clock (UTC epoch ms)."""
        return self._db.now_ms()

    async def open(
        self,
        rule: str,
        subject: str,
        severity: Severity,
        message: str,
        value: float,
        threshold: float,
        *,
        warning: float | None = None,
        critical: float | None = None,
        unit: str = "",
        at: int | None = None,
    ) -> Alert | None:
        """Open an alert for ``rule`` about ``subject``; None when one is open already
        (another process opened it: read it with :meth:`get_open`)."""
        if severity not in SEVERITIES:
            raise DataError(f"alert severity must be 'warning' or 'critical', got {severity!r}")
        stamp = self._db.now_ms() if at is None else at
        params = (
            rule,
            subject,
            severity,
            message,
            float(value),
            float(threshold),
            warning,
            critical,
            unit,
            stamp,
            stamp,
        )

        async def work(conn: AsyncConnection) -> Alert | None:
            row = (await conn.exec_driver_sql(self._insert, params)).first()
            return None if row is None else _alert(row)

        return await self._db.write("alerts.open", work, tables=ALERTS, detail=rule)

    async def add(
        self,
        rule: str,
        severity: Severity,
        message: str,
        value: float,
        threshold: float,
        *,
        subject: str = "",
        created_at: int | None = None,
    ) -> int:
        """Store a new open alert and return its id; DataError when one is open already for
        ``rule`` and ``subject``."""
        opened = await self.open(rule, subject, severity, message, value, threshold, at=created_at)
        if opened is None:
            raise DataError(
                f"an alert for rule {rule!r} about {subject or 'no subject'!r} is open already"
            )
        return opened.id

    async def get_open(self, rule: str, subject: str) -> Alert | None:
        """The open alert for ``rule`` about ``subject``, if any."""

        def build(rows: Any) -> Alert | None:
            return _alert(rows[0]) if rows else None

        return await self._db.read_all(
            "alerts.get_open", self._get_open, (rule, subject), build, detail=rule
        )

    async def escalate(
        self, alert_id: int, *, threshold: float, value: float, message: str, at: int
    ) -> bool:
        """Raise an open warning to critical at ``at``; False if it is critical already,
        resolved or unknown."""
        params = (at, float(threshold), float(value), message, alert_id)

        async def work(conn: AsyncConnection) -> bool:
            return bool((await conn.exec_driver_sql(self._escalate, params)).rowcount)

        return await self._db.write("alerts.escalate", work, tables=ALERTS, detail=alert_id)

    async def seen(self, alert_id: int, *, value: float, message: str, at: int) -> bool:
        """Record that a process judged the open alert bad at ``at`` (its latest value and
        reason); a later ``seen_at`` is never moved back. False if it is not open."""
        params = (float(value), message, at, at, alert_id)

        async def work(conn: AsyncConnection) -> bool:
            return bool((await conn.exec_driver_sql(self._seen, params)).rowcount)

        return await self._db.write("alerts.seen", work, tables=ALERTS, detail=alert_id)

    async def resolve(
        self, alert_id: int, *, resolved_at: int | None = None, quiet_since: int | None = None
    ) -> bool:
        """Mark an open alert resolved; False if it is unknown or already resolved, or (with
        ``quiet_since``) if some process judged it bad after ``quiet_since``."""
        at = self._db.now_ms() if resolved_at is None else resolved_at
        params: tuple[int, ...]
        if quiet_since is None:
            sql, params = self._resolve, (at, alert_id)
        else:
            sql, params = self._resolve_quiet, (at, alert_id, quiet_since)

        async def work(conn: AsyncConnection) -> bool:
            return bool((await conn.exec_driver_sql(sql, params)).rowcount)

        return await self._db.write("alerts.resolve", work, tables=ALERTS, detail=alert_id)

    async def list(self, *, open_only: bool = False, limit: int = 100) -> list[Alert]:
        """The latest alerts, newest first (only unresolved ones with ``open_only``)."""

        def build(rows: Any) -> list[Alert]:
            return [_alert(r) for r in rows]

        sql = self._open if open_only else self._all
        return await self._db.read_all("alerts.list", sql, (limit,), build, detail=limit)
