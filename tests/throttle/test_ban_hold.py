"""Bans and pauses that hold (issue 11 item 2, review M4): a ban's record in Redis lives as
long as the ban, on Redis's clock whatever the hosts' clocks say; no busy loop when clocks
differ; a peer's ban stops a request granted ahead or waiting out a pause; bans read as
times; a ban cleared by an operator is lifted by ``refresh_control``."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis

from mystic_trading.config import StoreSettings, ThrottleSettings
from mystic_trading.errors import Banned
from mystic_trading.store import open_store
from mystic_trading.throttle import (
    BucketSpec,
    Budget,
    MemoryControlStore,
    MemoryQuota,
    Quota,
    RedisQuota,
    Throttler,
)

from .conftest import CountingQuota

SETTINGS = ThrottleSettings(level="unlimited", safety_margin=0.1)
# 120 a minute less 10 % less a burst of 10: 98/60 = 1.63 weight/s, so a weight of 1 after
# the burst waits about 0.6 s.
BUDGET = Budget(limit=120, window_s=60.0, max_weight=10)
SPEC = BucketSpec(rate=1.0, burst=10, window_s=60)
HOUR_MS = 3_600_000


def real_ms() -> int:
    return time.time_ns() // 1_000_000


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    """A Redis key prefix no other test uses; its keys are deleted afterwards."""
    name = f"test:{uuid.uuid4().hex}"
    yield name
    with redis.Redis.from_url(redis_url) as client:
        keys = list(client.scan_iter(match=f"{name}:*"))
        if keys:
            client.delete(*keys)


async def expire_what_redis_would_by(redis_url: str, prefix: str, ms: int) -> None:
    """Delete every key under ``prefix`` that Redis would have expired ``ms`` from now (so a
    test sees the state of then without waiting); a key without a TTL fails the test."""
    client = aioredis.Redis.from_url(redis_url)
    try:
        async for key in client.scan_iter(match=f"{prefix}:*"):
            ttl = await client.pttl(key)
            assert ttl != -1, f"{key!r} never expires"
            if 0 <= ttl < ms:
                await client.delete(key)
    finally:
        await client.aclose()


async def admitted(throttler: Throttler, *, deadline_s: float | None = None) -> None:
    """One weight-1 request through ``throttler``, answered 200."""
    async with throttler.slot("/x", 1, deadline_s=deadline_s) as slot:
        slot.record(200, {})


# -- M4.1: the record lives as long as the ban -----------------------------------------------


@pytest.mark.redis
async def test_a_ban_outlives_the_bucket_and_answers_in_flight(redis_url: str, prefix: str) -> None:
    """A two-hour ban is still in Redis when every key Redis would have expired an hour and
    a half later is gone, though answers in flight synced usage (and reserved) after it."""
    quota = RedisQuota(redis_url, prefix=prefix)
    until = real_ms() + 2 * HOUR_MS
    await quota.ban("p", until)
    for _ in range(3):  # answers to requests sent before the 418 arrived
        await quota.sync_usage("p", 95, 100.0, 30.0, SPEC)
        await quota.reserve("p", 1, SPEC, 0.0)
    await expire_what_redis_would_by(redis_url, prefix, 90 * 60_000)
    later = RedisQuota(redis_url, prefix=prefix)
    ban = await later.banned_until("p")
    assert ban is not None and abs(ban - until) < 1_000
    await expire_what_redis_would_by(redis_url, prefix, 2 * HOUR_MS + 1_000)
    assert await later.banned_until("p") is None, "the ban's record outlived the ban"
    await quota.aclose()
    await later.aclose()


@pytest.mark.redis
async def test_a_pause_outlives_the_bucket(redis_url: str, prefix: str) -> None:
    """A 429 pause of ten minutes still holds when every key Redis would have expired after
    five minutes is gone, usage synced meanwhile; its record goes with the pause."""
    quota = RedisQuota(redis_url, prefix=prefix)
    await quota.pause("p", 600.0)
    await quota.sync_usage("p", 95, 100.0, 30.0, SPEC)
    await expire_what_redis_would_by(redis_url, prefix, 300_000)
    grant = await quota.reserve("p", 1, SPEC, 0.0)
    assert not grant.granted
    assert 590 < grant.delay_s <= 600
    await expire_what_redis_would_by(redis_url, prefix, 601_000)
    assert (await quota.reserve("p", 1, SPEC, 0.0)).granted, "the pause outlived itself"
    await quota.aclose()


# -- M4.2: one clock -------------------------------------------------------------------------


@pytest.mark.redis
@pytest.mark.parametrize("skew_ms", [-10 * 60_000, 10 * 60_000])
async def test_a_ban_lasts_its_length_whatever_the_hosts_clock(
    redis_url: str, prefix: str, skew_ms: int
) -> None:
    """A host whose clock is ten minutes off earns a 60 s ban: a host with the right clock
    sees it end 60 s from now on its clock, the skewed host 60 s from now on its own."""

    def skewed() -> int:
        return real_ms() + skew_ms

    off_quota = RedisQuota(redis_url, prefix=prefix, wall_ms=skewed)
    async with (
        Throttler("p", BUDGET, settings=SETTINGS, quota=off_quota, wall_ms=skewed) as off,
        Throttler(
            "p", BUDGET, settings=SETTINGS, quota=RedisQuota(redis_url, prefix=prefix)
        ) as right,
    ):
        async with off.slot("/x", 1) as slot:
            slot.record(418, {"Retry-After": "60"})
        with pytest.raises(Banned) as seen_right:
            await admitted(right)
        with pytest.raises(Banned) as seen_off:
            await admitted(off)
    assert abs(seen_right.value.until - (real_ms() + 60_000)) < 2_000
    assert abs(seen_off.value.until - (skewed() + 60_000)) < 2_000


# -- M4.3: no busy loop ----------------------------------------------------------------------


@pytest.mark.redis
async def test_no_busy_loop_when_the_local_clock_is_ahead_of_the_quotas(
    redis_url: str, prefix: str
) -> None:
    """A throttler whose clock runs five minutes ahead of its quota's meets a ban a peer
    recorded: the caller gets Banned at once after one or two reservations, instead of the
    dispatcher asking Redis again and again until the deadline."""
    peer = RedisQuota(redis_url, prefix=prefix)
    await peer.ban("p", real_ms() + 60_000)
    counting = CountingQuota(RedisQuota(redis_url, prefix=prefix))
    ahead = Throttler(
        "p", BUDGET, settings=SETTINGS, quota=counting, wall_ms=lambda: real_ms() + 300_000
    )
    async with ahead:
        with pytest.raises(Banned):
            await asyncio.wait_for(admitted(ahead, deadline_s=1.0), 10)
        with pytest.raises(Banned):
            await asyncio.wait_for(admitted(ahead, deadline_s=1.0), 10)
    assert counting.reserves <= 2
    await peer.aclose()


# -- a peer's ban after a pause or a grant ahead ---------------------------------------------


@pytest.mark.redis
async def test_a_request_granted_ahead_does_not_go_out_into_a_peers_ban(
    redis_url: str, prefix: str
) -> None:
    """Process A holds a grant and sleeps until its start; process B records a ban in the
    shared quota meanwhile; A's request is refused with Banned instead of being sent."""
    quota = CountingQuota(RedisQuota(redis_url, prefix=prefix), reserve_ahead_s=5.0)
    peer = RedisQuota(redis_url, prefix=prefix)
    sent: list[str] = []
    async with Throttler("p", BUDGET, settings=SETTINGS, quota=quota) as a:
        async with a.slot("/burst", 10) as slot:  # spends the whole burst
            slot.record(200, {})

        async def second() -> None:
            async with a.slot("/x", 1) as slot:
                sent.append("/x")
                slot.record(200, {})

        task = asyncio.create_task(second())
        await quota.granted_ahead.wait()
        await peer.ban("p", real_ms() + 60_000)  # what B's throttler does on its 418
        with pytest.raises(Banned):
            await task
    assert sent == []
    await peer.aclose()


