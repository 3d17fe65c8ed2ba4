"""Recommendation rules over real figures: each rule from a workload on a real MarketData and
the sandbox exchange that provokes it (a budget cut into 429s, a queue behind the
conservative ceiling, two processes metering alone on one host, a cache too small, a pool
of one connection, the same series' history asked piece by piece, a skewed exchange clock),
and none from a healthy one. The rules are a pure function of figures samples taken with
``heartbeat_figures(md.stats())`` at two moments."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import pytest

from mystic_trading.config import Settings
from mystic_trading.marketdata import MarketData
from mystic_trading.models import Candle
from mystic_trading.monitor import heartbeat_figures
from mystic_trading.monitor._recommend import (
    FigureHistory,
    ProcessFigures,
    Recommendation,
    Sample,
    recommend,
)
from mystic_trading.sandbox import SandboxConfig, SandboxServer
from mystic_trading.store import RangeWrite
from mystic_trading.throttle import Level

HOST = socket.gethostname()
MINUTE = 60_000


@pytest.fixture
def exchange() -> Iterator[SandboxServer]:
    server = SandboxServer(SandboxConfig(port=0)).start()
    yield server
    server.stop()


def settings_for(exchange: SandboxServer, store_url: str, **extra: Any) -> Settings:
    data: dict[str, Any] = {
        "store": {"url": store_url},
        "provider": {"base_url": exchange.url, "read_timeout_s": 2.0},
        "throttle": {"max_retries": 0, "default_deadline_s": 20.0},
        "monitor": {"enabled": False},
    }
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return Settings(**data)


def figures(md: MarketData) -> dict[str, Any]:
    """The heartbeat figures of ``md``."""
    return heartbeat_figures(md.stats())


class Recorder:
    """Samples of one MarketData's figures with their times, as a process keeps them."""

    def __init__(self, md: MarketData) -> None:
        self.md = md
        self.id = uuid.uuid4().hex
        self.started = time.time()
        self.history = FigureHistory(every_s=0.0)

    def sample(self) -> None:
        self.history.add(self.id, figures(self.md), host=HOST, started_at_s=self.started)

    def process(self) -> ProcessFigures:
        found = self.history.process(self.id)
        assert found is not None
        return found


def run(
    settings: Settings, *recorders: Recorder, level: Level | None = None
) -> list[Recommendation]:
    level = level or Level(settings.throttle.level)
    ceilings = {
        lvl: r.md.throttler.safe_rate
        if lvl is Level.UNLIMITED
        else min((lvl.requests_per_s or 0) * 2, r.md.throttler.safe_rate)
        for r in recorders[:1]
        for lvl in Level
    }
    return recommend([r.process() for r in recorders], settings, level=level, ceilings=ceilings)


def rules(found: list[Recommendation]) -> list[str]:
    return [r.rule for r in found]


