"""The Controller on a real store (SQLite and PostgreSQL) and a real Redis: status shows the
processes that beat (real publishers, clocks moved by hand), their figures summed, the
level, its ceiling and the budget, a pause, a ban as a UTC time, open alerts and the audit;
increase and decrease step the stored level with an audit entry that a process following
the control log applies, and refuse past either end with nothing changed."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest

from mystic_trading.config import Settings, ThrottleSettings
from mystic_trading.errors import ConfigError, StoreError
from mystic_trading.marketdata.control_watch import ControlWatch
from mystic_trading.monitor import (
    Controller,
    HeartbeatPublisher,
    RedisHeartbeats,
    heartbeat_figures,
)
from mystic_trading.monitor._optimize import AutoOptimizer
from mystic_trading.store import Store
from mystic_trading.store._target import parse_target
from mystic_trading.throttle import Budget, Level, RedisQuota, Throttler, burst_for

from .conftest import WALL_START, FakeClock, delete_prefix

VENUE = "sandbox-s0-ctl"


def settings(store_url: str, **extra: Any) -> Settings:
    """Settings of a deployment on ``store_url``; a SQLite store's directory exists, as it
    does once any process of the deployment ran (the Controller never creates one)."""
    target = parse_target(store_url)
    if target.sqlite_path is not None:
        target.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
    return Settings(store={"url": store_url}, provider={"venue": VENUE}, **extra)


def publisher(
    store: Store, mono: FakeClock, figures: dict[str, Any], *, venue: str = VENUE, **kw: Any
) -> HeartbeatPublisher:
    return HeartbeatPublisher(
        store, lambda: figures, venue=venue, monotonic=mono, memory=lambda: 1 << 20, **kw
    )


def busy(requests: int, weight_per_s: float, **more: Any) -> dict[str, Any]:
    return {
        "requests": requests,
        "upstream_calls": requests // 10,
        "upstream_weight": requests // 5,
        "weight_per_s": weight_per_s,
        "n429": 1,
        "n418": 0,
        "level": "moderate",
        **more,
    }


async def test_status_of_an_empty_store(store_url: str, wall: FakeClock) -> None:
    """No process ever ran: the level is the setting's with its ceiling on the fallback
    budget, no pause, ban, alert or audit entry; reading writes nothing."""
    async with Controller.open(settings(store_url), clock=wall) as controller:
        data = await controller.status()
        assert await controller.store.control.head() == 0
    assert (data["venue"], data["venue_source"]) == (VENUE, "setting provider.venue")
    assert data["level"]["name"] == "moderate"
    assert data["level"]["source"] == "setting throttle.level"
    # Moderate is 20 req/s of weight 2: 40 weight/s, under the safe rate of 6000/min.
    assert data["level"]["ceiling_weight_per_min"] == pytest.approx(2400)
    assert data["limit"]["weight"] == 6000 and data["limit"]["window_s"] == 60
    # 6000 less the 10 % margin, per minute.
    assert data["limit"]["safe_weight_per_min"] == pytest.approx(5400)
    assert (data["processes"], data["alive"], data["gone"]) == ([], 0, 0)
    assert data["weight_used"]["weight_per_min"] == 0
    assert data["pause"]["paused"] is False and data["ban"]["banned"] is False
    assert data["alerts"] == [] and data["audit"] == []
    assert data["redis"] == {"configured": False, "available": None, "error": None}
    assert data["now"] == "2023-11-14 22:13:20 UTC"
    json.dumps(data)  # plain data throughout


async def test_processes_alive_then_one_gone_after_three_beats(
    store_url: str, store: Store, wall: FakeClock, mono: FakeClock
) -> None:
    """Three processes beat into the store: status shows each alive with its figures and
    sums them; one stops beating and is gone just after three of its intervals (the store's
    clock moved by hand), leaving the totals; another venue's process is only counted."""
    a = publisher(store, mono, busy(100, 5.0), host="host-a", pid=11)
    b = publisher(store, mono, busy(200, 7.5), host="host-b", pid=22)
    c = publisher(store, mono, busy(300, 2.5), host="host-c", pid=33)
    other = publisher(store, mono, busy(1, 1.0), venue="binance-spot")
    for p in (a, b, c, other):
        await p.beat_once()
    async with Controller.open(settings(store_url), clock=wall) as controller:
        data = await controller.status()
        assert (data["alive"], data["gone"]) == (3, 0)
        by_pid = {p["pid"]: p for p in data["processes"]}
        assert set(by_pid) == {11, 22, 33}
        first = by_pid[11]
        assert first["id"] == a.process_id and first["host"] == "host-a"
        assert (first["state"], first["keeper"], first["age_s"]) == ("alive", "store", 0)
        assert (first["requests"], first["upstream_calls"], first["upstream_weight"]) == (
            100,
            10,
            20,
        )
        assert first["figures"]["rss_bytes"] == 1 << 20
        assert data["totals"]["requests"] == 600 and data["totals"]["n429"] == 3
        assert data["weight_used"]["weight_per_min"] == pytest.approx(15 * 60)
        assert data["weight_used"]["of_ceiling_pct"] == pytest.approx(100 * 15 / 40)
        assert data["weight_used"]["of_limit_pct"] == pytest.approx(100 * 900 / 6000)
        assert data["other_venues"] == {"binance-spot": 1}

        for _ in range(3):
            wall.advance(2.0)
            for p in (a, b):
                await p.beat_once()
            assert (await controller.status())["alive"] == 3
        wall.advance(0.001)
        data = await controller.status()
        assert (data["alive"], data["gone"]) == (2, 1)
        [gone] = [p for p in data["processes"] if not p["alive"]]
        assert (gone["id"], gone["state"]) == (c.process_id, "gone")
        assert gone["age_s"] == pytest.approx(6.001)
        assert data["totals"]["requests"] == 300
        assert data["weight_used"]["weight_per_min"] == pytest.approx(12.5 * 60)

        await a.aclose()
        stopped = {p["id"]: p["state"] for p in (await controller.status())["processes"]}
        assert stopped[a.process_id] == "stopped"


