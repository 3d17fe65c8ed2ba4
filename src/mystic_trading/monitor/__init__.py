"""Monitoring: heartbeats of every process of a deployment, and health checks.

**Heartbeats.** Every process that runs MarketData publishes one every ``heartbeat_s``
(2 s) with a :class:`HeartbeatPublisher`: its identity (a uuid4 id for this run, host, pid,
version, venue), its start time and its figures (:func:`heartbeat_figures` of
``md.stats()``, plus event-loop lag and memory measured here). They are kept in Redis when
one is configured (:class:`RedisHeartbeats`, on Redis's clock) and in the store otherwise,
or while Redis is down (``store.heartbeats``, on the store's clock). A
:class:`ProcessRegistry` reads every keeper and judges each process on its keeper's clock:
alive while its last beat is within three of its intervals, gone otherwise (``stopped``
when it closed cleanly); gone processes stay visible for an hour.

**Health.** A :class:`HealthChecker` runs a round of checks (store round trip and pool
waits, Redis, upstream success and latency, ban and pause, the exchange's clock, throttle
utilisation and queue wait, cache hit rates and evictions, candle write backlog, processes
lost, this process's heartbeat, event-loop lag, memory, free disk) against
:class:`HealthThresholds`, each giving a :class:`Check` (ok, warning or critical, with its
value, thresholds and a one-line reason), together a :class:`HealthReport`.

**Alerts.** An :class:`AlertEngine`, given to the health checker, judges a rule per check
after every round: beyond a threshold for ``for_s`` opens (or escalates) an alert, back to
ok for ``resolve_s`` resolves it; one open alert per rule and subject (a venue, or a
process) whatever number of processes judge it, kept in the store, each event sent to an
:class:`AlertSink` such as :class:`AlertWebhook` (a JSON POST, off the round's path).
:func:`alert_rows` lists them as plain data.

**Control.** A :class:`Controller` is the deployment's control operations with no
MarketData and no process running (``mystic status``, ``increase``, ``decrease``): the
status of a venue's processes, level, ceiling, budget, pause, ban, alerts and audit, and one
level step saved in the store with its audit entry, which every running process applies
within 2 s. Nothing in it prints.

Wiring, for a process with MarketData ``md`` and store ``store`` (Redis optional)::

    figures = lambda: heartbeat_figures(md.stats())
    beats = RedisHeartbeats(redis_url) if redis_url else None
    publisher = HeartbeatPublisher(store, figures, venue=lambda: md.provider.venue,
                                   redis=beats, heartbeat_s=2.0)
    registry = ProcessRegistry(store, beats)
    alerts = AlertEngine.from_settings(store, settings.monitor.alerts,
                                       venue=lambda: md.provider.venue, host=publisher.host,
                                       pid=publisher.pid, interval_s=30.0)
    health = HealthChecker(store, figures, redis=beats, registry=registry,
                           publisher=publisher, alerts=alerts, thresholds=HealthThresholds())
    publisher.start(); health.start()
    ...
    await health.aclose(); await alerts.aclose(); await publisher.aclose()
    if beats: await beats.aclose()

Nothing here raises into the process it watches: a keeper's failure is logged and shown,
never thrown.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mystic_trading._lazy import lazy_exports

if TYPE_CHECKING:  # the names as type checkers see them; loaded on first use below
    from mystic_trading._thresholds import HealthThresholds
    from mystic_trading.monitor._alerts import AlertEngine, alert_rows
    from mystic_trading.monitor._backends import Beat, HeartbeatKeeper, Snapshot, StoreHeartbeats
    from mystic_trading.monitor._checks import Check, HealthReport, Status
    from mystic_trading.monitor._controller import Controller
    from mystic_trading.monitor._figures import heartbeat_figures
    from mystic_trading.monitor._health import HealthChecker, SupportsPing
    from mystic_trading.monitor._optimize import AutoOptimizer
    from mystic_trading.monitor._probes import LoopLag, free_disk_bytes, process_rss_bytes
    from mystic_trading.monitor._publisher import HeartbeatPublisher, PublisherState
    from mystic_trading.monitor._recommend import Recommendation, recommend
    from mystic_trading.monitor._redis_beats import RedisHeartbeats
    from mystic_trading.monitor._registry import Deployment, ProcessRegistry, ProcessStatus
    from mystic_trading.monitor._webhook import AlertSink, AlertWebhook

# Loaded on first use (PEP 562): `mystic status` needs only the Controller, not the health
# checker and publisher, and every import counts against its 1 s start-up.
_LAZY = {
    "AlertEngine": "mystic_trading.monitor._alerts",
    "AlertSink": "mystic_trading.monitor._webhook",
    "AlertWebhook": "mystic_trading.monitor._webhook",
    "AutoOptimizer": "mystic_trading.monitor._optimize",
    "Recommendation": "mystic_trading.monitor._recommend",
    "recommend": "mystic_trading.monitor._recommend",
    "alert_rows": "mystic_trading.monitor._alerts",
    "Beat": "mystic_trading.monitor._backends",
    "Check": "mystic_trading.monitor._checks",
    "Controller": "mystic_trading.monitor._controller",
    "Deployment": "mystic_trading.monitor._registry",
    "free_disk_bytes": "mystic_trading.monitor._probes",
    "HealthChecker": "mystic_trading.monitor._health",
    "HealthReport": "mystic_trading.monitor._checks",
    "HealthThresholds": "mystic_trading._thresholds",
    "heartbeat_figures": "mystic_trading.monitor._figures",
    "HeartbeatKeeper": "mystic_trading.monitor._backends",
    "HeartbeatPublisher": "mystic_trading.monitor._publisher",
    "LoopLag": "mystic_trading.monitor._probes",
    "process_rss_bytes": "mystic_trading.monitor._probes",
    "ProcessRegistry": "mystic_trading.monitor._registry",
    "ProcessStatus": "mystic_trading.monitor._registry",
    "PublisherState": "mystic_trading.monitor._publisher",
    "RedisHeartbeats": "mystic_trading.monitor._redis_beats",
    "Snapshot": "mystic_trading.monitor._backends",
    "Status": "mystic_trading.monitor._checks",
    "StoreHeartbeats": "mystic_trading.monitor._backends",
    "SupportsPing": "mystic_trading.monitor._health",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


__all__ = [
    "AlertEngine",
    "AlertSink",
    "AlertWebhook",
    "AutoOptimizer",
    "Beat",
    "Check",
    "Controller",
    "Deployment",
    "HealthChecker",
    "HealthReport",
    "HealthThresholds",
    "HeartbeatKeeper",
    "HeartbeatPublisher",
    "LoopLag",
    "ProcessRegistry",
    "ProcessStatus",
    "PublisherState",
    "Recommendation",
    "RedisHeartbeats",
    "Snapshot",
    "Status",
    "StoreHeartbeats",
    "SupportsPing",
    "alert_rows",
    "free_disk_bytes",
    "heartbeat_figures",
    "process_rss_bytes",
    "recommend",
]