# The rules read figures, not the store: SQLite is enough except where the store is the point.
SQLITE = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
POSTGRES = pytest.mark.parametrize(
    "store_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


@pytest.fixture
async def md_of(exchange: SandboxServer, store_url: str) -> AsyncIterator[Any]:
    """Open MarketData on the sandbox and the test database; all closed at the end."""
    stack: list[AbstractAsyncContextManager[MarketData]] = []

    async def make(**extra: Any) -> tuple[MarketData, Settings]:
        settings = settings_for(exchange, store_url, **extra)
        manager = MarketData.open(settings)
        md = await manager.__aenter__()
        stack.append(manager)
        return md, settings

    yield make
    for manager in reversed(stack):
        await manager.__aexit__(None, None, None)


@SQLITE
async def test_a_healthy_workload_gives_no_recommendation(md_of: Any) -> None:
    """Tickers and candles well within the budget, on a single process with a synced clock:
    no rule fires (raising needs the ceiling to bind; nothing else is wrong)."""
    md, settings = await md_of()
    rec = Recorder(md)
    rec.sample()
    for _ in range(3):
        for symbol in ("BTCUSDT", "ETHUSDT"):
            await md.ticker(symbol)
        await md.candles("BTCUSDT", "1m", limit=50)
    rec.sample()
    assert run(settings, rec) == []


@SQLITE
async def test_429s_recommend_lowering_the_level(md_of: Any, exchange: SandboxServer) -> None:
    """The exchange halves... to almost nothing: the process gets a 429 and the rule proposes
    one step down with the 429s as evidence, applicable by optimize."""
    md, settings = await md_of()
    rec = Recorder(md)
    await md.ticker("BTCUSDT")
    rec.sample()
    exchange.set_budget(weight_limit=10)
    for i in range(12):
        with pytest.raises(Exception):  # noqa: B017,PT011 - the 429, whichever error wraps it
            await md.candles("BTCUSDT", "1m", limit=10, end=1_700_000_000_000 - i * MINUTE * 10)
        if figures(md)["n429"]:
            break
    rec.sample()
    [lower] = [r for r in run(settings, rec) if r.rule == "lower_level"]
    assert (lower.from_value, lower.to_value, lower.applicable) == (
        "moderate",
        "conservative",
        True,
    )
    assert "429" in lower.reason
    [seen] = lower.evidence["processes"]
    assert seen["n429"] >= 1 and seen["basis"] == "samples"
    assert lower.evidence["window"]["seconds"] > 0
    assert "raise_level" not in rules(run(settings, rec))


@SQLITE
async def test_a_queue_behind_the_conservative_ceiling_recommends_raising(
    md_of: Any,
) -> None:
    """At conservative (10 weight/s), more distinct candle windows than the burst admits at
    once: callers queue beyond the queue-wait warning, no 429 or failure, so one step up
    is proposed, with the wait as evidence and the ceilings from and to."""
    md, settings = await md_of(
        throttle={"level": "conservative"}, monitor={"optimize": {"quiet_s": 0.5}}
    )
    rec = Recorder(md)
    rec.sample()
    end = 1_700_000_000_000
    await asyncio.gather(
        *(md.candles("BTCUSDT", "1m", limit=5, end=end - i * MINUTE * 5) for i in range(140))
    )
    rec.sample()
    found = run(settings, rec)
    [up] = [r for r in found if r.rule == "raise_level"]
    assert (up.from_value, up.to_value, up.applicable) == ("conservative", "moderate", True)
    [seen] = up.evidence["processes"]
    assert seen["queue_wait_p95_ms"] > settings.monitor.health.queue_wait_warning_ms
    assert seen["n429"] == 0 and "ceiling" in up.expected
    # Bounds: with optimize capped at conservative it is shown but not applicable.
    capped = Settings(
        **{
            **settings.model_dump(),
            "monitor": {
                **settings.monitor.model_dump(),
                "optimize": {"quiet_s": 0.5, "max_level": "conservative"},
            },
        }
    )
    [shown] = [r for r in run(capped, rec) if r.rule == "raise_level"]
    assert shown.applicable is False and "bounds" in shown.expected


@SQLITE
async def test_two_processes_metering_alone_on_one_host_recommend_redis(md_of: Any) -> None:
    """Two MarketData without Redis on this host: each meters the whole budget alone, so
    Redis is recommended (not applicable: it needs a restart with redis_url)."""
    a, settings = await md_of()
    b, _ = await md_of()
    ra, rb = Recorder(a), Recorder(b)
    for md in (a, b):
        await md.ticker("BTCUSDT")
    ra.sample()
    rb.sample()
    [redis] = [r for r in run(settings, ra, rb) if r.rule == "enable_redis"]
    assert (redis.setting, redis.applicable) == ("redis_url", False)
    assert f"2 processes alive on {HOST}" in redis.reason
    assert [p["quota_mode"] for p in redis.evidence["processes"]] == ["memory", "memory"]
    assert "enable_redis" not in rules(run(settings, ra))


@SQLITE
async def test_evictions_with_a_falling_hit_rate_recommend_a_bigger_cache(md_of: Any) -> None:
    """A memory cache of 4 entries cycled over 8 symbols evicts on every answer and hits
    nothing: doubling the entry bound is proposed, with the evictions and hit rate shown."""
    md, settings = await md_of(
        cache={"memory_max_entries": 4},
        monitor={"health": {"evictions_warning_per_s": 1.0, "evictions_critical_per_s": 1.0}},
    )
    rec = Recorder(md)
    rec.sample()
    cycle = sorted((await md.exchange_info()).symbols)[:8]
    assert len(cycle) == 8
    for _ in range(4):
        for symbol in cycle:
            await md.order_book(symbol, 5)
    rec.sample()
    [grow] = [r for r in run(settings, rec) if r.rule == "grow_memory_cache"]
    assert (grow.setting, grow.from_value, grow.to_value) == ("cache.memory_max_entries", 4, 8)
    [seen] = grow.evidence["processes"]
    assert seen["evictions"] >= 20 and seen["memory_hits"] == 0


@POSTGRES
async def test_pool_waits_recommend_a_bigger_store_pool(md_of: Any, store_url: str) -> None:
    """A PostgreSQL store with one write connection and candle ranges written at once:
    writes wait for the connection, so a bigger pool is proposed with the waits shown."""
    md, settings = await md_of(store={"url": store_url, "pool_size": 1})
    end = 1_700_000_000_000 // MINUTE * MINUTE
    candles: list[Candle] = list(
        (await md.candles("BTCUSDT", "1m", start=end - 80 * MINUTE, end=end)).value
    )
    await md.flush()
    rec = Recorder(md)
    rec.sample()

    def write(i: int) -> RangeWrite:
        part = candles[i * 10 : (i + 1) * 10]
        start = part[0].open_time
        return RangeWrite(part[0].symbol, part[0].interval, start, start + 10 * MINUTE, part)

    venue = md.provider.venue
    await asyncio.gather(*(md.store.candles.save_ranges(venue, [write(i)]) for i in range(8)))
    rec.sample()
    [grow] = [r for r in run(settings, rec) if r.rule == "grow_store_pool"]
    assert (grow.setting, grow.from_value, grow.to_value) == ("store.pool_size", 1, 2)
    assert grow.evidence["processes"][0]["store_pool_waits"] >= 1


@SQLITE
async def test_the_same_series_history_asked_piecemeal_recommends_a_backfill(
    md_of: Any,
) -> None:
    """Callers each asking a different stretch of BTCUSDT 1m's past fetch it page by page
    at interactive priority: a backfill of that series is proposed, naming it."""
    md, settings = await md_of(monitor={"optimize": {"backfill_pages": 5}})
    rec = Recorder(md)
    rec.sample()
    end = 1_700_000_000_000 // MINUTE * MINUTE
    for i in range(6):
        await md.candles("BTCUSDT", "1m", limit=100, end=end - i * 1000 * MINUTE)
    await md.candles("ETHUSDT", "1h", limit=10, end=end)
    rec.sample()
    [backfill] = [r for r in run(settings, rec) if r.rule == "backfill"]
    assert (backfill.to_value, backfill.applicable) == ("BTCUSDT 1m", False)
    assert backfill.evidence["series_pages"] == {"BTCUSDT 1m": 6}
    assert "mystic backfill BTCUSDT --interval 1m" in backfill.expected


@SQLITE
async def test_a_skewed_exchange_clock_recommends_fixing_the_clock(
    md_of: Any, exchange: SandboxServer
) -> None:
    """The exchange's clock 3 s ahead of ours (beyond the 1 s warning): fixing this host's
    clock is proposed, with the measured offset; never applicable by optimize."""
    exchange.set_clock_skew(3_000)
    md, settings = await md_of()
    rec = Recorder(md)
    await md.ticker("BTCUSDT")
    rec.sample()
    [clock] = [r for r in run(settings, rec) if r.rule == "fix_clock"]
    assert clock.applicable is False
    assert 2_000 < clock.from_value < 4_000
    assert clock.evidence["processes"][0]["clock_offset_ms"] == clock.from_value


def test_a_single_beat_is_judged_since_the_process_started() -> None:
    """One sample (a heartbeat read cold) counts against zero at the process's start, and
    the window says so; a level rule reads only the samples at the level in force."""
    beat = heartbeat_figures({"throttle": {"n429": 3, "level": "moderate"}})
    cold = ProcessFigures("p1", HOST, 100.0, True, (Sample(160.0, beat),))
    settings = Settings(monitor={"enabled": False})
    ceilings = dict.fromkeys(Level, 40.0)
    [lower] = recommend([cold], settings, level=Level.MODERATE, ceilings=ceilings)
    assert lower.evidence["window"]["basis"] == "since start"
    assert lower.evidence["window"]["seconds"] == 60.0
    earlier = heartbeat_figures({"throttle": {"n429": 3, "level": "aggressive"}})
    # 429s at aggressive, none since moderate came in: no reason to lower moderate.
    at_level = ProcessFigures(
        "p1", HOST, 100.0, True, (Sample(150.0, earlier), Sample(160.0, beat))
    )
    assert recommend([at_level], settings, level=Level.MODERATE, ceilings=ceilings) == []


async def refusing(port: int) -> None:
    """Wait until a sandbox told to refuse has closed its listener on ``port``."""
    for _ in range(200):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            return
        writer.close()
        await writer.wait_closed()
        await asyncio.sleep(0.02)
    raise AssertionError(f"the sandbox on port {port} still listens")


@SQLITE
async def test_5xx_lower_the_level_but_an_exchange_out_of_reach_does_not(
    md_of: Any, exchange: SandboxServer
) -> None:
    """The exchange answers 503 to every request: the success rate of its answers falls and
    one step down is proposed, the 5xx named. Then it refuses connections: the calls fail
    as unreachable, which fewer requests would not fix, so no step down."""
    md, settings = await md_of(monitor={"health": {"min_requests": 5}})
    await md.ticker("BTCUSDT")
    overloaded = Recorder(md)
    overloaded.sample()
    exchange.set_error_rate(1.0, (503,))
    end = 1_700_000_000_000
    for i in range(6):
        with pytest.raises(Exception):  # noqa: B017,PT011 - the 503, whichever error wraps it
            await md.candles("BTCUSDT", "1m", limit=5, end=end - i * MINUTE * 5)
    overloaded.sample()
    [lower] = [r for r in run(settings, overloaded) if r.rule == "lower_level"]
    assert "x 5xx" in lower.reason and lower.to_value == "conservative"
    [seen] = lower.evidence["processes"]
    assert seen["upstream_5xx"] >= 6 and seen["upstream_unreachable"] == 0

    out_of_reach = Recorder(md)
    out_of_reach.sample()
    exchange.start_outage(30.0, "refuse")
    await refusing(exchange.port)
    for i in range(6, 12):
        with pytest.raises(Exception):  # noqa: B017,PT011 - refused, whichever error wraps it
            await md.candles("BTCUSDT", "1m", limit=5, end=end - i * MINUTE * 5)
    out_of_reach.sample()
    window = out_of_reach.process()
    first, last = window.samples[0].figures, window.samples[-1].figures
    assert last["upstream_unreachable"] - first["upstream_unreachable"] >= 6
    assert last["upstream_5xx"] == first["upstream_5xx"]
    assert "lower_level" not in rules(run(settings, out_of_reach))


@SQLITE
async def test_weight_another_client_spends_behind_the_same_ip_recommends_redis(
    md_of: Any, exchange: SandboxServer
) -> None:
    """Alone, the process's work leaves its foreign weight where it was. Another client on
    the same IP then spends weight straight at the sandbox (httpx): the usage header the
    process reads next counts it, its foreign_weight rises by what that client spent, and
    enabling Redis is proposed with that evidence. (Each attempt runs within one of the
    exchange's windows; one that straddles a boundary is run again.)"""
    md, settings = await md_of()
    window_s = md.throttler.budget.window_s
    symbols = sorted((await md.exchange_info()).symbols)

    def window() -> int:
        return int(md.throttler.exchange_ms() / 1000 // window_s)

    def usage() -> dict[str, Any]:
        found: dict[str, Any] = md.stats()["throttle"]["usage"]
        return found

    await md.ticker(symbols[0])
    alone = Recorder(md)
    alone.sample()
    # At most the one weight-1 GET /api/v3/time that identified the venue at start, sent
    # outside the throttler (providers/venue.py), if it fell in this window.
    before = usage()["foreign_weight"]
    assert before <= 1
    for symbol in symbols[1:5]:
        await md.ticker(symbol)
    alone.sample()
    assert usage()["foreign_weight"] == before
    assert usage()["header_used"] is not None and usage()["own_in_window"] >= 1
    assert "enable_redis" not in rules(run(settings, alone))

    shared = Recorder(md)
    shared.sample()
    async with httpx.AsyncClient(base_url=exchange.url) as other:
        for attempt in range(2):
            start, foreign0 = window(), usage()["foreign_weight"]
            own0 = usage()["own_in_window"]
            used = []
            for _ in range(5):
                answer = await other.get("/api/v3/exchangeInfo")
                used.append(int(answer.headers["x-mbx-used-weight-1m"]))
            for symbol in symbols[5 + attempt * 4 : 9 + attempt * 4]:
                await md.ticker(symbol)
            if window() == start:
                break
        else:
            raise AssertionError("two attempts in a row straddled the exchange's windows")
    rise = usage()["foreign_weight"] - foreign0
    # Between what the other client spent after its first answer and everything the
    # exchange counted beyond this process's own weight.
    assert used[-1] - used[0] <= rise <= used[-1] - own0
    shared.sample()
    [redis] = [r for r in run(settings, shared) if r.rule == "enable_redis"]
    assert "weight this process did not send" in redis.reason
    [seen] = redis.evidence["processes"]
    assert seen["foreign_weight"] >= rise and seen["quota_mode"] == "memory"
