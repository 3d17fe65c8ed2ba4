"""The oracle: every stored closed candle equals the exchange's final candle, and every
candle that exists is served afterwards, through clock skews and steps both ways, latency,
late aggregation and a slow, retried first answer (issue: data truth).

Clients poll "the last few" 1s and 1m candles around candle closes, from two MarketData
instances sharing one store (two processes of a deployment), against a sandbox that
resolves trades to the millisecond, answers computed before its latency, aggregates late,
and whose clock is skewed or steps while they poll. Real time runs (the sandbox serves on
its own thread), but nothing is asserted about time: only about what was stored and served.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from mystic_trading.marketdata.facade import MarketData
from mystic_trading.models import Candle, Interval
from mystic_trading.sandbox import SandboxConfig, SandboxServer

from .conftest import settings

pytestmark = pytest.mark.slow

SYMBOL = "BTCUSDT"
MINUTE = 60_000


@dataclass
class Scenario:
    skew_ms: int = 0  # the exchange's clock against ours from the start
    steps: list[tuple[float, int]] = field(default_factory=list)  # (after s, new skew ms)
    latency_ms: float = 50.0
    jitter_ms: float = 20.0
    lag_ms: int = 300  # the exchange's late aggregation after a close
    slow_first_s: float = 0.0  # the first answers take this long (and time out once)


SCENARIOS = {
    "skew+5s": Scenario(skew_ms=5_000),
    "skew-5s": Scenario(skew_ms=-5_000),
    "step+5s": Scenario(steps=[(2.5, 5_000)]),
    "step-5s": Scenario(steps=[(2.5, -5_000)]),
    "steps-both-ways-200ms": Scenario(
        latency_ms=200, jitter_ms=50, steps=[(2.0, 2_000), (4.5, -3_000)]
    ),
    "slow-retried-first-answer": Scenario(slow_first_s=2.5, skew_ms=1_500),
}


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def row_values(row: Any) -> tuple[Any, ...]:
    """A kline row as the values a Candle holds, for an exact comparison."""
    return (
        row[0],
        *(Decimal(x) for x in row[1:6]),
        row[6],
        Decimal(row[7]),
        row[8],
        Decimal(row[9]),
        Decimal(row[10]),
    )


def candle_values(c: Candle) -> tuple[Any, ...]:
    return (
        c.open_time,
        c.open,
        c.high,
        c.low,
        c.close,
        c.volume,
        c.close_time,
        c.quote_volume,
        c.trades,
        c.taker_buy_volume,
        c.taker_buy_quote_volume,
    )


@pytest.fixture
def base_shift() -> int:
    """A shift of the sandbox's base clock that puts its time 3 s before a minute boundary
    when the clients start, so 1m candles close while they poll (added to the skew)."""
    t = now_ms() + 1_500  # about when polling starts
    return (MINUTE - 3_000 - t % MINUTE + MINUTE // 2) % MINUTE - MINUTE // 2


@pytest.fixture(params=list(SCENARIOS), ids=list(SCENARIOS))
def scenario(request: pytest.FixtureRequest) -> Scenario:
    return SCENARIOS[request.param]


@pytest.fixture
def oracle_exchange(scenario: Scenario, base_shift: int) -> Iterator[SandboxServer]:
    server = SandboxServer(
        SandboxConfig(
            port=0,
            clock=lambda: now_ms() + base_shift,
            clock_skew_ms=scenario.skew_ms,
            aggregation_lag_ms=scenario.lag_ms,
            latency_ms=scenario.latency_ms + scenario.slow_first_s * 1000,
            jitter_ms=scenario.jitter_ms,
        )
    ).start()
    yield server
    server.stop()


async def poll(
    md: MarketData, seen: list[Candle], short: list[int], until: float, rng: random.Random
) -> None:
    while time.monotonic() < until:
        for interval, limit in (("1s", 5), ("1m", 3)):
            answer = await md.candles(SYMBOL, interval, limit=limit)
            seen.extend(answer.value)
            if len(answer.value) < limit - 1:  # "the last N" emptied (one may not exist yet)
                short.append(len(answer.value))
        await asyncio.sleep(rng.uniform(0.05, 0.25))


async def test_no_wrong_and_no_lost_candle(
    oracle_exchange: SandboxServer, scenario: Scenario, tmp_path: Path
) -> None:
    """0 wrong: every stored candle, and every candle served as closed, equals the
    sandbox's final candle. 0 lost: afterwards every candle that exists is served."""
    exchange = oracle_exchange
    config = settings(
        exchange,
        f"sqlite+aiosqlite:///{tmp_path / 'oracle.db'}",
        provider={"read_timeout_s": 2.0},
        throttle={"max_retries": 3, "default_deadline_s": 20.0},
    )
    seen: list[Candle] = []
    short: list[int] = []
    rng = random.Random(3)
    started_at = exchange.clock_ms()  # the sandbox's clock
    async with MarketData.open(config) as md_a, MarketData.open(config) as md_b:
        if scenario.slow_first_s:
            # The first answers are slow enough to time out once and be retried; then fast.
            async def speed_up() -> None:
                await asyncio.sleep(scenario.slow_first_s + 1.0)
                exchange.set_latency(scenario.latency_ms, scenario.jitter_ms)

            speeder = asyncio.create_task(speed_up())
        until = time.monotonic() + 7.0 + scenario.slow_first_s

        async def stepper() -> None:
            t0 = time.monotonic()
            for after_s, skew in scenario.steps:
                await asyncio.sleep(max(0.0, t0 + after_s - time.monotonic()))
                exchange.set_clock_skew(skew)

        await asyncio.gather(
            stepper(),
            *(
                poll(md, seen, short, until, random.Random(rng.random()))
                for md in (md_a, md_b, md_a)
            ),
        )
        if scenario.slow_first_s:
            await speeder
        assert short == [], "'the last N' came back short or empty"
        await md_a.flush()
        await md_b.flush()
        ended_at = exchange.clock_ms()
        venue = md_a.provider.venue

        # Wrong: what was stored, and what was served as closed, is the final candle.
        stored: list[Candle] = []
        for iv in (Interval.S1, Interval.M1):
            span_start = iv.floor(started_at) - 20 * (iv.ms or 0)
            stored += list(
                await md_a.store.candles.range(venue, SYMBOL, iv, span_start, ended_at + MINUTE)
            )
        assert stored, "nothing was stored: the test proves nothing"
        wrong = [
            c
            for c in stored + [c for c in seen if c.closed]
            if exchange.final_candle(SYMBOL, c.interval, c.open_time) is None
            or row_values(exchange.final_candle(SYMBOL, c.interval, c.open_time))
            != candle_values(c)
        ]
        assert wrong == [], f"{len(wrong)} wrong candles, first {wrong[:1]}"

        # Lost: once the exchange has certainly finalised the polled span, every candle of it
        # is served, equal to the exchange's.
        await asyncio.sleep(max(0.0, (ended_at + 4_000 - exchange.clock_ms()) / 1000))
        await md_a.clear()
        for iv in (Interval.S1, Interval.M1):
            start = iv.floor(started_at) - 5 * (iv.ms or 0)
            end = iv.floor(ended_at)
            served = await md_a.candles(SYMBOL, iv, start=start, end=end)
            truth = [
                row
                for row in (exchange.final_candle(SYMBOL, iv, t) for t in iv.open_times(start, end))
                if row is not None
            ]
            assert [candle_values(c) for c in served.value] == [row_values(r) for r in truth]
            assert all(c.closed for c in served.value)
        stats = md_a.stats()["clock"]
        if scenario.steps:
            assert stats["steps"] >= 1