async def test_a_pause_is_shown_with_its_end_and_what_is_left(
    store_url: str, store: Store, wall: FakeClock, mono: FakeClock
) -> None:
    """A process reporting a 30 s pause: status shows it ending 30 s after that beat, as a
    UTC time, with what is left as the clock moves; none once it is over."""
    p = publisher(store, mono, busy(1, 0.0, paused_for_s=30.0))
    await p.beat_once()
    async with Controller.open(settings(store_url), clock=wall) as controller:
        wall.advance(4.0)
        pause = (await controller.status())["pause"]
        assert pause["paused"] is True
        assert pause["until"] == "2023-11-14 22:13:50 UTC"
        assert pause["remaining_s"] == pytest.approx(26.0)
        wall.advance(1.0)
        await p.beat_once()  # it still reports the 30 s it was told at first
        wall.advance(1.0)
        assert (await controller.status())["pause"]["remaining_s"] == pytest.approx(29.0)


async def test_increase_and_decrease_step_the_stored_level_with_audit(
    store_url: str, store: Store, wall: FakeClock
) -> None:
    """Each step saves the next level with an audit entry (who, why, from, to) and answers
    from, to and the new ceiling per minute; a process following the control log applies
    it, and its throttler's ceiling is the one the controller announced."""
    budget = Budget(limit=6000, window_s=60.0, max_weight=burst_for(6000))
    throttler = Throttler(VENUE, budget, settings=ThrottleSettings(), control=store.control)
    await throttler.start()
    watch = ControlWatch(
        store.control, venue=lambda: VENUE, refresh=throttler.refresh_control, drop=lambda _: 0
    )
    await watch.start()
    try:
        async with Controller.open(settings(store_url), clock=wall) as controller:
            up = await controller.increase(reason="quiet market", actor="ops")
            assert (up["from"], up["to"], up["changed"]) == ("moderate", "aggressive", True)
            assert up["from_ceiling_weight_per_min"] == pytest.approx(2400)
            assert up["ceiling_weight_per_min"] == pytest.approx(5400)
            assert up["applied_within_s"] == 2.0 and "within 2 s" in up["message"]
            assert await watch.poll() == 1
            assert throttler.level is Level.AGGRESSIVE
            assert throttler.ceiling * 60 == pytest.approx(up["ceiling_weight_per_min"])

            down = await controller.decrease(actor="ops")
            assert (down["from"], down["to"], down["changed"]) == ("aggressive", "moderate", True)
            assert await watch.poll() == 1 and throttler.level is Level.MODERATE
            assert throttler.ceiling * 60 == pytest.approx(down["ceiling_weight_per_min"])

            status = await controller.status()
            assert status["level"]["name"] == "moderate" and status["level"]["source"] == "store"
            assert status["level"]["set_by"] == "ops"
            audit = [(c["from"], c["to"], c["actor"], c["reason"]) for c in status["audit"]]
            assert audit == [
                ("aggressive", "moderate", "ops", "decrease"),
                (None, "aggressive", "ops", "quiet market"),
            ]
    finally:
        await watch.aclose()
        await throttler.aclose()


