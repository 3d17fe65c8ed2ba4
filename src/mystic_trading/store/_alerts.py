"""Alerts raised by monitoring rules, kept in the store so every process sees them."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from mystic_trading.errors import DataError
from mystic_trading.store import _sql
from mystic_trading.store._core import Database
from mystic_trading.store._records import Alert, Severity

__all__ = ["AlertRepository"]

ALERTS = ("alerts",)


class AlertRepository:
    """Raise, resolve and list alerts."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._insert = db.sql(_sql.ALERT_INSERT)
        self._resolve = db.sql(_sql.ALERT_RESOLVE)
        self._open = db.sql(_sql.ALERT_OPEN)
        self._all = db.sql(_sql.ALERT_ALL)

    async def add(
        self,
        rule: str,
        severity: Severity,
        message: str,
        value: float,
        threshold: float,
        *,
        created_at: int | None = None,
    ) -> int:
        """Store a new open alert and return its id."""
        if severity not in ("warning", "critical"):
            raise DataError(f"alert severity must be 'warning' or 'critical', got {severity!r}")
        at = self._db.now_ms() if created_at is None else created_at
        params = (rule, severity, message, float(value), float(threshold), at)

        async def work(conn: AsyncConnection) -> int:
            return int((await conn.exec_driver_sql(self._insert, params)).scalar_one())

        return await self._db.write("alerts.add", work, tables=ALERTS, detail=rule)

    async def resolve(self, alert_id: int, *, resolved_at: int | None = None) -> bool:
        """Mark an open alert resolved; False if it is unknown or already resolved."""
        at = self._db.now_ms() if resolved_at is None else resolved_at

        async def work(conn: AsyncConnection) -> bool:
            result = await conn.exec_driver_sql(self._resolve, (at, alert_id))
            return bool(result.rowcount)

        return await self._db.write("alerts.resolve", work, tables=ALERTS, detail=alert_id)

    async def list(self, *, open_only: bool = False, limit: int = 100) -> list[Alert]:
        """The latest alerts, newest first (only unresolved ones with ``open_only``)."""

        def build(rows: Any) -> tuple[Alert, ...]:
            return tuple(Alert(*r) for r in rows)

        sql = self._open if open_only else self._all
        result = await self._db.read_all(
            "alerts.list", sql, (limit,), build, tables=ALERTS, detail=limit
        )
        return list(result)
