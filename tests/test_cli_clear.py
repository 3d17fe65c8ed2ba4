"""`mystic clear` as a real subprocess on a real store (and Redis): the layer switches and
--symbol, what the control log records for running processes, stored candles never
deleted, and bad input refused with nothing written. How running processes apply the
entry is tests/marketdata/test_control_watch.py's."""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from mystic_trading.config import StoreSettings
from mystic_trading.models import Candle, Interval, Symbol
from mystic_trading.store import ControlChange, open_store

from .conftest import MysticCli, free_port

Run = Callable[..., subprocess.CompletedProcess[str]]
BTC = Symbol("BTC", "USDT")
MIN = 60_000
START = 1_700_000_040_000  # a minute's open time
STORED = 30


@pytest.fixture
def venue() -> str:
    """A venue id of this test's own, so its Redis keys are its own on the shared server."""
    return f"sandbox-s0-clear{uuid.uuid4().hex[:10]}"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "t.db"


@pytest.fixture
def run(tmp_path: Path, db: Path, venue: str, mystic_cli: MysticCli) -> Run:
    """`mystic clear --venue VENUE ARGS` on this test's SQLite store, the exchange nowhere
    (clear never contacts it)."""
    base = {
        "MYSTIC_STORE__URL": f"sqlite+aiosqlite:///{db}",
        "MYSTIC_PROVIDER__BASE_URL": "http://127.0.0.1:9",
        "XDG_DATA_HOME": str(tmp_path / "xdg"),
    }

    def call(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return mystic_cli({**base, **(env or {})}, "clear", "--venue", venue, *args, timeout_s=120)

    return call


def _candle(open_time: int) -> Candle:
    one = Decimal("1")
    return Candle(
        BTC, Interval.M1, open_time, one, one, one, one, one, open_time + MIN - 1, one, 1, one, one,
        True,
    )  # fmt: skip


async def _store_candles(db: Path, venue: str) -> None:
    async with await open_store(StoreSettings(url=f"sqlite+aiosqlite:///{db}")) as store:
        end = START + STORED * MIN
        candles = [_candle(t) for t in range(START, end, MIN)]
        await store.candles.save_range(venue, BTC, Interval.M1, START, end, candles)


async def _stored(db: Path, venue: str) -> tuple[int, list[tuple[int, int]]]:
    """How many candles are stored, and the coverage map."""
    async with await open_store(StoreSettings(url=f"sqlite+aiosqlite:///{db}")) as store:
        found = await store.candles.range(venue, BTC, Interval.M1, START, START + STORED * MIN)
        return len(found), await store.candles.coverage(venue, BTC, Interval.M1)


async def _audit(db: Path, venue: str) -> list[ControlChange]:
    async with await open_store(StoreSettings(url=f"sqlite+aiosqlite:///{db}")) as store:
        return await store.control.audit(venue)


def _json(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert done.returncode == 0, done.stderr
    data: dict[str, Any] = json.loads(done.stdout)
    return data


def test_no_switch_clears_every_layer_and_keeps_stored_candles(
    run: Run, db: Path, venue: str
) -> None:
    """With no layer switch every layer is cleared: the control log gets the entry every
    running process applies (``cache_clear`` for every symbol); the stored candles and their
    coverage are all still there."""
    asyncio.run(_store_candles(db, venue))
    before = asyncio.run(_stored(db, venue))
    data = _json(run("--json", "--reason", "bad prints"))
    assert data["layers"] == ["memory", "redis", "query_cache"]
    assert (data["symbol"], data["venue"], data["redis_configured"]) == (None, venue, False)
    assert data["stored_candles_deleted"] == 0 and data["processes_alive"] == 0
    [entry] = asyncio.run(_audit(db, venue))
    assert (entry.id, entry.field, entry.to_value) == (data["audit_id"], "cache_clear", "*")
    assert (entry.actor, entry.reason) == ("cli", "bad prints")
    assert asyncio.run(_stored(db, venue)) == before
    assert before[0] == STORED


def test_layer_switches_and_symbol_are_recorded_for_the_running_processes(
    run: Run, db: Path, venue: str
) -> None:
    """--memory --query-cache --symbol: the entry names those two layers and the symbol in
    the exchange's form; the text says what each layer did and that candles are kept."""
    data = _json(run("--memory", "--query-cache", "--symbol", "btc/usdt", "--json"))
    assert (data["layers"], data["symbol"]) == (["memory", "query_cache"], "BTCUSDT")
    assert data["redis_keys_deleted"] == 0
    text = run("--query-cache", "ETHUSDT")  # the positional symbol still works
    assert text.returncode == 0, text.stderr
    assert f"cleared the cache of ETHUSDT on {venue} (query_cache)" in text.stdout
    assert "Stored candles are kept" in text.stdout
    newest, older = asyncio.run(_audit(db, venue))
    assert (newest.field, newest.to_value) == ("cache_clear:query_cache", "ETHUSDT")
    assert (older.field, older.to_value) == ("cache_clear:memory+query_cache", "BTCUSDT")


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("--symbol", "BTC USDT"), "invalid symbol 'BTC USDT'"),
        (("BTC$USDT",), "invalid symbol 'BTC$USDT'"),
        (
            ("BTCUSDT", "--symbol", "ETHUSDT"),
            "two symbols given ('BTCUSDT' and --symbol 'ETHUSDT')",
        ),
        (("--venue", "no venue!"), "not a venue id"),
    ],
)
def test_bad_input_is_exit_2_naming_it_and_writes_nothing(
    run: Run, db: Path, args: tuple[str, ...], named: str
) -> None:
    """A symbol that is no symbol, two different symbols, or a venue that is no venue id:
    exit 2, the fault named, and the store not even created."""
    refused = run(*args)
    assert refused.returncode == 2, refused.stdout
    assert named in " ".join(refused.stderr.split())
    assert not db.exists()


