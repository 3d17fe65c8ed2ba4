"""The monitor package exports exactly its public API."""

from __future__ import annotations

import mystic_trading.monitor as monitor


def test_exports_are_the_public_api() -> None:
    """__all__ is sorted, complete, and names only public objects that exist."""
    assert monitor.__all__ == sorted(monitor.__all__)
    assert set(monitor.__all__) == {
        "Beat", "Check", "Controller", "Deployment", "HealthChecker", "HealthReport",
        "HealthThresholds",
        "HeartbeatKeeper", "HeartbeatPublisher", "LoopLag", "ProcessRegistry", "ProcessStatus",
        "PublisherState", "RedisHeartbeats", "Snapshot", "Status", "StoreHeartbeats",
        "SupportsPing", "free_disk_bytes", "heartbeat_figures", "process_rss_bytes",
    }  # fmt: skip
    for name in monitor.__all__:
        assert getattr(monitor, name) is not None
