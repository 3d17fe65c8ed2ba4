"""Health checks: each check's ok / warning / critical against its thresholds, over a real
store (both backends) and Redis, with the clocks and the latency timer injected."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from mystic_trading._thresholds import CHECK_NAMES
from mystic_trading.monitor import (
    HealthChecker,
    HealthThresholds,
    HeartbeatPublisher,
    LoopLag,
    ProcessRegistry,
    RedisHeartbeats,
)
from mystic_trading.store import Store

from .conftest import FakeClock, OpenStore, StepTimer

MIB = 1024 * 1024

# Figures of a healthy process (the keys of heartbeat_figures).
HEALTHY: dict[str, Any] = {
    "requests": 1000,
    "hits": {"memory": 900, "redis": 50, "store": 20, "upstream": 30},
    "upstream_successes": 500,
    "upstream_failures": 0,
    "n429": 0,
    "n418": 0,
    "upstream_latency_p95_ms": 80.0,
    "paused_for_s": 0.0,
    "banned_until_ms": None,
    "clock_synced": True,
    "clock_offset_ms": 12.0,
    "clock_error_ms": 8.0,
    "ceiling_utilisation_pct": 40.0,
    "queue_depth": 0,
    "queue_wait_p95_ms": 3.0,
    "memory_evictions": 0,
    "redis_available": True,
    "candle_backlog_rows": 0,
}


class Figures:
    """What the process reports: ``now``, replaced by tests between rounds."""

    def __init__(self, **changes: Any) -> None:
        self.now: dict[str, Any] = {**HEALTHY, **changes}

    def __call__(self) -> dict[str, Any]:
        return self.now

    def grow(self, **changes: Any) -> None:
        self.now = {**self.now, **changes}


def make_checker(
    store: Store,
    figures: Callable[[], dict[str, Any]],
    wall: FakeClock,
    mono: FakeClock,
    *,
    step_s: float = 0.001,
    **kw: Any,
) -> HealthChecker:
    kw.setdefault("memory", lambda: 100 * MIB)
    return HealthChecker(store, figures, wall=wall, clock=mono, timer=StepTimer(step_s), **kw)


async def test_a_healthy_process_is_ok_everywhere(
    store: Store, wall: FakeClock, mono: FakeClock
) -> None:
    """Healthy figures on a working store: every check ok, each with a one-line reason; the
    report is dated on the wall clock and timed."""
    report = await make_checker(store, Figures(), wall, mono).run()
    assert report.overall == "ok", [c for c in report.checks if c.status != "ok"]
    assert report.at == int(wall.now * 1000) and report.duration_ms > 0
    names = [c.name for c in report.checks]
    expected = {
        "upstream_success", "upstream_latency", "ban", "pause", "clock_offset", "clock_error",
        "throttle_utilisation", "queue_wait", "cache_hit_memory", "cache_hit_redis",
        "cache_hit_store", "cache_evictions", "candle_backlog", "store_round_trip",
        "store_pool", "loop_lag", "memory", "rate_limited",
    }  # fmt: skip
    assert expected <= set(names) and len(names) == len(set(names))
    assert set(names) <= set(CHECK_NAMES)  # alert rules are named after these
    assert ("disk_free" in names) == (store.backend == "sqlite")
    for check in report.checks:
        assert check.reason and "\n" not in check.reason
    assert report.check("memory") is not None and report.check("nothing") is None
    assert report.as_dict()["checks"][0]["name"] == report.checks[0].name


# -- judged from one round's figures -------------------------------------------------------

ONE_ROUND = [
    ("upstream_latency", {"upstream_latency_p95_ms": 1500.0}, "warning"),
    ("upstream_latency", {"upstream_latency_p95_ms": 5000.0}, "critical"),
    ("upstream_latency", {"upstream_latency_p95_ms": None}, "ok"),
    ("ban", {"banned_until_ms": (1_700_000_000 + 30) * 1000}, "critical"),
    ("ban", {"banned_until_ms": (1_700_000_000 - 30) * 1000}, "ok"),
    ("pause", {"paused_for_s": 5.0}, "warning"),
    ("pause", {"paused_for_s": 120.0}, "critical"),
    ("clock_offset", {"clock_offset_ms": -1500.0}, "warning"),
    ("clock_offset", {"clock_offset_ms": 6000.0}, "critical"),
    ("clock_offset", {"clock_synced": False, "clock_offset_ms": 9e9}, "ok"),
    ("clock_error", {"clock_error_ms": 600.0}, "warning"),
    ("clock_error", {"clock_error_ms": 2500.0}, "critical"),
    ("throttle_utilisation", {"ceiling_utilisation_pct": 95.0}, "warning"),
    ("throttle_utilisation", {"ceiling_utilisation_pct": 100.0}, "critical"),
    ("queue_wait", {"queue_wait_p95_ms": 300.0}, "warning"),
    ("queue_wait", {"queue_wait_p95_ms": 2500.0, "queue_depth": 40}, "critical"),
    ("candle_backlog", {"candle_backlog_rows": 60_000}, "warning"),
    ("candle_backlog", {"candle_backlog_rows": 250_000}, "critical"),
    ("candle_backlog", {"candle_backlog_rows": None}, "ok"),
]


@pytest.mark.parametrize(("name", "changes", "status"), ONE_ROUND)
async def test_figure_checks_against_default_thresholds(
    store: Store, wall: FakeClock, mono: FakeClock, name: str, changes: dict[str, Any], status: str
) -> None:
    """Each figure beyond its warning threshold warns, beyond its critical is critical, a
    figure not reported is ok and says so; the check carries its value and thresholds."""
    report = await make_checker(store, Figures(**changes), wall, mono).run()
    check = report.check(name)
    assert check is not None and check.status == status, check
    assert report.overall == status
    if name not in ("ban",) and check.value is not None:
        assert check.warning is not None and check.critical is not None
    if status == "ok" and check.value is None:
        assert ":" in check.reason  # "...: not measured yet" and the like


TWO_ROUNDS = [
    # upstream answers since the last round: 100 ok of 100, 98 of 100, 90 of 100, 5 of 10
    ("upstream_success", {"upstream_successes": 600}, "ok"),
    ("upstream_success", {"upstream_successes": 598, "upstream_failures": 2}, "warning"),
    ("upstream_success", {"upstream_successes": 590, "upstream_failures": 10, "n429": 4},
     "critical"),
    ("upstream_success", {"upstream_successes": 505, "upstream_failures": 5}, "ok"),
    # requests since the last round: 100, of which memory hits 60, 30, 5
    ("cache_hit_memory", {"requests": 1100, "hits": {"memory": 960}}, "ok"),
    ("cache_hit_memory", {"requests": 1100, "hits": {"memory": 930}}, "warning"),
    ("cache_hit_memory", {"requests": 1100, "hits": {"memory": 905}}, "critical"),
    # 429 answers since the last round: none, one (someone else spends the budget), three
    ("rate_limited", {"n429": 0}, "ok"),
    ("rate_limited", {"n429": 1}, "warning"),
    ("rate_limited", {"n429": 3, "n418": 1}, "critical"),
    # evictions over the 10 s between rounds: 10/s, 100/s, 1,000/s
    ("cache_evictions", {"memory_evictions": 100}, "ok"),
    ("cache_evictions", {"memory_evictions": 1000}, "warning"),
    ("cache_evictions", {"memory_evictions": 10_000}, "critical"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "changes", "status"), TWO_ROUNDS)
async def test_counter_checks_judge_the_interval_since_the_last_round(
    store: Store, wall: FakeClock, mono: FakeClock, name: str, changes: dict[str, Any], status: str
) -> None:
    """Success rate, hit rate and evictions are judged on what happened since the previous
    round (ten seconds on the injected clock), not on the process's lifetime."""
    figures = Figures()
    checker = make_checker(store, figures, wall, mono)
    first = await checker.run()
    assert first.check(name) is not None and first.check(name).status == "ok"  # type: ignore[union-attr]
    mono.advance(10.0)
    figures.grow(**changes)
    check = (await checker.run()).check(name)
    assert check is not None and check.status == status, check
    if name == "upstream_success" and "n429" in changes:
        assert "4 × 429" in check.reason
    if name == "rate_limited":
        assert check.value == changes["n429"]
        assert ("1 × 418" in check.reason) == ("n418" in changes)
    if "too few" in check.reason:
        assert status == "ok"


