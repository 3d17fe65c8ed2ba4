"""The monitor package exports exactly its public API."""

from __future__ import annotations

import mystic_trading.monitor as monitor


def test_exports_are_the_public_api() -> None:
    """__all__ is sorted, complete, and names only public objects that exist."""
    assert monitor.__all__ == sorted(monitor.__all__)
    assert set(monitor.__all__) == {
        "AlertEngine", "AlertSink", "AlertWebhook", "AutoOptimizer", "Beat", "Check", "Controller",
        "Deployment", "HealthChecker", "HealthReport", "HealthThresholds", "HeartbeatKeeper",
        "HeartbeatPublisher", "LoopLag", "ProcessRegistry", "ProcessStatus", "PublisherState",
        "Recommendation", "RedisHeartbeats", "Snapshot", "Status", "StoreHeartbeats",
        "SupportsPing", "alert_rows", "free_disk_bytes", "heartbeat_figures", "process_rss_bytes",
        "recommend",
    }  # fmt: skip
    for name in monitor.__all__:
        assert getattr(monitor, name) is not None
