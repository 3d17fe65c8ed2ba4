"""Several processes on one database: concurrent writers, concurrent upgrades, SIGKILL."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from pathlib import Path

import pytest

from mystic_trading.config import StoreSettings
from mystic_trading.store import Store, head_revision, migration_status

from .conftest import BTC, MIN, OpenStore

CHILD = str(Path(__file__).with_name("_child.py"))


async def _spawn(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        CHILD,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def _finish(proc: asyncio.subprocess.Process) -> str:
    out, err = await asyncio.wait_for(proc.communicate(), timeout=90)
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def test_two_processes_write_one_database(store_url: str, store: Store) -> None:
    """Interleaved batches from two processes all land; neither fails on the lock."""
    procs = [await _spawn("write", store_url, str(first), "2000", "100") for first in (0, 2000)]
    for proc in procs:
        await _finish(proc)
    got = await store.candles.range("binance", BTC, "1m", 0, 4000 * MIN)
    assert [c.open_time for c in got] == [t * MIN for t in range(4000)]


async def test_two_processes_upgrading_at_once_both_succeed(store_url: str, tmp_path: Path) -> None:
    """Two upgrades of an empty database, started at the same instant, race on the lock; both
    end at head. On SQLite two pairs run, each on a new file: both processes switching a
    new file to WAL at once made SQLite refuse one at once ("database is locked", no busy
    wait), in about a third of such pairs."""
    urls = [store_url]
    if store_url.startswith("sqlite"):
        urls = [f"sqlite+aiosqlite:///{tmp_path / f'pair{i}' / 'mystic.db'}" for i in range(2)]
    start_at = f"{time.time() + 3.0:.3f}"  # after every child has imported
    procs = [await _spawn("migrate", url, start_at) for url in urls for _ in range(2)]
    outputs = [await _finish(p) for p in procs]
    assert [o.strip() for o in outputs] == [head_revision()] * len(procs)
    for url in urls:
        status = await migration_status(StoreSettings(url=url))
        assert status.up_to_date


@pytest.mark.slow
async def test_sigkill_mid_batch_leaves_all_or_nothing(
    store_url: str, make_store: OpenStore
) -> None:
    """A writer killed during a large batch leaves none of it or all of it, never part."""
    n = 150_000
    proc = await _spawn("big_batch", store_url, str(n))
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), timeout=60)
    assert line.strip() == b"executing"
    proc.send_signal(signal.SIGKILL)
    await proc.wait()
    assert proc.returncode == -signal.SIGKILL
    store = await make_store()
    stored = len(await store.candles.range("binance", BTC, "1m", 0, n * MIN))
    covered = await store.candles.coverage("binance", BTC, "1m")
    assert (stored, covered) in ((0, []), (n, [(0, n * MIN)]))