async def test_failing_figures_are_a_critical_check_and_the_rest_still_runs(
    store: Store, wall: FakeClock, mono: FakeClock
) -> None:
    """A figures callable that raises: a critical `figures` check; store checks still run."""

    def broken() -> dict[str, Any]:
        raise KeyError("stats")

    report = await make_checker(store, broken, wall, mono).run()
    assert report.overall == "critical"
    figures = report.check("figures")
    assert figures is not None and "KeyError" in figures.reason
    assert report.check("store_round_trip") is not None


# -- judged from live calls and probes -----------------------------------------------------


@pytest.mark.parametrize(
    ("step_s", "status"), [(0.001, "ok"), (0.06, "warning"), (0.6, "critical")]
)
async def test_store_round_trip(
    store: Store, wall: FakeClock, mono: FakeClock, step_s: float, status: str
) -> None:
    """The timed one-row read: 1 ms ok, 60 ms warning, 600 ms critical (50 / 500 ms)."""
    check = (await make_checker(store, Figures(), wall, mono, step_s=step_s).run()).check(
        "store_round_trip"
    )
    assert check is not None and check.status == status
    assert check.value == pytest.approx(step_s * 1000) and check.unit == "ms"


async def test_store_pool_waits_and_timeouts(
    make_store: OpenStore, wall: FakeClock, mono: FakeClock
) -> None:
    """With the one write connection held, a write waits: a warning for that round, ok the
    next; a wait that times out is critical."""
    store = await make_store(pool_size=1, pool_timeout_s=0.3)
    checker = make_checker(store, Figures(), wall, mono)
    assert (await checker.run()).check("store_pool").status == "ok"  # type: ignore[union-attr]
    held = await store.engine.connect()
    publisher = HeartbeatPublisher(store, dict, venue="v", monotonic=mono)
    write = asyncio.create_task(publisher.beat_once())
    for _ in range(100):
        if store.pool_stats().waits:
            break
        await asyncio.sleep(0.01)
    await held.close()
    assert await write is not None
    check = (await checker.run()).check("store_pool")
    assert check is not None and check.status == "warning" and check.value == 1.0
    assert (await checker.run()).check("store_pool").status == "ok"  # type: ignore[union-attr]
    held = await store.engine.connect()
    assert await publisher.beat_once() is None  # timed out: the beat is lost, not raised
    await held.close()
    check = (await checker.run()).check("store_pool")
    assert check is not None and check.status == "critical" and "timeout" in check.reason