async def test_past_the_top_and_bottom_is_refused_and_nothing_changes(
    store_url: str, wall: FakeClock
) -> None:
    """At unlimited, increase writes nothing and says so; at conservative, decrease the
    same; an unknown level is a ConfigError naming the accepted ones."""
    async with Controller.open(settings(store_url), clock=wall) as controller:
        await controller.set_level("unlimited", actor="ops")
        head = await controller.store.control.head()
        refused = await controller.increase(actor="ops")
        assert (refused["from"], refused["to"], refused["changed"]) == (
            "unlimited",
            "unlimited",
            False,
        )
        assert refused["message"] == (
            f"{VENUE}: already at the highest level (unlimited); nothing changed"
        )
        assert refused["applied_within_s"] is None
        assert await controller.store.control.head() == head

        await controller.set_level(Level.CONSERVATIVE, actor="ops")
        head = await controller.store.control.head()
        refused = await controller.decrease(actor="ops")
        assert refused["changed"] is False and "lowest level (conservative)" in refused["message"]
        assert refused["ceiling_weight_per_min"] == pytest.approx(600)
        same = await controller.set_level("CONSERVATIVE", actor="ops")
        assert same["changed"] is False
        with pytest.raises(ConfigError, match="turbo") as caught:
            await controller.set_level("turbo", actor="ops")
        assert "conservative" in str(caught.value) and caught.value.setting == "level"
        assert await controller.store.control.head() == head
        assert (await controller.status())["level"]["name"] == "conservative"


async def test_ceilings_follow_the_stored_exchange_budget(
    store_url: str, store: Store, wall: FakeClock
) -> None:
    """With exchangeInfo kept for the venue, its REQUEST_WEIGHT limit is the budget: 1200 a
    minute less 10 % leaves 1,080 a minute, which caps every level."""
    info = {
        "rateLimits": [
            {
                "rateLimitType": "REQUEST_WEIGHT",
                "interval": "MINUTE",
                "intervalNum": 1,
                "limit": 1200,
            }
        ]
    }
    await store.venues.save_info(VENUE, json.dumps(info))
    async with Controller.open(settings(store_url), clock=wall) as controller:
        data = await controller.status()
        assert data["limit"]["weight"] == 1200
        assert data["limit"]["source"] == "exchangeInfo kept in the store"
        assert data["limit"]["info_kept_at"] == "2023-11-14 22:13:20 UTC"
        assert data["level"]["ceiling_weight_per_min"] == pytest.approx(1080)
        ceilings = await controller.ceilings(VENUE)
        assert ceilings[Level.CONSERVATIVE] * 60 == pytest.approx(600)
        assert ceilings[Level.UNLIMITED] * 60 == pytest.approx(1080)


