"""Store benchmark: Mystic's reads and writes against the bare drivers, on 1,000,000 candles.

Anchors, measured in the same run on the same table with the same SQL:

- SQLite: stdlib ``sqlite3`` (one connection, statements cached by the module), returning
  raw row tuples; and the same plus building the same ``Candle`` objects by hand
  (``Decimal(str)`` and ``Candle``, the fastest way we know: ``*_same_output``), to show
  what Mystic adds beyond that work.
- PostgreSQL: raw asyncpg (one connection, a prepared statement), returning Records; NUMERIC
  is decoded to ``Decimal`` by asyncpg for both sides.

A range read returns a ``CandleRange``, which holds the rows and builds each ``Candle`` on
first access. So every range is measured twice, on separate keys: the read alone against the
driver's rows (``*_range``: the goal), and the read plus building every candle
(``list(range)``) against the driver plus building the same candles by hand
(``*_range_all``). The first is what a consumer that touches a few candles or one column
pays; the second what one that walks every candle pays.

Mystic is measured through its public API with the query cache on; every key is read once,
so every Mystic read is a cache MISS and pays the cache's bookkeeping too. Ratios are
Mystic's median over the anchor's median. ``--quick`` runs a small table for a few seconds
(the test suite runs it); ``--json`` prints one JSON object.

    python bench/store.py [--quick] [--json] [--rows N] [--pg-url URL | --no-pg]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import socket
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg

from mystic_trading.config import StoreSettings
from mystic_trading.models import Candle, Interval, Symbol
from mystic_trading.store import open_store
from mystic_trading.store._sql import CANDLE_GET, CANDLE_RANGE, TICKER_GET, for_backend

PROVIDER = "binance"
SYMBOL = Symbol("BTC", "USDT")
IV = Interval.M1
MIN = 60_000
RANGE = 1_000
DEFAULT_PG = os.environ.get(
    "MYSTIC_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)


def synthetic_rows(n: int, *, symbol: str = "BTC/USDT", seed: int = 7) -> list[tuple[Any, ...]]:
    """``n`` consecutive 1m candles of a random walk, as candle-table rows."""
    rnd = random.Random(seed)
    price = 30_000.0
    rows = []
    for i in range(n):
        o = price
        price = max(1.0, price + rnd.uniform(-25, 25))
        hi, lo = max(o, price) + rnd.uniform(0, 10), min(o, price) - rnd.uniform(0, 10)
        vol = rnd.uniform(0, 50)
        rows.append(
            (
                PROVIDER, symbol, "1m", i * MIN,
                f"{o:.2f}", f"{hi:.2f}", f"{lo:.2f}", f"{price:.2f}", f"{vol:.8f}",
                i * MIN + MIN - 1, f"{vol * price:.8f}", rnd.randint(1, 5000),
                f"{vol / 2:.8f}", f"{vol * price / 2:.8f}", True, 0,
            )
        )  # fmt: skip
    return rows


def candles_from_rows(rows: list[tuple[Any, ...]]) -> list[Candle]:
    d = Decimal
    return [
        Candle(SYMBOL, IV, r[3], d(r[4]), d(r[5]), d(r[6]), d(r[7]), d(r[8]), r[9], d(r[10]),
               r[11], d(r[12]), d(r[13]), r[14])
        for r in rows
    ]  # fmt: skip


def build_same(rows: list[Any]) -> list[Candle]:
    """What a hand-written reader does to turn SQLite rows into the same Candles."""
    d = Decimal
    make = Candle
    return [
        make(SYMBOL, IV, r[0], d(r[1]), d(r[2]), d(r[3]), d(r[4]), d(r[5]), r[6], d(r[7]),
             r[8], d(r[9]), d(r[10]), bool(r[11]))
        for r in rows
    ]  # fmt: skip


def build_same_native(rows: list[Any]) -> list[Candle]:
    """The same from asyncpg Records, whose decimals are decoded already."""
    make = Candle
    return [make(SYMBOL, IV, *r) for r in rows]


Timed = Callable[[Any], Awaitable[object]]


async def compare(cases: dict[str, Timed], keys: list[Any]) -> dict[str, float]:
    """Median seconds per case, interleaving the cases on every key to share any drift."""
    samples: dict[str, list[float]] = {name: [] for name in cases}
    timer = time.perf_counter
    order = list(cases.items())
    for i, key in enumerate(keys):
        for name, fn in order if i % 2 else reversed(order):
            t0 = timer()
            await fn(key)
            samples[name].append(timer() - t0)
    return {name: statistics.median(v) for name, v in samples.items()}


async def bench_sqlite(rows: int, points: int, ranges: int, upserts: int) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="mystic-bench-"))
    path = tmp / "bench.db"
    settings = StoreSettings(url=f"sqlite+aiosqlite:///{path}")
    out: dict[str, Any] = {}
    async with await open_store(settings) as store:
        raw = sqlite3.connect(path, isolation_level=None)
        raw.execute("BEGIN")
        raw.executemany(f"INSERT INTO candles VALUES ({', '.join('?' * 16)})", synthetic_rows(rows))
        raw.executemany(
            "INSERT INTO tickers (provider, symbol, price, time, fetched_at) VALUES (?,?,?,?,?)",
            [(PROVIDER, f"C{i}/USDT", "1.25", 1, 1) for i in range(1000)],
        )
        raw.execute("COMMIT")
        series = (PROVIDER, "BTC/USDT", "1m")
        rnd = random.Random(1)
        point_keys = rnd.sample(range(rows), points)
        range_keys = rnd.sample(range(rows - RANGE), 2 * ranges)  # two disjoint halves

        async def m_point(i: int) -> object:
            return await store.candles.get(PROVIDER, SYMBOL, IV, i * MIN)

        async def a_point(i: int) -> object:
            return raw.execute(CANDLE_GET, (*series, i * MIN)).fetchone()

        async def a_point_same(i: int) -> object:
            return build_same([raw.execute(CANDLE_GET, (*series, i * MIN)).fetchone()])[0]

        med = await compare(
            {"mystic": m_point, "anchor": a_point, "same": a_point_same}, point_keys
        )
        out.update(_figures("sqlite_point", med))

        async def m_ticker(i: int) -> object:
            return await store.snapshots.load_ticker(PROVIDER, f"C{i % 1000}/USDT")

        async def a_ticker(i: int) -> object:
            return raw.execute(TICKER_GET, (PROVIDER, f"C{i % 1000}/USDT")).fetchone()

        med = await compare({"mystic": m_ticker, "anchor": a_ticker}, point_keys)
        out.update(_figures("sqlite_ticker", med))

        async def m_range(i: int) -> object:
            got = await store.candles.range(PROVIDER, SYMBOL, IV, i * MIN, (i + RANGE) * MIN)
            assert len(got) == RANGE
            return got

        async def a_range(i: int) -> object:
            return raw.execute(CANDLE_RANGE, (*series, i * MIN, (i + RANGE) * MIN)).fetchall()

        med = await compare({"mystic": m_range, "anchor": a_range}, range_keys[:ranges])
        out.update(_figures("sqlite_range", med))

        async def m_range_all(i: int) -> object:
            got = await store.candles.range(PROVIDER, SYMBOL, IV, i * MIN, (i + RANGE) * MIN)
            return list(got)

        async def a_range_all(i: int) -> object:
            rows_ = raw.execute(CANDLE_RANGE, (*series, i * MIN, (i + RANGE) * MIN)).fetchall()
            return build_same(rows_)

        med = await compare(
            {"mystic": m_range_all, "anchor": a_range, "same": a_range_all}, range_keys[ranges:]
        )
        out.update(_figures("sqlite_range_all", med))

        fresh = candles_from_rows(synthetic_rows(upserts, symbol="ETH/USDT"))
        fresh = [Candle(Symbol("ETH", "USDT"), *_fields(c)[1:]) for c in fresh]
        t0 = time.perf_counter()
        await store.candles.upsert(PROVIDER, fresh)
        took = time.perf_counter() - t0
        out["sqlite_upsert_rows"] = upserts
        out["sqlite_upsert_s"] = took
        out["sqlite_upsert_100k_s"] = took * 100_000 / upserts
        raw.close()
    shutil.rmtree(tmp)
    return out


def _fields(c: Candle) -> tuple[Any, ...]:
    return tuple(getattr(c, name) for name in Candle.__struct_fields__)


def _figures(prefix: str, med: dict[str, float]) -> dict[str, float]:
    out = {
        f"{prefix}_mystic_median_us": med["mystic"] * 1e6,
        f"{prefix}_anchor_median_us": med["anchor"] * 1e6,
        f"{prefix}_ratio": med["mystic"] / med["anchor"],
    }
    if "same" in med:
        out[f"{prefix}_same_output_median_us"] = med["same"] * 1e6
        out[f"{prefix}_same_output_ratio"] = med["mystic"] / med["same"]
    return out


def pg_reachable(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5432), 2):
            return True
    except OSError:
        return False


async def bench_postgres(url: str, rows: int, points: int, ranges: int) -> dict[str, Any]:
    plain = url.replace("postgresql+asyncpg", "postgresql")
    schema = f"mystic_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(plain)
    await admin.execute(f'CREATE SCHEMA "{schema}"')
    out: dict[str, Any] = {}
    try:
        settings = StoreSettings(url=f"{url}?search_path={schema}")
        async with await open_store(settings) as store:
            raw = await asyncpg.connect(plain, server_settings={"search_path": schema})
            records = [
                (*r[:4], *(Decimal(v) for v in r[4:9]), r[9], Decimal(r[10]), r[11],
                 Decimal(r[12]), Decimal(r[13]), r[14], r[15])
                for r in synthetic_rows(rows)
            ]  # fmt: skip
            await raw.copy_records_to_table("candles", records=records, schema_name=schema)
            await raw.execute("ANALYZE candles")
            series = (PROVIDER, "BTC/USDT", "1m")
            get = await raw.prepare(for_backend(CANDLE_GET, "postgresql"))
            rng = await raw.prepare(for_backend(CANDLE_RANGE, "postgresql"))
            rnd = random.Random(2)

            async def m_point(i: int) -> object:
                return await store.candles.get(PROVIDER, SYMBOL, IV, i * MIN)

            async def a_point(i: int) -> object:
                return await get.fetchrow(*series, i * MIN)

            med = await compare(
                {"mystic": m_point, "anchor": a_point}, rnd.sample(range(rows), points)
            )
            out.update(_figures("pg_point", med))

            async def m_range(i: int) -> object:
                return await store.candles.range(PROVIDER, SYMBOL, IV, i * MIN, (i + RANGE) * MIN)

            async def a_range(i: int) -> object:
                return await rng.fetch(*series, i * MIN, (i + RANGE) * MIN)

            range_keys = rnd.sample(range(rows - RANGE), 2 * ranges)  # two disjoint halves
            med = await compare({"mystic": m_range, "anchor": a_range}, range_keys[:ranges])
            out.update(_figures("pg_range", med))

            async def m_range_all(i: int) -> object:
                got = await store.candles.range(PROVIDER, SYMBOL, IV, i * MIN, (i + RANGE) * MIN)
                return list(got)

            async def a_range_all(i: int) -> object:
                return build_same_native(await rng.fetch(*series, i * MIN, (i + RANGE) * MIN))

            med = await compare(
                {"mystic": m_range_all, "anchor": a_range, "same": a_range_all},
                range_keys[ranges:],
            )
            out.update(_figures("pg_range_all", med))
            await raw.close()
    finally:
        await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await admin.close()
    return out


GOALS: tuple[tuple[str, str, float | None], ...] = (
    ("SQLite point read (one candle)", "sqlite_point", 3.0),
    ("SQLite point read (latest ticker)", "sqlite_ticker", 3.0),
    ("SQLite 1,000-candle range", "sqlite_range", 1.5),
    ("  same, + build every Candle", "sqlite_range_all", None),
    ("PostgreSQL point read", "pg_point", 1.5),
    ("PostgreSQL 1,000-candle range", "pg_range", 1.5),
    ("  same, + build every Candle", "pg_range_all", None),
)


def print_table(r: dict[str, Any]) -> None:
    print("Mystic reads are query-cache misses; 'same-output' anchors build the same Candles.")
    print(f"{'read':36} {'mystic us':>10} {'anchor us':>10} {'ratio':>6} {'goal':>5}"
          f" {'same-output us':>15} {'ratio':>6}")  # fmt: skip
    for label, key, goal in GOALS:
        if f"{key}_ratio" not in r:
            print(f"{label:36} {'skipped (server not reachable)':>40}")
            continue
        same = r.get(f"{key}_same_output_median_us")
        same_txt = f"{same:15.1f} {r[f'{key}_same_output_ratio']:6.2f}" if same else ""
        goal_txt = f"{goal:5.1f}" if goal else f"{'-':>5}"
        print(
            f"{label:36} {r[f'{key}_mystic_median_us']:10.1f} "
            f"{r[f'{key}_anchor_median_us']:10.1f} {r[f'{key}_ratio']:6.2f} {goal_txt} {same_txt}"
        )
    print(
        f"SQLite upsert of {r['sqlite_upsert_rows']:,} candles: {r['sqlite_upsert_s']:.3f} s "
        f"({r['sqlite_upsert_100k_s']:.3f} s per 100,000; goal 1.0 s)"
    )


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small table, few iterations")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--rows", type=int, help="candles in the table (default 1,000,000)")
    ap.add_argument("--pg-url", default=DEFAULT_PG)
    ap.add_argument("--no-pg", action="store_true", help="skip PostgreSQL")
    args = ap.parse_args()
    if args.quick:
        rows, points, ranges, upserts = args.rows or 20_000, 200, 30, 5_000
    else:
        rows, points, ranges, upserts = args.rows or 1_000_000, 3_000, 300, 100_000
    result: dict[str, Any] = {"rows": rows, "quick": args.quick}
    result.update(await bench_sqlite(rows, points, ranges, upserts))
    pg_ok = not args.no_pg and pg_reachable(args.pg_url)
    result["pg_reachable"] = pg_ok
    if pg_ok:
        result.update(await bench_postgres(args.pg_url, rows, points, ranges))
    if args.json:
        print(json.dumps(result, sort_keys=True))
    else:
        print_table(result)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