async def test_disk_free_beside_a_sqlite_store(
    store: Store, wall: FakeClock, mono: FakeClock
) -> None:
    """Free disk against thresholds set around the real free space: ok, warning, critical;
    a PostgreSQL store has no such check."""
    first = await make_checker(store, Figures(), wall, mono).run()
    if store.backend != "sqlite":
        assert first.check("disk_free") is None
        return
    check = first.check("disk_free")
    assert check is not None and check.value is not None and check.unit == "MiB"
    free = check.value
    cases = [
        (HealthThresholds(disk_free_warning_mib=free / 2, disk_free_critical_mib=0), "ok"),
        (HealthThresholds(disk_free_warning_mib=free * 2, disk_free_critical_mib=0), "warning"),
        (HealthThresholds(disk_free_warning_mib=free * 4, disk_free_critical_mib=free * 2),
         "critical"),
    ]  # fmt: skip
    for thresholds, status in cases:
        report = await make_checker(store, Figures(), wall, mono, thresholds=thresholds).run()
        assert report.check("disk_free").status == status  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("rss_mib", "status"), [(100, "ok"), (2048, "warning"), (5000, "critical")]
)
async def test_process_memory(
    store: Store, wall: FakeClock, mono: FakeClock, rss_mib: int, status: str
) -> None:
    """Resident memory against 1,024 / 4,096 MiB."""
    checker = make_checker(store, Figures(), wall, mono, memory=lambda: rss_mib * MIB)
    check = (await checker.run()).check("memory")
    assert check is not None and check.status == status and check.value == rss_mib


