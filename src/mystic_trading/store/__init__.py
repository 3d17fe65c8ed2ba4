"""The persistent store (L3): SQLite by default, PostgreSQL by URL, one Alembic schema.

``open_store(settings)`` gives a :class:`Store` with six repositories, each keyed by venue
(``providers/venue.py``):

- ``store.candles``: batch upserts, point and range reads (a range is a
  :class:`CandleRange`, a sequence that builds each candle on first access), the coverage map
  and its gaps;
- ``store.snapshots``: the latest ticker and order book per symbol;
- ``store.control``: throttle level and tunables with their audit log, and upstream bans
  (the throttler's persistence Protocol: ``load_ban``, ``save_ban``, ``load_level``,
  ``save_level``);
- ``store.alerts``: monitoring alerts;
- ``store.venues``: the venue each base URL identified as, exchangeInfo per venue, and the
  census, move and drop of a venue's rows (`mystic db venues`);
- ``store.heartbeats``: the last heartbeat of each process of the deployment (``monitor/``).

``upgrade(settings)`` and ``migration_status(settings)`` back ``mystic db upgrade`` and
``mystic db status``. Reads take a bare-driver hot path; writes and migrations take the
SQLAlchemy engine (see ``_readers`` for why).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mystic_trading._lazy import lazy_exports

if TYPE_CHECKING:  # the names as type checkers see them; loaded on first use below
    from mystic_trading.store._alerts import AlertRepository
    from mystic_trading.store._cache import QueryCache
    from mystic_trading.store._candles import CandleRepository, RangeWrite
    from mystic_trading.store._control import ControlRepository
    from mystic_trading.store._engine import PoolStats
    from mystic_trading.store._heartbeats import Heartbeat, HeartbeatRepository
    from mystic_trading.store._metrics import QueryMetrics
    from mystic_trading.store._migrate import (
        MigrationStatus,
        head_revision,
        migration_status,
        upgrade,
    )
    from mystic_trading.store._range import CandleRange
    from mystic_trading.store._records import (
        Alert,
        Ban,
        ControlChange,
        ControlState,
        Severity,
        Stored,
    )
    from mystic_trading.store._snapshots import SnapshotRepository
    from mystic_trading.store._store import Store, open_store
    from mystic_trading.store._venues import VenueRecord, VenueRepository

# Loaded on first use (PEP 562), so a caller of one repository or of the migrations does not
# pay for every driver (asyncpg, Alembic) at import: `mystic status` must start within 1 s.
_LAZY = {
    "Alert": "mystic_trading.store._records",
    "AlertRepository": "mystic_trading.store._alerts",
    "Ban": "mystic_trading.store._records",
    "CandleRange": "mystic_trading.store._range",
    "CandleRepository": "mystic_trading.store._candles",
    "ControlChange": "mystic_trading.store._records",
    "ControlRepository": "mystic_trading.store._control",
    "ControlState": "mystic_trading.store._records",
    "head_revision": "mystic_trading.store._migrate",
    "Heartbeat": "mystic_trading.store._heartbeats",
    "HeartbeatRepository": "mystic_trading.store._heartbeats",
    "migration_status": "mystic_trading.store._migrate",
    "MigrationStatus": "mystic_trading.store._migrate",
    "open_store": "mystic_trading.store._store",
    "PoolStats": "mystic_trading.store._engine",
    "QueryCache": "mystic_trading.store._cache",
    "QueryMetrics": "mystic_trading.store._metrics",
    "RangeWrite": "mystic_trading.store._candles",
    "Severity": "mystic_trading.store._records",
    "SnapshotRepository": "mystic_trading.store._snapshots",
    "Store": "mystic_trading.store._store",
    "Stored": "mystic_trading.store._records",
    "upgrade": "mystic_trading.store._migrate",
    "VenueRecord": "mystic_trading.store._venues",
    "VenueRepository": "mystic_trading.store._venues",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


__all__ = [
    "Alert",
    "AlertRepository",
    "Ban",
    "CandleRange",
    "CandleRepository",
    "ControlChange",
    "ControlRepository",
    "ControlState",
    "Heartbeat",
    "HeartbeatRepository",
    "MigrationStatus",
    "PoolStats",
    "QueryCache",
    "QueryMetrics",
    "RangeWrite",
    "Severity",
    "SnapshotRepository",
    "Store",
    "Stored",
    "VenueRecord",
    "VenueRepository",
    "head_revision",
    "migration_status",
    "open_store",
    "upgrade",
]
