"""Optimize on a real store: one level step within bounds, audited with its evidence, a dry
run that changes nothing, a cooldown between changes; the auto-optimize leader (the
earliest started process with it on) raises the level of a real MarketData whose queue
waits behind the conservative ceiling, then rolls it back, audited, after the sandbox cuts
its budget and answers 429."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from mystic_trading.config import Settings
from mystic_trading.marketdata import MarketData
from mystic_trading.monitor import Controller, HeartbeatPublisher, heartbeat_figures
from mystic_trading.monitor._optimize import AutoOptimizer, leader_of
from mystic_trading.sandbox import SandboxConfig, SandboxServer
from mystic_trading.store import Store

from .conftest import FakeClock

VENUE = "sandbox-s0-opt"
MINUTE = 60_000


def settings(store_url: str, **optimize: Any) -> Settings:
    return Settings(
        store={"url": store_url},
        provider={"venue": VENUE},
        monitor={"enabled": False, "optimize": optimize},
    )


def throttled(n429: int, level: str = "moderate") -> dict[str, Any]:
    """Figures as heartbeat_figures gives them for a process that got ``n429`` 429s."""
    return heartbeat_figures(
        {"requests": 50, "throttle": {"n429": n429, "level": level, "successes": 40}}
    )


async def beat(store: Store, mono: FakeClock, figures: dict[str, Any]) -> HeartbeatPublisher:
    publisher = HeartbeatPublisher(store, lambda: figures, venue=VENUE, monotonic=mono)
    await publisher.beat_once()
    return publisher


async def test_optimize_applies_one_step_with_its_evidence_then_cools_down(
    store_url: str, store: Store, wall: FakeClock, mono: FakeClock
) -> None:
    """429s in a process's heartbeat: a dry run shows the step down and writes nothing;
    optimize applies it (moderate -> conservative) audited with the evidence; right after,
    the next step waits for the cooldown, named with its end; once it has passed nothing is
    left to apply at the bottom of the ladder."""
    await beat(store, mono, throttled(3))
    async with Controller.open(settings(store_url), clock=wall) as controller:
        head = await controller.store.control.head()
        dry = await controller.optimize(dry_run=True)
        assert dry["planned"]["rule"] == "lower_level" and dry["applied"] is None
        assert "dry run" in dry["message"]
        assert await controller.store.control.head() == head

        done = await controller.optimize(actor="ops-optimize")
        change = done["applied"]["change"]
        assert (change["from"], change["to"], change["changed"]) == (
            "moderate",
            "conservative",
            True,
        )
        [entry] = await controller.store.control.audit(VENUE, limit=1)
        assert (entry.field, entry.actor, entry.to_value) == (
            "level",
            "ops-optimize",
            "conservative",
        )
        assert entry.reason.startswith("Lower the throttle level: 3 x 429")

        await controller.set_level("moderate", actor="ops", reason="back")
        wall.advance(10)
        await beat(store, mono, throttled(3))
        cooling = await controller.optimize()
        assert cooling["applied"] is None and cooling["cooldown_until"] is not None
        assert "cooldown" in cooling["skipped"]["why"] and "by ops" in cooling["skipped"]["why"]
        assert (await controller.level(VENUE))[0].value == "moderate"

        wall.advance(300)
        await beat(store, mono, throttled(3))
        again = await controller.optimize()
        assert again["applied"]["change"]["to"] == "conservative"
        wall.advance(301)
        await beat(store, mono, throttled(3, "conservative"))
        bottom = await controller.optimize()
        assert bottom["applied"] is None and bottom["planned"] is None
        assert "nothing optimize may apply" in bottom["message"]


async def test_optimize_stays_within_its_bounds(
    store_url: str, store: Store, wall: FakeClock, mono: FakeClock
) -> None:
    """With optimize's lowest level set to moderate, the step down the 429s call for is
    shown but not applied, and nothing is written."""
    await beat(store, mono, throttled(2))
    async with Controller.open(settings(store_url, min_level="moderate"), clock=wall) as controller:
        head = await controller.store.control.head()
        answer = await controller.optimize()
        assert answer["applied"] is None and answer["planned"] is None
        [rec] = [r for r in answer["recommendations"] if r["rule"] == "lower_level"]
        assert rec["applicable"] is False and "bounds" in rec["expected"]
        assert await controller.store.control.head() == head


def test_bounds_out_of_order_are_refused() -> None:
    """A lowest level above the highest is a settings error naming both."""
    with pytest.raises(ValueError, match="min_level \\(aggressive\\) is above max_level"):
        Settings(monitor={"optimize": {"min_level": "aggressive", "max_level": "moderate"}})


async def test_leader_is_the_earliest_started_with_auto_on(
    store_url: str, store: Store, wall: FakeClock, mono: FakeClock
) -> None:
    """Of three processes alive, the earliest started with auto_optimize on leads; one
    with it off never does, however early."""
    off = await beat(store, mono, {"auto_optimize": False})
    wall.advance(1)
    first = await beat(store, mono, {"auto_optimize": True})
    wall.advance(1)
    await beat(store, mono, {"auto_optimize": True})
    async with Controller.open(settings(store_url), clock=wall) as controller:
        alive = (await controller.registry.read(VENUE)).alive
        assert len(alive) == 3
        leader = leader_of(alive)
        assert leader is not None and leader.process_id == first.process_id != off.process_id


@pytest.fixture
def exchange() -> Iterator[SandboxServer]:
    server = SandboxServer(SandboxConfig(port=0)).start()
    yield server
    server.stop()


@pytest.fixture
async def md(exchange: SandboxServer, store_url: str) -> AsyncIterator[MarketData]:
    opened = Settings(
        store={"url": store_url},
        provider={"base_url": exchange.url, "read_timeout_s": 2.0},
        throttle={"level": "conservative", "max_retries": 0, "default_deadline_s": 30.0},
        monitor={"enabled": False},
    )
    async with MarketData.open(opened) as md:
        yield md


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
async def test_auto_optimize_raises_then_rolls_back_after_429s(
    md: MarketData, exchange: SandboxServer, store_url: str
) -> None:
    """A real MarketData at conservative queues callers behind its ceiling: the leader's
    round raises the level one step (audited, actor auto-optimize) and the process applies
    it; the sandbox then cuts its budget and answers 429, and the next round moves the
    level back and audits the rollback with the 429s as its reason."""
    settings = Settings(
        store={"url": store_url},
        throttle={"level": "conservative"},
        monitor={"enabled": False, "optimize": {"auto": True, "quiet_s": 0.5}},
    )
    controller = Controller(settings, md.store, clock=time.time)

    def figures() -> dict[str, Any]:
        return {**heartbeat_figures(md.stats()), "auto_optimize": True}

    publisher = HeartbeatPublisher(md.store, figures, venue=lambda: md.provider.venue)
    auto = AutoOptimizer(
        controller, venue=lambda: md.provider.venue, process_id=lambda: publisher.process_id
    )
    end = 1_700_000_000_000 // MINUTE * MINUTE
    await publisher.beat_once()
    await auto.tick()  # the first sample
    await asyncio.gather(
        *(md.candles("BTCUSDT", "1m", limit=5, end=end - i * 5 * MINUTE) for i in range(140))
    )
    await publisher.beat_once()
    raised = await auto.tick()
    assert auto.leading is True
    assert raised is not None and raised["applied"]["rule"] == "raise_level"
    assert (raised["applied"]["change"]["from"], raised["applied"]["change"]["to"]) == (
        "conservative",
        "moderate",
    )
    await md.control.poll()
    assert md.throttler.level.value == "moderate"
    assert auto.stats()["watching"]["to"] == "moderate"

    exchange.set_budget(weight_limit=10)
    for i in range(20):
        try:
            await md.candles("ETHUSDT", "1m", limit=5, end=end - i * 5 * MINUTE)
        except Exception:  # the 429, whichever error carries it
            break
    assert heartbeat_figures(md.stats())["n429"] >= 1
    await publisher.beat_once()
    rolled = await auto.tick()
    assert rolled is not None and "rollback" in rolled
    assert (rolled["rollback"]["from"], rolled["rollback"]["to"]) == ("moderate", "conservative")
    [entry] = await md.store.control.audit(md.provider.venue, limit=1)
    assert (entry.actor, entry.to_value) == ("auto-optimize", "conservative")
    assert entry.reason.startswith("rollback of conservative -> moderate: ")
    assert "429" in entry.reason
    await md.control.poll()
    assert md.throttler.level.value == "conservative"
    await publisher.aclose()


async def test_observe_answers_the_recent_window_and_keeps_no_window_in_its_ring(
    store_url: str, store: Store, wall: FakeClock
) -> None:
    """observe() keeps the figures and answers the counters' differences over the last
    quiet_s, cut where the level changed (a 429 at the level before is not counted); a
    `recent` block handed back in is not kept, so windows never nest."""
    cfg = settings(store_url, quiet_s=60.0, interval_s=10.0)
    async with Controller.open(cfg, clock=wall) as controller:
        optimizer = AutoOptimizer(
            controller, venue=lambda: VENUE, process_id=lambda: "p", clock=wall
        )
        first = optimizer.observe(throttled(2, "aggressive"))
        assert first is not None and first["seconds"] == 0 and first["n429"] == 2
        wall.advance(10.0)
        optimizer.observe(throttled(3, "aggressive"))
        for _ in range(3):
            wall.advance(10.0)
            beat = throttled(3, "moderate")
            recent = optimizer.observe({**beat, "recent": {"seconds": 1.0}})
        assert recent is not None and recent["n429"] == 0 and recent["seconds"] == 30.0
        for _ in range(6):
            wall.advance(10.0)
            recent = optimizer.observe(throttled(4, "moderate"))
        assert recent is not None and (recent["n429"], recent["seconds"]) == (1, 60.0)
        own = optimizer.own.process("p")
        assert own is not None and all("recent" not in s.figures for s in own.samples)
