"""The store package exports exactly its public API."""

from __future__ import annotations

import mystic_trading.store as store


def test_exports_are_the_public_api() -> None:
    """__all__ is sorted, complete, and names only public objects that exist."""
    assert store.__all__ == sorted(store.__all__)
    assert set(store.__all__) == {
        "Alert", "AlertRepository", "Ban", "CandleRange", "CandleRepository", "ControlChange",
        "ControlRepository", "ControlState", "Heartbeat", "HeartbeatRepository",
        "MigrationStatus", "PoolStats", "QueryCache",
        "QueryMetrics", "RangeWrite", "Severity", "SnapshotRepository", "Store", "Stored",
        "VenueRecord", "VenueRepository", "head_revision",
        "migration_status", "open_store", "upgrade",
    }  # fmt: skip
    for name in store.__all__:
        assert getattr(store, name) is not None