@pytest.mark.redis
async def test_a_pause_ends_into_a_peers_ban_not_a_request(redis_url: str, prefix: str) -> None:
    """Process A is paused by a 429; process B records a ban meanwhile; when A's pause ends
    its waiting caller gets Banned and nothing is sent."""
    peer = RedisQuota(redis_url, prefix=prefix)
    sent: list[str] = []
    async with Throttler(
        "p", BUDGET, settings=SETTINGS, quota=RedisQuota(redis_url, prefix=prefix)
    ) as a:
        async with a.slot("/x", 1) as slot:
            slot.record(429, {"Retry-After": "0.5"})

        async def waiting() -> None:
            async with a.slot("/x", 1) as slot:
                sent.append("/x")
                slot.record(200, {})

        task = asyncio.create_task(waiting())
        await asyncio.sleep(0)
        await peer.ban("p", real_ms() + 60_000)
        with pytest.raises(Banned):
            await task
    assert sent == []
    await peer.aclose()


# -- bans read as times (new-user D8) --------------------------------------------------------


async def test_a_ban_reads_as_a_utc_time_and_what_is_left() -> None:
    """Banned says until when in UTC and how long that is, not epoch ms; ``until`` keeps
    the epoch ms."""
    now = 1_796_171_240_312  # 2026-12-02 00:27:20.312 UTC
    async with Throttler("binance-spot", BUDGET, settings=SETTINGS, wall_ms=lambda: now) as t:
        async with t.slot("/x", 1) as slot:
            slot.record(418, {"Retry-After": str(2 * 3600 - 60)})
        with pytest.raises(Banned) as info:
            await admitted(t)
    until = now + (2 * 3600 - 60) * 1000
    assert info.value.until == until
    assert str(info.value) == (
        "binance-spot has banned this IP until 2026-12-02 02:26:20 UTC (in 1h 59m); "
        "nothing is sent before then"
    )


