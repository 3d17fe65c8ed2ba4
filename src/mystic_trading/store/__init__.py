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
from mystic_trading.store._records import Alert, Ban, ControlChange, ControlState, Severity, Stored
from mystic_trading.store._snapshots import SnapshotRepository
from mystic_trading.store._store import Store, open_store
from mystic_trading.store._venues import VenueRecord, VenueRepository

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