async def test_a_ban_is_shown_as_a_utc_time_until_it_ends(
    store_url: str, store: Store, wall: FakeClock
) -> None:
    """A ban kept in the store: status shows its end as a UTC time, what is left and why;
    once the clock passes its end it is shown as ended, not in force."""
    await store.control.save_ban(VENUE, int(WALL_START * 1000) + 3_600_000, "HTTP 418")
    async with Controller.open(settings(store_url), clock=wall) as controller:
        ban = (await controller.status())["ban"]
        assert ban["banned"] is True and ban["until"] == "2023-11-14 23:13:20 UTC"
        assert ban["remaining_s"] == 3600 and ban["reason"] == "HTTP 418"
        assert (ban["in_store"], ban["in_redis"]) == (True, False)
        wall.advance(3600.0)
        ended = (await controller.status())["ban"]
        assert ended["banned"] is False and ended["until"] == "2023-11-14 23:13:20 UTC"


async def test_open_alerts_are_listed_resolved_ones_not(
    store_url: str, store: Store, wall: FakeClock
) -> None:
    """Status lists the open alerts, newest first, and leaves resolved ones out."""
    first = await store.alerts.add("n429", "warning", "429s: 3 in 5 min", 3, 1)
    await store.alerts.add("ban", "critical", "banned for 1 h", 3600, 0)
    await store.alerts.resolve(first)
    async with Controller.open(settings(store_url), clock=wall) as controller:
        alerts = (await controller.status())["alerts"]
    assert [(a["rule"], a["severity"], a["opened_at_utc"]) for a in alerts] == [
        ("ban", "critical", "2023-11-14 22:13:20 UTC")
    ]


async def test_bad_venue_and_unreachable_store_are_clear_errors(
    store_url: str, wall: FakeClock
) -> None:
    """A --venue that is no venue id is a ConfigError naming it, before anything is
    written; a store that cannot be reached is a StoreError naming its address."""
    async with Controller.open(settings(store_url), clock=wall) as controller:
        with pytest.raises(ConfigError, match="not a venue id") as caught:
            await controller.increase(venue="no such venue!")
        assert caught.value.setting == "venue"
        assert await controller.store.control.head() == 0
    unreachable = Settings(store={"url": "postgresql+asyncpg://postgres@127.0.0.1:1/nowhere"})
    with pytest.raises(StoreError, match=re.escape("127.0.0.1:1/nowhere")):
        async with Controller.open(unreachable, clock=wall):
            pass


# -- Redis ----------------------------------------------------------------------------------


@pytest.mark.redis
async def test_redis_heartbeats_and_shared_ban(
    store_url: str,
    store: Store,
    wall: FakeClock,
    mono: FakeClock,
    redis_url: str,
    redis_beats: RedisHeartbeats,
) -> None:
    """With Redis configured, status reads the processes from Redis (on its clock) and the
    ban from the shared quota, dated as a UTC time; a process that closes is stopped."""
    a = publisher(store, mono, busy(10, 1.0), redis=redis_beats)
    b = publisher(store, mono, busy(20, 2.0), redis=redis_beats)
    for p in (a, b):
        await p.beat_once()
    quota_prefix = f"test:throttle:{uuid.uuid4().hex}"
    quota = RedisQuota(redis_url, prefix=quota_prefix, wall_ms=lambda: int(wall() * 1000))
    until = int(WALL_START * 1000) + 600_000
    await quota.ban(VENUE, until)
    await quota.aclose()
    try:
        async with Controller.open(
            settings(store_url, redis_url=redis_url),
            clock=wall,
            heartbeats_prefix=redis_beats.prefix,
            quota_prefix=quota_prefix,
        ) as controller:
            data = await controller.status()
            assert data["redis"] == {"configured": True, "available": True, "error": None}
            assert data["heartbeats"]["read_from"] == ["redis", "store"]
            assert {(p["id"], p["keeper"], p["state"]) for p in data["processes"]} == {
                (a.process_id, "redis", "alive"),
                (b.process_id, "redis", "alive"),
            }
            assert data["totals"]["requests"] == 30
            ban = data["ban"]
            assert (ban["banned"], ban["in_redis"], ban["in_store"]) == (True, True, False)
            # Kept in Redis as time left; read back on the controller's clock.
            assert abs(ban["until_ms"] - until) < 5_000
            assert ban["until"].endswith(" UTC") and ban["remaining_s"] > 590
            await a.aclose()
            states = {p["id"]: p["state"] for p in (await controller.status())["processes"]}
            assert states == {a.process_id: "stopped", b.process_id: "alive"}
    finally:
        await delete_prefix(redis_url, quota_prefix)