# -- refresh_control lifts a cleared ban -----------------------------------------------------


@pytest.mark.parametrize("backend", ["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def test_refresh_control_lifts_a_ban_an_operator_cleared(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> None:
    """A 418's ban, recorded in the store (and Redis), is cleared as `mystic throttle ban
    clear` does it; the next refresh_control lifts it, says so, and requests go out again."""
    settings = StoreSettings(url=f"sqlite+aiosqlite:///{tmp_path / 'mystic.db'}")
    quota: Quota
    operator: Quota | None = None
    if backend == "redis":
        url: str = request.getfixturevalue("redis_url")
        name: str = request.getfixturevalue("prefix")
        quota, operator = RedisQuota(url, prefix=name), RedisQuota(url, prefix=name)
    else:
        quota = MemoryQuota()
    async with (
        await open_store(settings) as store,
        Throttler("p", BUDGET, settings=SETTINGS, quota=quota, control=store.control) as t,
    ):
        async with t.slot("/x", 1) as slot:
            slot.record(418, {"Retry-After": "3600"})
        with pytest.raises(Banned):
            await admitted(t)
        assert await store.control.clear_ban("p", actor="cli")
        if operator is not None:
            await operator.clear_ban("p")
            await operator.aclose()
        with caplog.at_level(logging.WARNING, logger="mystic_trading.throttle"):
            await t.refresh_control()
        assert "lifted" in caplog.text
        await admitted(t)
        assert t.stats()["banned_until_ms"] is None


async def test_refresh_control_keeps_a_ban_being_recorded() -> None:
    """A ban this process just earned and is still recording is not lifted by a refresh
    that found it nowhere yet; one the store still holds is kept too."""
    control = MemoryControlStore()
    async with Throttler("p", BUDGET, settings=SETTINGS, control=control) as t:
        async with t.slot("/x", 1) as slot:
            slot.record(418, {"Retry-After": "3600"})
            await t.refresh_control()  # before the slot's exit records the ban
        await t.refresh_control()
        with pytest.raises(Banned):
            await admitted(t)
    assert "p" in control.bans


async def test_refresh_control_keeps_a_ban_the_store_never_held() -> None:
    """A ban in this process's own quota that the store never held (so nobody cleared it)
    survives any number of refreshes."""
    quota = MemoryQuota()
    await quota.ban("p", real_ms() + HOUR_MS)
    async with Throttler("p", BUDGET, settings=SETTINGS, quota=quota) as t:
        for _ in range(2):
            with pytest.raises(Banned):
                await admitted(t)
            await t.refresh_control()
    assert await quota.banned_until("p") is not None


async def test_refresh_control_writes_the_quota_only_for_a_ban_it_lacks() -> None:
    """Called every second, refresh_control hands the store's ban to the quota once, then
    only reads."""
    control = MemoryControlStore()
    await control.save_ban("p", real_ms() + HOUR_MS, "HTTP 418 on /x")
    quota = CountingQuota(MemoryQuota())
    async with Throttler("p", BUDGET, settings=SETTINGS, quota=quota, control=control) as t:
        for _ in range(5):
            await t.refresh_control()
        with pytest.raises(Banned):
            await admitted(t)
    assert quota.bans == 1