@pytest.mark.parametrize(("lag_ms", "status"), [(50, "ok"), (150, "warning"), (1500, "critical")])
async def test_event_loop_lag_p99(
    store: Store, wall: FakeClock, mono: FakeClock, lag_ms: float, status: str
) -> None:
    """The loop-lag p99 over the round's interval against 100 / 1,000 ms; samples older
    than the interval do not count."""
    lag = LoopLag(clock=mono)
    lag.record(mono.now - 60.0, 99.0)  # a minute ago: outside the 30 s interval
    for i in range(100):
        lag.record(mono.now - i * 0.1, (lag_ms if i == 0 else 1.0) / 1000)
    check = (await make_checker(store, Figures(), wall, mono, loop_lag=lag).run()).check("loop_lag")
    assert check is not None and check.status == status
    assert check.value == pytest.approx(lag_ms)


async def test_processes_lost_are_counted(store: Store, wall: FakeClock, mono: FakeClock) -> None:
    """Processes that stopped beating are counted lost; one that closed cleanly is not."""
    registry = ProcessRegistry(store)
    checker = make_checker(store, Figures(), wall, mono, registry=registry)
    publishers = [HeartbeatPublisher(store, dict, venue="v", monotonic=mono) for _ in range(5)]
    for p in publishers:
        await p.beat_once()
    assert (await checker.run()).check("processes").status == "ok"  # type: ignore[union-attr]
    await publishers[4].aclose()
    wall.advance(7.0)
    await publishers[0].beat_once()
    await publishers[1].beat_once()
    check = (await checker.run()).check("processes")
    assert check is not None and check.status == "warning" and check.value == 2.0
    assert "2 alive, 2 lost, 1 stopped" in check.reason


async def test_processes_lost_thresholds(store: Store, wall: FakeClock, mono: FakeClock) -> None:
    """One lost process is a warning, three are critical (more than 0 / more than 2)."""
    registry = ProcessRegistry(store)
    checker = make_checker(store, Figures(), wall, mono, registry=registry)
    steady = HeartbeatPublisher(store, dict, venue="v", monotonic=mono)
    for expected_lost, status in ((1, "warning"), (3, "critical")):
        lost = [
            HeartbeatPublisher(store, dict, venue="v", monotonic=mono) for _ in range(expected_lost)
        ]
        for p in lost:
            await p.beat_once()
        wall.advance(7.0)
        await steady.beat_once()
        check = (await checker.run()).check("processes")
        assert check is not None and check.status == status, check
        assert "lost" in check.reason
        wall.advance(3600.0)  # forgotten: the next case starts clean
        await steady.beat_once()


async def test_own_heartbeat(store: Store, wall: FakeClock, mono: FakeClock) -> None:
    """This process's last kept beat: fresh ok, older than two intervals a warning, older
    than three (others see it gone) critical."""
    publisher = HeartbeatPublisher(store, dict, venue="v", monotonic=mono)
    checker = make_checker(store, Figures(), wall, mono, publisher=publisher)
    assert (await checker.run()).check("heartbeat").status == "ok"  # type: ignore[union-attr]
    await publisher.beat_once()
    for advance, status in ((1.0, "ok"), (4.0, "warning"), (2.0, "critical")):
        mono.advance(advance)
        check = (await checker.run()).check("heartbeat")
        assert check is not None and check.status == status, check