def test_help_says_what_clear_never_deletes(run: Run) -> None:
    """--help names every switch and says stored candles are never deleted."""
    shown = run("--help")
    assert shown.returncode == 0, shown.stderr
    text = " ".join(shown.stdout.split())
    for option in ("--memory", "--redis", "--query-cache", "--symbol", "--json", "--reason"):
        assert option in text
    assert "Stored candles are never deleted by clear" in text
    assert "none given clears all three" in text


def _keys(redis_url: str, pattern: str) -> set[str]:
    async def scan() -> set[str]:
        client = aioredis.Redis.from_url(redis_url)
        try:
            return {k.decode() async for k in client.scan_iter(pattern)}
        finally:
            await client.aclose()

    return asyncio.run(scan())


@pytest.fixture
def seeded(redis_url: str, venue: str) -> Iterator[dict[str, list[str]]]:
    """The venue's cached answers in Redis, with look-alikes that must survive a symbol's
    clear (BTCUSD beside BTCUSDT, another venue's BTCUSDT); all deleted after."""
    prefix = f"mystic:md:{venue}:"
    keys = {
        "btc": [f"{prefix}t|BTCUSDT", f"{prefix}b|BTCUSDT|20", f"{prefix}c|BTCUSDT|1m|0|60000"],
        "others": [f"{prefix}t|BTCUSD", f"{prefix}t|ETHUSDT", f"mystic:md:{venue}x:t|BTCUSDT"],
    }

    async def seed(delete: bool) -> None:
        client = aioredis.Redis.from_url(redis_url)
        try:
            names = keys["btc"] + keys["others"]
            await (client.delete(*names) if delete else client.mset(dict.fromkeys(names, "{}")))
        finally:
            await client.aclose()

    asyncio.run(seed(delete=False))
    yield keys
    asyncio.run(seed(delete=True))


@pytest.mark.redis
def test_redis_only_clear_of_one_symbol(
    run: Run, db: Path, redis_url: str, venue: str, seeded: dict[str, list[str]]
) -> None:
    """--redis --symbol BTCUSDT deletes that symbol's tickers, books and candle windows of
    the venue, and nothing of BTCUSD, ETHUSDT or another venue; the entry names Redis."""
    data = _json(
        run("--redis", "--symbol", "BTCUSDT", "--json", env={"MYSTIC_REDIS_URL": redis_url})
    )
    assert (data["layers"], data["redis_configured"]) == (["redis"], True)
    assert data["redis_keys_deleted"] == len(seeded["btc"])
    assert data["redis_error"] is None
    assert _keys(redis_url, f"mystic:md:{venue}*") == set(seeded["others"])
    [entry] = asyncio.run(_audit(db, venue))
    assert (entry.field, entry.to_value) == ("cache_clear:redis", "BTCUSDT")


@pytest.mark.redis
def test_every_symbol_in_redis_and_stored_candles_kept(
    run: Run, db: Path, redis_url: str, venue: str, seeded: dict[str, list[str]]
) -> None:
    """A clear of every symbol deletes every key of the venue (not another venue's), and
    the store still holds every candle."""
    asyncio.run(_store_candles(db, venue))
    before = asyncio.run(_stored(db, venue))
    data = _json(run("--json", env={"MYSTIC_REDIS_URL": redis_url}))
    prefix = f"mystic:md:{venue}:"
    mine = [k for k in seeded["btc"] + seeded["others"] if k.startswith(prefix)]
    assert data["redis_keys_deleted"] == len(mine)
    assert _keys(redis_url, f"{prefix}*") == set()
    assert _keys(redis_url, f"mystic:md:{venue}x:*") == {f"mystic:md:{venue}x:t|BTCUSDT"}
    assert asyncio.run(_stored(db, venue)) == before


def test_redis_unreachable_is_exit_1_and_the_rest_still_reaches_the_processes(
    run: Run, db: Path, venue: str
) -> None:
    """Redis on a closed port: exit 1 saying Redis was not cleared, and the entry for the
    running processes' memory and query cache is written all the same."""
    env = {"MYSTIC_REDIS_URL": f"redis://:hunter2@127.0.0.1:{free_port()}/0"}
    failed = run("--json", env=env)
    assert failed.returncode == 1, failed.stderr
    data = json.loads(failed.stdout)
    assert data["redis_error"] and "hunter2" not in failed.stdout
    [entry] = asyncio.run(_audit(db, venue))
    assert (entry.id, entry.field) == (data["audit_id"], "cache_clear")
    text = run("--redis", env=env)
    assert text.returncode == 1
    assert "Redis was not cleared" in text.stderr and "hunter2" not in text.stderr
