"""Control state reaches running processes (issue 11 item 3): a level set from the CLI, a
ban another process earned, a ban lifted with `mystic throttle ban clear` and a cache clear
take effect in a process that is already running, audited with who and why.

Each MarketData below is opened on its own (its own throttler, memory and store
connections), as a separate process would be; the CLI runs as a real subprocess. Most tests
drive the watch's poll by hand (``md.control.poll()``), which is what the background task
runs about once a second, with that task stopped so it does not apply the change first;
one test leaves it to the background task.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from mystic_trading.errors import Banned, ConfigError
from mystic_trading.marketdata.answer import Layer
from mystic_trading.marketdata.control_watch import ControlWatch
from mystic_trading.marketdata.facade import MarketData
from mystic_trading.sandbox import SandboxServer
from mystic_trading.store import ControlChange, ControlRepository

from ..conftest import Moved, MysticCli
from .conftest import OpenMd


def cli_env(exchange: SandboxServer, store_url: str) -> dict[str, str]:
    return {"MYSTIC_STORE__URL": store_url, "MYSTIC_PROVIDER__BASE_URL": exchange.url}


async def by_hand(*mds: MarketData) -> None:
    """Stop the watches' background polls: the test polls by hand."""
    for md in mds:
        await md.control.aclose()


async def until(condition: Callable[[], bool], *, within_s: float = 10.0) -> None:
    """Wait for a background task's effect; fail after ``within_s`` (a bound, not a figure
    the test checks: the product's own bound is 2 s)."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + within_s
    while not condition():
        assert loop.time() < give_up, "the change never reached the running process"
        await asyncio.sleep(0.05)


async def test_a_level_set_from_the_cli_reaches_a_running_process(
    open_md: OpenMd, exchange: SandboxServer, store_url: str, mystic_cli: MysticCli
) -> None:
    async with open_md() as md:
        assert md.throttler.level.value == "moderate"
        done = await asyncio.to_thread(
            mystic_cli,
            cli_env(exchange, store_url),
            "throttle",
            "level",
            "conservative",
            "--reason",
            "exchange is fragile today",
        )
        assert done.returncode == 0, done.stderr
        # No poll by hand: the watch's own background task applies it.
        await until(lambda: md.throttler.level.value == "conservative")
        assert md.stats()["control"]["applied"] >= 1
        entry = (await md.store.control.audit(md.throttler.provider, limit=1))[0]
        assert (entry.field, entry.actor, entry.to_value) == ("level", "cli", "conservative")
        assert entry.reason == "exchange is fragile today"


async def test_a_ban_earned_elsewhere_stops_a_running_process_and_its_lifting_restarts_it(
    open_md: OpenMd, exchange: SandboxServer, store_url: str, mystic_cli: MysticCli
) -> None:
    async with open_md() as banned_one, open_md() as other:
        await by_hand(other)
        await other.ticker("BTCUSDT")  # running, venue identified
        venue = other.throttler.provider
        # What the first process's throttler records on an HTTP 418 (store, audited).
        until_ms = time.time_ns() // 1_000_000 + 3_600_000
        await banned_one.store.control.save_ban(venue, until_ms, "HTTP 418 on /api/v3/depth")
        assert await other.control.poll() == 1
        sent = exchange.stats.total.requests
        with pytest.raises(Banned):
            await other.order_book("ETHUSDT", 5)
        assert exchange.stats.total.requests == sent, "a request went out during the ban"

        done = await asyncio.to_thread(
            mystic_cli,
            cli_env(exchange, store_url),
            "throttle",
            "ban",
            "clear",
            "--yes",
            "--reason",
            "ban was lifted by the exchange",
        )
        assert done.returncode == 0, done.stderr
        assert await other.control.poll() == 1
        book = await other.order_book("ETHUSDT", 5)
        assert book.layer is Layer.UPSTREAM
        entry = (await other.store.control.audit(venue, limit=1))[0]
        assert (entry.field, entry.actor, entry.to_value) == ("ban", "cli", None)


async def test_a_cache_clear_reaches_every_running_process(open_md: OpenMd) -> None:
    async with open_md() as one, open_md() as two:
        await by_hand(one, two)
        await two.ticker("BTCUSDT")
        await two.ticker("ETHUSDT")
        assert (await two.ticker("BTCUSDT")).layer is Layer.MEMORY
        done = await one.clear("BTC/USDT", reason="bad print")
        assert done["audit_id"] > 0
        assert await two.control.poll() == 1
        assert (await two.ticker("BTCUSDT")).layer is Layer.UPSTREAM
        assert (await two.ticker("ETHUSDT")).layer is Layer.MEMORY, "only BTCUSDT was cleared"
        # The clearing process applied its own clear already and skips its own entry.
        assert await one.control.poll() == 0
        entry = (await one.store.control.audit(one.throttler.provider, limit=1))[0]
        assert (entry.field, entry.to_value, entry.reason) == (
            "cache_clear",
            "BTCUSDT",
            "bad print",
        )


async def test_changes_of_another_venue_are_not_applied(open_md: OpenMd) -> None:
    async with open_md() as md:
        await by_hand(md)
        await md.store.control.save_level("binance-spot", "conservative", actor="ops", reason="")
        assert await md.control.poll() == 0
        assert md.throttler.level.value == "moderate"


async def test_mystic_clear_from_the_cli(
    open_md: OpenMd, exchange: SandboxServer, store_url: str, mystic_cli: MysticCli
) -> None:
    async with open_md() as md:
        await by_hand(md)
        await md.ticker("BTCUSDT")
        env = cli_env(exchange, store_url)
        done = await asyncio.to_thread(mystic_cli, env, "clear", "--json")
        assert done.returncode == 0, done.stderr
        assert '"symbol": null' in done.stdout
        assert await md.control.poll() == 1
        assert (await md.ticker("BTCUSDT")).layer is Layer.UPSTREAM
        bad = await asyncio.to_thread(mystic_cli, env, "clear", "BTC USDT")
        assert bad.returncode == 2
        assert "invalid symbol" in bad.stderr


async def test_a_refresh_that_fails_is_owed_until_it_succeeds(open_md: OpenMd) -> None:
    """A level change whose refresh fails (the store hiccups) is applied at a later poll, not
    lost because the log moved past its entry."""
    async with open_md() as md:
        await by_hand(md)
        calls: list[str] = []

        async def refresh() -> None:
            calls.append("refresh")
            if len(calls) == 2:  # the refresh of the level change
                raise OSError("store unreachable for a moment")
            await md.throttler.refresh_control()

        watch = ControlWatch(
            md.store.control,
            venue=lambda: md.throttler.provider,
            refresh=refresh,
            drop=lambda _: 0,
        )
        await watch.poll()  # where the log stands; one refresh for what came before
        venue = md.throttler.provider
        await md.store.control.save_level(venue, "aggressive", actor="ops", reason="calm day")
        with pytest.raises(OSError, match="unreachable"):
            await watch.poll()
        assert md.throttler.level.value == "moderate"
        assert await watch.poll() == 0  # nothing new in the log, but the refresh is owed
        assert md.throttler.level.value == "aggressive"
        assert len(calls) == 3


async def _read_coverage(md: MarketData, *symbols: str) -> None:
    """Store reads of each symbol's 1m coverage, which the store's query cache keeps."""
    for symbol in symbols:
        await md.store.candles.coverage(md.throttler.provider, symbol, "1m")


async def _cached(md: MarketData, symbol: str) -> bool:
    """Whether the store's query cache answers a read of ``symbol``'s coverage (a hit)."""
    before = md.store.cache.stats()["hits"]
    await _read_coverage(md, symbol)
    return bool(md.store.cache.stats()["hits"] > before)


async def test_a_clear_reaches_only_the_layers_it_names(open_md: OpenMd) -> None:
    """A memory-only clear drops memory entries in the other process and keeps its query
    cache; a query-cache-only clear then drops that symbol's query-cache entries and keeps
    memory. The audit entry names the layers and the symbol."""
    clock = Moved()  # memory entries never expire by time in this test
    async with open_md(clock=clock) as one, open_md(clock=clock) as two:
        await by_hand(one, two)
        await two.ticker("BTCUSDT")
        await two.ticker("ETHUSDT")
        await _read_coverage(two, "BTCUSDT", "ETHUSDT")
        assert await _cached(two, "BTCUSDT") and await _cached(two, "ETHUSDT")

        done = await one.clear("BTCUSDT", memory=True, redis=False, query_cache=False)
        assert await two.control.poll() == 1
        assert (await two.ticker("BTCUSDT")).layer is Layer.UPSTREAM
        assert await _cached(two, "BTCUSDT"), "a memory clear left the query cache alone"
        entry = (await one.store.control.audit(one.throttler.provider, limit=1))[0]
        assert (entry.id, entry.field, entry.to_value) == (
            done["audit_id"],
            "cache_clear:memory",
            "BTCUSDT",
        )

        await one.clear("BTC/USDT", memory=False, redis=False, query_cache=True, reason="r")
        assert await two.control.poll() == 1
        assert not await _cached(two, "BTCUSDT"), "the query-cache clear did not reach it"
        assert await _cached(two, "ETHUSDT"), "only BTCUSDT's query-cache entries go"
        assert (await two.ticker("BTCUSDT")).layer is Layer.MEMORY, "memory was kept"
        entry = (await one.store.control.audit(one.throttler.provider, limit=1))[0]
        assert (entry.field, entry.to_value) == ("cache_clear:query_cache", "BTCUSDT")


async def test_a_clear_of_every_symbol_and_layer_is_the_entry_older_processes_wrote(
    open_md: OpenMd,
) -> None:
    """An entry with no layers named (``cache_clear``, as every clear was written before
    layers could be chosen) clears memory and the query cache of every symbol; the clearing
    process clears its own at once and skips its entry."""
    clock = Moved()
    async with open_md(clock=clock) as one, open_md(clock=clock) as two:
        await by_hand(one, two)
        for md in (one, two):
            await md.ticker("BTCUSDT")
            await _read_coverage(md, "BTCUSDT", "ETHUSDT")
        # Written as before layers were named: field "cache_clear", every symbol "*".
        await one.store.control.note_clear(two.throttler.provider, None, actor="old")
        entry = (await one.store.control.audit(one.throttler.provider, limit=1))[0]
        assert (entry.field, entry.to_value) == ("cache_clear", "*")
        assert await two.control.poll() == 1
        assert (await two.ticker("BTCUSDT")).layer is Layer.UPSTREAM
        assert not await _cached(two, "BTCUSDT") and not await _cached(two, "ETHUSDT")

        done = await one.clear()
        assert done["memory"] >= 1 and done["query_cache"] >= 2
        assert not await _cached(one, "ETHUSDT")
        assert await one.control.poll() == 1  # the old-style entry; its own is skipped
        entry = (await one.store.control.audit(one.throttler.provider, limit=1))[0]
        assert (entry.field, entry.to_value) == ("cache_clear", "*")


async def test_a_clear_naming_no_layer_is_refused_and_writes_nothing(md: MarketData) -> None:
    """md.clear with every layer switched off is a ConfigError naming the layers, and
    nothing is written; an unknown layer for the log is a ValueError naming it."""
    head = await md.store.control.head()
    with pytest.raises(ConfigError, match="memory, redis and query_cache"):
        await md.clear(memory=False, redis=False, query_cache=False)
    with pytest.raises(ValueError, match="disk"):
        await md.store.control.note_clear("v", None, actor="x", layers=["memory", "disk"])
    assert await md.store.control.head() == head


def test_what_a_cache_clear_entry_names() -> None:
    """Reading an entry back: a bare ``cache_clear`` is every layer, a suffix names some,
    ``*`` is every symbol, and any other entry is no clear."""

    def entry(field: str, to: str | None) -> ControlChange:
        return ControlChange(1, "v", field, "ops", 0, None, to, "")

    every = frozenset(ControlRepository.CACHE_LAYERS)
    assert ControlRepository.cache_clear_of(entry("cache_clear", "*")) == (None, every)
    assert ControlRepository.cache_clear_of(entry("cache_clear", "BTCUSDT")) == ("BTCUSDT", every)
    assert ControlRepository.cache_clear_of(entry("cache_clear:memory+query_cache", "*")) == (
        None,
        frozenset({"memory", "query_cache"}),
    )
    assert ControlRepository.cache_clear_of(entry("level", "conservative")) is None
