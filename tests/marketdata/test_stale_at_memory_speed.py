"""A caller holding a good value is not made to wait on an exchange that is pausing us, has
banned us or is down (issue 11 item 1; faults 2: 8 tasks got 16 answers in 48 s, each after
18-30 s): it gets the value at memory speed, marked stale with its age, while one refresh
per key waits for the exchange. What the store holds is served the same way; only a key
nobody holds raises.

The sandbox runs on a ManualClock (its rate window does not roll during a test) and the
caches on a clock moved by hand, so nothing here waits for a TTL.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from mystic_trading.config import CacheSettings, ThrottleSettings
from mystic_trading.errors import Banned, UpstreamRejected, UpstreamUnavailable
from mystic_trading.marketdata.answer import Answer, Layer, stamp_ms
from mystic_trading.marketdata.layered import Fallback, Layers
from mystic_trading.marketdata.stats import MarketDataStats
from mystic_trading.sandbox import SandboxServer
from mystic_trading.store import Store

from .conftest import refusing
from .test_outage_candles import Local, Process, exchange, market, store

__all__ = ["exchange", "market", "store"]  # the fixtures, shared with the outage tests

SYMBOLS = ("BTCUSDT", "ETHUSDT", "BNBUSDT", "LTCUSDT", "ADAUSDT")
# Long enough that a 429's Retry-After (the 30 s left of the sandbox's window) is waited
# out and retried, as by default: the refresh waits, the callers must not.
SETTINGS = ThrottleSettings(default_deadline_s=60.0)


def sent(exchange: SandboxServer) -> int:
    return exchange.stats.total.requests


async def test_a_429_pause_does_not_hold_callers_that_have_a_value(
    exchange: SandboxServer, store: Store
) -> None:
    local = Local()
    proc = Process(exchange, store, local, SETTINGS)
    try:
        for symbol in SYMBOLS:
            await proc.md.ticker(symbol)
        exchange.set_budget(weight_limit=1)  # already spent: the next request earns a 429
        local.ms += 10_000  # past freshness and the stale-while-revalidate window
        before = sent(exchange)
        # Bounded only so that a regression fails instead of hanging for the pause.
        first = await asyncio.wait_for(proc.md.ticker(SYMBOLS[0]), 20)
        assert first.stale
        assert first.layer is Layer.MEMORY
        assert exchange.stats.total.http_429 == 1
        answers = await asyncio.wait_for(
            asyncio.gather(*(proc.md.ticker(s) for _ in range(8) for s in SYMBOLS)), 20
        )
        assert [(a.stale, a.layer) for a in answers] == [(True, Layer.MEMORY)] * 40
        assert {a.value.symbol.exchange for a in answers} == set(SYMBOLS)
        # Every answer came while the pause stood, and nothing else was sent meanwhile.
        assert proc.throttler.stats()["paused_for_s"] > 0
        assert sent(exchange) == before + 1
    finally:
        exchange.reset()
        await proc.aclose()


async def test_during_a_ban_held_and_stored_values_are_served_and_nothing_is_sent(
    exchange: SandboxServer, store: Store
) -> None:
    local = Local()
    first = Process(exchange, store, local, SETTINGS)
    second = Process(exchange, store, local, SETTINGS)
    try:
        for symbol in SYMBOLS:
            await first.md.ticker(symbol)
        await first.md.flush()  # the snapshots are in the store
        venue = first.provider.venue
        until = time.time_ns() // 1_000_000 + 3_600_000
        await store.control.save_ban(venue, until, "HTTP 418 on /api/v3/ticker/24hr")
        await first.throttler.refresh_control()
        await second.throttler.start()  # a process started during the ban
        local.ms += 10_000
        before = sent(exchange)
        held = await asyncio.gather(*(first.md.ticker(s) for _ in range(4) for s in SYMBOLS))
        assert [(a.stale, a.layer) for a in held] == [(True, Layer.MEMORY)] * 20
        stored = [await second.md.ticker(s) for s in SYMBOLS]
        assert [(a.stale, a.layer) for a in stored] == [(True, Layer.STORE)] * 5
        with pytest.raises(Banned) as info:
            await second.md.ticker("XRPUSDT")  # nobody holds it
        assert info.value.until == until
        assert sent(exchange) == before
    finally:
        await first.aclose()
        await second.aclose()


# -- the layered read itself, with fetches written here (its public seam) ----------------


def layers() -> Layers:
    return Layers(CacheSettings(), None, MarketDataStats(), time.monotonic)


def stored(value: str) -> Fallback:
    async def fallback() -> Answer[Any] | None:
        return Answer(value, Layer.STORE, stamp_ms() - 1_000)

    return fallback


async def test_a_rejected_request_does_not_make_the_exchange_count_as_down() -> None:
    """A 4xx answer is about one request: the next key still goes to the exchange, it is not
    answered from the store as if the exchange were down."""
    read = layers()

    async def rejected() -> Answer[Any]:
        raise UpstreamRejected("bad parameter", status=400, code=-1100)

    async def fresh() -> Answer[Any]:
        return Answer("fresh", Layer.UPSTREAM, stamp_ms())

    with pytest.raises(UpstreamRejected):
        await read.read("ticker", "t|AAAUSDT", 1.5, rejected)
    answer = await read.read("ticker", "t|BBBUSDT", 1.5, fresh, stored("old"))
    assert (answer.value, answer.stale) == ("fresh", False)


async def test_an_exchange_that_is_down_is_not_waited_on_for_the_next_key() -> None:
    """Once a fetch found the exchange down, a key the store holds is answered from it at once
    (stale) and one refresh goes in the background; when that refresh succeeds, the exchange
    counts as up again."""
    read = layers()
    sent: list[str] = []

    async def down() -> Answer[Any]:
        sent.append("down")
        raise UpstreamUnavailable("refused", status=None)

    async def up() -> Answer[Any]:
        sent.append("up")
        return Answer("fresh", Layer.UPSTREAM, stamp_ms())

    with pytest.raises(UpstreamUnavailable):
        await read.read("ticker", "t|AAAUSDT", 1.5, down)
    answer = await read.read("ticker", "t|BBBUSDT", 1.5, up, stored("old"))
    assert (answer.value, answer.layer, answer.stale) == ("old", Layer.STORE, True)
    await read.idle()  # the one background refresh
    assert sent == ["down", "up"]
    again = await read.read("ticker", "t|CCCUSDT", 1.5, up, stored("old"))
    assert (again.value, again.stale) == ("fresh", False)


@pytest.mark.parametrize("mode", ["refuse", "503"])
async def test_an_outage_does_not_hold_callers_that_have_a_value(
    exchange: SandboxServer, store: Store, mode: str
) -> None:
    local = Local()
    proc = Process(exchange, store, local, SETTINGS)
    try:
        for symbol in SYMBOLS:
            await proc.md.ticker(symbol)
        exchange.start_outage(600, mode)  # type: ignore[arg-type]
        if mode == "refuse":
            await refusing(exchange.port)
        local.ms += 10_000  # past freshness and the stale-while-revalidate window
        first = await asyncio.wait_for(proc.md.ticker(SYMBOLS[0]), 20)
        assert (first.stale, first.layer) == (True, Layer.MEMORY)
        answers = await asyncio.wait_for(
            asyncio.gather(*(proc.md.ticker(s) for _ in range(8) for s in SYMBOLS)), 20
        )
        assert [(a.stale, a.layer) for a in answers] == [(True, Layer.MEMORY)] * 40
        assert proc.md.layers.failing
    finally:
        exchange.reset()
        await proc.aclose()
