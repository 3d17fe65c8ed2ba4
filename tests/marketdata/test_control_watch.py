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

from mystic_trading.errors import Banned
from mystic_trading.marketdata.answer import Layer
from mystic_trading.marketdata.control_watch import ControlWatch
from mystic_trading.marketdata.facade import MarketData
from mystic_trading.sandbox import SandboxServer

from ..conftest import MysticCli
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