async def test_redis_unreachable_reads_the_store_alone(
    store_url: str, store: Store, wall: FakeClock, mono: FakeClock
) -> None:
    """Redis configured but not answering: status still works from the store, says Redis
    is unavailable and why, and a level step is saved as usual."""
    p = publisher(store, mono, busy(5, 0.5))
    await p.beat_once()
    dead = "redis://127.0.0.1:1/0"
    async with Controller.open(settings(store_url, redis_url=dead), clock=wall) as controller:
        data = await controller.status()
        assert data["redis"]["available"] is False and data["redis"]["error"]
        assert data["heartbeats"]["read_from"] == ["store"]
        assert [x["id"] for x in data["processes"]] == [p.process_id]
        assert (await controller.increase(actor="ops"))["changed"] is True


def health(overall: str, **checks: tuple[str, float, str]) -> dict[str, Any]:
    return {
        "overall": overall,
        "at": 0,
        "checks": {
            name: {"status": status, "value": value, "unit": "ms", "reason": reason}
            for name, (status, value, reason) in checks.items()
        },
    }


async def test_status_health_is_the_worst_per_check_and_counts_recommendations(
    store_url: str, store: Store, wall: FakeClock, mono: FakeClock
) -> None:
    """Two processes report their health: status shows each check at its worst over them,
    with that process's value and reason, overall the worst of all; unknown when no process
    reports; the recommendations their figures support are counted."""
    async with Controller.open(settings(store_url), clock=wall) as controller:
        empty = await controller.status()
        assert empty["health"] == {"overall": "unknown", "checks": []}
        assert empty["recommendations"] == 0

        a = publisher(store, mono, busy(10, 1.0))
        b = publisher(store, mono, busy(10, 1.0))
        # What a HealthChecker given the publisher sets: its last round in brief.
        a.health = lambda: health(
            "warning", store=("ok", 2.0, "fast"), redis=("warning", 30.0, "slow")
        )
        b.health = lambda: health("critical", store=("critical", 900.0, "queueing"))
        await a.beat_once()
        await b.beat_once()
        data = await controller.status()
        assert data["health"]["overall"] == "critical"
        checks = {c["name"]: c for c in data["health"]["checks"]}
        assert (checks["store"]["status"], checks["store"]["value"]) == ("critical", 900.0)
        assert checks["store"]["process"] == b.process_id and checks["store"]["processes"] == 2
        assert (checks["redis"]["status"], checks["redis"]["reason"]) == ("warning", "slow")
        # busy() reports a 429 in each (a step down), and both run on this host with no
        # Redis, each metering the whole budget alone (enable Redis).
        assert data["recommendations"] == 2
        found = await controller.recommendations()
        assert [r["rule"] for r in found["recommendations"]] == ["lower_level", "enable_redis"]
        json.dumps(data)


