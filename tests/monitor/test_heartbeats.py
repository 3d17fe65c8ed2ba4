"""Heartbeats end to end: publishers beat, the registry sees every process alive, one that
stops beating is gone after three of its intervals, one that closes is gone at once; in the
store (both backends, the store's clock moved by hand) and in Redis (Redis's clock)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis.asyncio as aioredis

from mystic_trading import __version__
from mystic_trading.monitor import (
    HeartbeatPublisher,
    LoopLag,
    ProcessRegistry,
    RedisHeartbeats,
)
from mystic_trading.store import Store

from .conftest import FakeClock, OpenStore


def publisher(
    store: Store,
    mono: FakeClock,
    *,
    venue: str = "sandbox-s0-test",
    figures: Callable[[], dict[str, Any]] | None = None,
    **kw: Any,
) -> HeartbeatPublisher:
    return HeartbeatPublisher(
        store,
        figures or (lambda: {"requests": 7}),
        venue=venue,
        monotonic=mono,
        memory=lambda: 123_456_789,
        **kw,
    )


async def test_several_publishers_seen_by_the_registry(store: Store, mono: FakeClock) -> None:
    """Three processes of two venues beat once: the registry shows each alive with its
    identity, start time and figures; a venue filter keeps that venue's."""
    a = publisher(store, mono)
    mono.advance(5.0)
    b = publisher(store, mono, pid=99, host="other-host")
    c = publisher(store, mono, venue="binance-spot")
    for p in (a, b, c):
        assert await p.beat_once() is not None
        assert p.state == "store"
    deployment = await ProcessRegistry(store).read()
    assert deployment.read_from == ("store",) and deployment.errors == {}
    assert {s.process_id for s in deployment.alive} == {a.process_id, b.process_id, c.process_id}
    by_id = {s.process_id: s for s in deployment.processes}
    first = by_id[a.process_id].heartbeat
    assert (first.host, first.version, first.interval_ms, first.seq) == (
        a.host,
        __version__,
        2000,
        1,
    )
    assert len(first.process_id) == 32 and first.pid == a.pid
    # Started 5 s before its first beat (uptime on the monotonic clock), dated on the store's.
    assert first.beat_at - first.started_at == 5000
    assert first.figures["requests"] == 7 and first.figures["rss_bytes"] == 123_456_789
    assert first.figures["uptime_s"] == 5.0 and "loop_lag_p99_ms" in first.figures
    assert by_id[b.process_id].heartbeat.host == "other-host"
    assert by_id[b.process_id].heartbeat.pid == 99
    spot = await ProcessRegistry(store).read(venue="binance-spot")
    assert [s.process_id for s in spot.processes] == [c.process_id]


async def test_a_process_that_stops_beating_is_gone_after_three_beats(
    store: Store, mono: FakeClock, wall: FakeClock
) -> None:
    """One process stops beating while another goes on: alive up to three of its intervals
    after its last beat (on the store's clock), gone just after; the other stays alive."""
    silent, steady = publisher(store, mono), publisher(store, mono)
    registry = ProcessRegistry(store)
    await silent.beat_once()
    await steady.beat_once()
    for _ in range(3):
        wall.advance(2.0)
        await steady.beat_once()
        deployment = await registry.read()
        assert {s.process_id for s in deployment.alive} == {silent.process_id, steady.process_id}
    wall.advance(0.001)
    deployment = await registry.read()
    [gone] = deployment.gone
    assert gone.process_id == silent.process_id and not gone.stopped
    assert gone.age_s == pytest.approx(6.001)
    assert [s.process_id for s in deployment.lost] == [silent.process_id]
    assert [s.process_id for s in deployment.alive] == [steady.process_id]


async def test_closing_shows_the_process_stopped_at_once(store: Store, mono: FakeClock) -> None:
    """aclose marks the process stopped: gone without waiting, and not counted lost."""
    p = publisher(store, mono)
    await p.beat_once()
    await p.aclose()
    await p.aclose()  # idempotent
    [status] = (await ProcessRegistry(store).read()).processes
    assert not status.alive and status.stopped and p.state == "stopped"
    assert (await ProcessRegistry(store).read()).lost == ()


async def test_gone_processes_are_kept_for_an_hour_then_pruned(
    store: Store, mono: FakeClock, wall: FakeClock
) -> None:
    """A gone process stays readable (gone) for keep_gone_s, then a later beat prunes it."""
    old, new = publisher(store, mono), publisher(store, mono)
    await old.beat_once()
    wall.advance(3599.0)
    await new.beat_once()
    assert {s.process_id for s in (await ProcessRegistry(store).read()).gone} == {old.process_id}
    wall.advance(2.0)
    await new.beat_once()
    assert [s.process_id for s in (await ProcessRegistry(store).read()).processes] == [
        new.process_id
    ]
    assert [h.process_id for h in await store.heartbeats.recent(0)] == [new.process_id]


async def test_figures_that_fail_do_not_stop_the_beat(store: Store, mono: FakeClock) -> None:
    """A figures callable that raises: the beat is still kept, saying why figures are absent."""

    def broken() -> dict[str, Any]:
        raise RuntimeError("stats exploded")

    p = publisher(store, mono, figures=broken)
    kept = await p.beat_once()
    assert kept is not None and "stats exploded" in kept.figures["figures_error"]
    assert kept.figures["rss_bytes"] == 123_456_789


