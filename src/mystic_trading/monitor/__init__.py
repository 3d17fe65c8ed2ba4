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
    health = HealthChecker(store, figures, redis=beats, registry=registry,
                           publisher=publisher, thresholds=HealthThresholds())
    publisher.start(); health.start()
    ...
    await health.aclose(); await publisher.aclose()
    if beats: await beats.aclose()

Nothing here raises into the process it watches: a keeper's failure is logged and shown,
never thrown.
"""

from mystic_trading._thresholds import HealthThresholds
from mystic_trading.monitor._backends import Beat, HeartbeatKeeper, Snapshot, StoreHeartbeats
from mystic_trading.monitor._checks import Check, HealthReport, Status
from mystic_trading.monitor._controller import Controller
from mystic_trading.monitor._figures import heartbeat_figures
from mystic_trading.monitor._health import HealthChecker, SupportsPing
from mystic_trading.monitor._probes import LoopLag, free_disk_bytes, process_rss_bytes
from mystic_trading.monitor._publisher import HeartbeatPublisher, PublisherState
from mystic_trading.monitor._redis_beats import RedisHeartbeats
from mystic_trading.monitor._registry import Deployment, ProcessRegistry, ProcessStatus

__all__ = [
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
    "RedisHeartbeats",
    "Snapshot",
    "Status",
    "StoreHeartbeats",
    "SupportsPing",
    "free_disk_bytes",
    "heartbeat_figures",
    "process_rss_bytes",
]