async def test_a_step_that_changes_no_ceiling_is_saved_and_says_so(
    store_url: str, store: Store, wall: FakeClock
) -> None:
    """aggressive -> unlimited on the fallback budget: both are capped at the safe rate, so
    the step is saved and audited as asked, and the answer says it changes nothing in
    effect; moderate -> aggressive does change the ceiling and says nothing of the kind."""
    async with Controller.open(settings(store_url), clock=wall) as controller:
        up = await controller.increase(actor="ops")
        assert (up["to"], up["changed"], up["effective"]) == ("aggressive", True, True)
        assert "no effective change" not in up["message"]
        top = await controller.increase(actor="ops", reason="all in")
        assert (top["from"], top["to"], top["changed"]) == ("aggressive", "unlimited", True)
        assert top["effective"] is False
        assert top["ceiling_weight_per_min"] == top["from_ceiling_weight_per_min"]
        assert (
            "no effective change: both levels are capped at the exchange's safe rate"
            in (top["message"])
        )
        assert (await controller.level(VENUE))[0] is Level.UNLIMITED
        [last, *_] = (await controller.status())["audit"]
        assert (last["from"], last["to"], last["reason"]) == ("aggressive", "unlimited", "all in")


async def test_one_shot_recommendations_judge_the_recent_window_not_the_start(
    store_url: str, store: Store, wall: FakeClock, mono: FakeClock
) -> None:
    """A process whose first calls got 5xx and a 429 at start-up, then ran quiet with its
    ceiling binding for longer than quiet_s: its heartbeat carries the counters of the last
    quiet_s (computed as the process beats, from its own ring), so the Controller proposes
    raising the level, judged on the last N s, not lowering it. A heartbeat without that
    block (an older version) is judged since its start and says so."""
    cfg = settings(store_url, monitor={"optimize": {"quiet_s": 300}})
    async with Controller.open(cfg, clock=wall) as controller:
        optimizer = AutoOptimizer(
            controller, venue=lambda: VENUE, process_id=lambda: "p-new", clock=wall
        )
        state: dict[str, Any] = {"successes": 2, "failures": {"server_error": 3}, "n429": 1}

        def figures() -> dict[str, Any]:
            throttle = {**state, "level": "moderate", "current_rate": 39.0, "ceiling": 40.0}
            found = heartbeat_figures({"requests": state["successes"], "throttle": throttle})
            recent = optimizer.observe(found)  # as marketdata/assembly.py does
            if recent is not None:
                found["recent"] = recent
            return found

        new = HeartbeatPublisher(
            store,
            figures,
            venue=VENUE,
            monotonic=mono,
            memory=lambda: 1 << 20,
            process_id="p-new",
        )
        await new.beat_once()
        for _ in range(32):  # 320 s of quiet work, a beat every 10 s
            wall.advance(10.0)
            mono.advance(10.0)
            state["successes"] += 100
            await new.beat_once()
        found = await controller.recommendations()
        assert [r["rule"] for r in found["recommendations"]] == ["raise_level"]
        [up] = found["recommendations"]
        window = up["evidence"]["window"]
        assert window["basis"].startswith("last ") and 300 <= window["seconds"] <= 320
        [seen] = up["evidence"]["processes"]
        assert (seen["n429"], seen["upstream_5xx"]) == (0, 0)
        assert seen["upstream_successes"] == 100 * window["seconds"] / 10  # 100 per beat

        # The same counters in a beat without `recent`: since start, 429 included.
        old_figures = {k: v for k, v in figures().items() if k != "recent"}
        old = publisher(store, mono, old_figures, process_id="p-old")
        await old.beat_once()
        found = await controller.recommendations()
        [lower] = [r for r in found["recommendations"] if r["rule"] == "lower_level"]
        assert lower["evidence"]["window"]["basis"] == "since start"
        assert [p["id"] for p in lower["evidence"]["processes"]] == ["p-old"]
        await new.aclose()
        await old.aclose()