async def test_heartbeats_carry_the_last_round_in_brief(
    store: Store, wall: FakeClock, mono: FakeClock
) -> None:
    """A publisher watched by a checker beats `health`: None before the first round, then
    the round's overall status, time and each check's status, value, unit and reason."""
    publisher = HeartbeatPublisher(store, dict, venue="v", monotonic=mono)
    checker = make_checker(store, Figures(queue_wait_p95_ms=300.0), wall, mono, publisher=publisher)
    before = await publisher.beat_once()
    assert before is not None and before.figures["health"] is None
    report = await checker.run()
    kept = await publisher.beat_once()
    assert kept is not None
    health = kept.figures["health"]
    assert health["overall"] == report.overall == "warning" and health["at"] == report.at
    assert set(health["checks"]) == {c.name for c in report.checks}
    queue = report.check("queue_wait")
    assert queue is not None
    assert health["checks"]["queue_wait"] == {
        "status": "warning", "value": queue.value, "unit": "ms", "reason": queue.reason
    }  # fmt: skip
    [read] = await store.heartbeats.recent(0)
    assert read.figures["health"] == health  # as another process reads it


@pytest.mark.redis
async def test_redis_latency(
    store: Store, wall: FakeClock, mono: FakeClock, redis_beats: RedisHeartbeats
) -> None:
    """The timed PING: 1 ms ok, 60 ms warning, 600 ms critical (20 / 250 ms)."""
    for step_s, status in ((0.001, "ok"), (0.06, "warning"), (0.6, "critical")):
        checker = make_checker(store, Figures(), wall, mono, step_s=step_s, redis=redis_beats)
        check = (await checker.run()).check("redis")
        assert check is not None and check.status == status


@pytest.mark.redis
async def test_redis_stopped_is_critical_and_heartbeats_warn(
    make_store: OpenStore, wall: FakeClock, mono: FakeClock, own_redis: Any
) -> None:
    """Redis killed: the redis check is critical with the reason, the heartbeat check warns
    (beating to the store); Redis back: both ok again."""
    store = await make_store()
    beats = RedisHeartbeats(own_redis.url)
    try:
        publisher = HeartbeatPublisher(store, dict, venue="v", redis=beats, monotonic=mono)
        checker = make_checker(
            store, Figures(), wall, mono, redis=beats, publisher=publisher,
            registry=ProcessRegistry(store, beats),
        )  # fmt: skip
        await publisher.beat_once()
        report = await checker.run()
        assert report.check("redis").status == "ok"  # type: ignore[union-attr]
        assert report.check("heartbeat").status == "ok"  # type: ignore[union-attr]
        own_redis.stop()
        await publisher.beat_once()
        report = await checker.run()
        redis = report.check("redis")
        assert redis is not None and redis.status == "critical" and "unreachable" in redis.reason
        heartbeat = report.check("heartbeat")
        assert heartbeat is not None and heartbeat.status == "warning"
        assert "Redis failed" in heartbeat.reason
        processes = report.check("processes")
        assert processes is not None and "unread: redis" in processes.reason
        own_redis.start()
        await publisher.beat_once()
        report = await checker.run()
        assert report.check("redis").status == "ok"  # type: ignore[union-attr]
        assert report.check("heartbeat").status == "ok"  # type: ignore[union-attr]
    finally:
        await beats.aclose()


async def test_periodic_rounds(store: Store, wall: FakeClock, mono: FakeClock) -> None:
    """start() runs a round at once and one every interval_s (slept on the injected
    clock), keeping the latest; aclose() stops them."""
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        mono.advance(seconds)
        await asyncio.sleep(0)

    checker = make_checker(store, Figures(), wall, mono, sleep=sleep, interval_s=30.0)
    checker.start()
    for _ in range(500):
        if checker.rounds >= 3:
            break
        await asyncio.sleep(0.01)
    await checker.aclose()
    await checker.aclose()
    assert checker.rounds >= 3 and checker.latest is not None and not checker.running
    assert set(slept) == {30.0}