async def test_start_beats_every_interval_and_aclose_stops(store: Store, mono: FakeClock) -> None:
    """start() beats at once and again after each heartbeat_s (slept on the injected
    clock); aclose() ends the task and marks the process stopped."""
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        mono.advance(seconds)
        await asyncio.sleep(0)

    p = publisher(store, mono, sleep=sleep, loop_lag=LoopLag())
    p.start()
    p.start()  # idempotent
    for _ in range(500):  # waits for the writes (real I/O), not for the heartbeat interval
        if p.beats >= 3:
            break
        await asyncio.sleep(0.01)
    await p.aclose()
    assert p.beats >= 3 and not p.running
    assert all(s == pytest.approx(2.0) for s in slept)
    [status] = (await ProcessRegistry(store).read()).processes
    # The beat aclose cancelled mid-write may or may not have committed.
    assert p.last is not None and p.last.seq <= status.heartbeat.seq <= p.seq
    assert status.stopped


# -- Redis ----------------------------------------------------------------------------------


@pytest.mark.redis
async def test_redis_publishers_are_dated_on_redis_clock(
    store: Store, mono: FakeClock, redis_beats: RedisHeartbeats
) -> None:
    """Beats go to Redis when it is configured, dated by Redis's TIME (not the store's
    clock, which the test holds in 2023); the registry reads them from Redis."""
    a = publisher(store, mono, redis=redis_beats)
    b = publisher(store, mono, redis=redis_beats)
    for p in (a, b):
        kept = await p.beat_once()
        assert kept is not None and p.state == "redis"
        assert abs(kept.beat_at - time.time() * 1000) < 60_000
    deployment = await ProcessRegistry(store, redis_beats).read()
    assert deployment.read_from == ("redis", "store")
    assert {(s.process_id, s.keeper, s.alive) for s in deployment.processes} == {
        (a.process_id, "redis", True),
        (b.process_id, "redis", True),
    }
    assert await store.heartbeats.recent(0) == []
    await a.aclose()
    statuses = {
        s.process_id: s for s in (await ProcessRegistry(store, redis_beats).read()).processes
    }
    assert statuses[a.process_id].stopped and not statuses[a.process_id].alive
    assert statuses[b.process_id].alive


@pytest.mark.redis
async def test_redis_process_gone_after_three_beats_on_redis_clock(
    store: Store, redis_url: str
) -> None:
    """With 50 ms heartbeats in Redis, a process that stops beating is alive while its
    last beat is within 150 ms of Redis's TIME and gone after, the other staying alive:
    judged from the stored time, not from a key expiring."""
    from .conftest import delete_prefix

    prefix = f"test:monitor:gone:{time.time_ns()}"
    beats = RedisHeartbeats(redis_url, prefix=prefix)
    try:
        silent = HeartbeatPublisher(store, dict, venue="v", redis=beats, heartbeat_s=0.05)
        steady = HeartbeatPublisher(store, dict, venue="v", redis=beats, heartbeat_s=0.05)
        await silent.beat_once()
        registry = ProcessRegistry(store, beats)
        seen_alive = seen_gone = False
        deadline = time.monotonic() + 5.0
        while not seen_gone and time.monotonic() < deadline:
            await steady.beat_once()
            by_id = {s.process_id: s for s in (await registry.read()).processes}
            state = by_id[silent.process_id]
            assert state.alive == (state.age_s <= 0.150)
            assert by_id[steady.process_id].alive
            seen_alive |= state.alive
            seen_gone |= not state.alive
            await asyncio.sleep(0.02)
        assert seen_alive and seen_gone
        # The record outlives the gone verdict (an hour), so status can still show it.
        client = aioredis.Redis.from_url(redis_url)
        ttl = await client.pttl(beats.process_key(silent.process_id))
        await client.aclose()
        assert 3_000_000 < ttl <= 3_600_000
    finally:
        await beats.aclose()
        await delete_prefix(redis_url, prefix)


@pytest.mark.redis
async def test_redis_stopped_mid_run_beats_move_to_the_store_and_back(
    make_store: OpenStore, mono: FakeClock, own_redis: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis killed: the next beat goes to the store (one log line) and the registry still
    shows the process alive, from the store, naming Redis as unread; Redis back: the next
    beat goes to Redis again (one log line) and the registry reads it there."""
    store = await make_store()
    beats = RedisHeartbeats(own_redis.url)
    try:
        p = publisher(store, mono, redis=beats)
        other = publisher(store, mono, redis=beats)
        registry = ProcessRegistry(store, beats)
        await p.beat_once()
        await other.beat_once()
        assert p.state == "redis"
        own_redis.stop()
        with caplog.at_level("WARNING", logger="mystic_trading.monitor"):
            assert await p.beat_once() is not None
            assert await p.beat_once() is not None
        assert p.state == "store" and p.fallbacks == 1
        assert caplog.text.count("beating to the store until it answers") == 1
        down = await registry.read()
        assert down.read_from == ("store",) and "redis" in down.errors
        [status] = down.processes  # the other process did not beat since: not in the store
        assert status.process_id == p.process_id and status.alive and status.keeper == "store"

        own_redis.start()
        caplog.clear()
        with caplog.at_level("WARNING", logger="mystic_trading.monitor"):
            assert await p.beat_once() is not None
        assert p.state == "redis"
        assert "answers again" in caplog.text
        back = await registry.read()
        assert back.read_from == ("redis", "store")
        [status] = back.processes
        assert status.alive and status.keeper == "redis" and status.heartbeat.seq == p.seq
    finally:
        await beats.aclose()
