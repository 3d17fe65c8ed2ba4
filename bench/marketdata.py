"""MarketData against its anchors, in one run, over a real sandbox exchange (a subprocess on
127.0.0.1, so it never competes with the client for the GIL).

1. L1 hit: ``await md.ticker("BTC/USDT")`` served from memory, against a cachetools TTLCache
   get, a cashews in-memory hit and a bare ``async def`` returning a dict.
2. Stampede: 1,000 concurrent requests for one cold key; upstream calls counted by the exchange.
3. Cold against warm: median of a first request against the same request repeated.
4. Restart: closed ranges read, MarketData closed and reopened on the same store, read again.
5. Zipf workload: requests over the symbols x {ticker, book, last 100 1m candles, last 200 1h
   candles, a past day of 1m candles} arriving on one schedule, the sandbox at 50 ms latency.
   Upstream calls of MarketData and of a plain cachetools TTL cache (same TTLs, no single
   flight, no store) are counted by the exchange; "no cache" is one call per request (plus
   pages); the theoretical minimum is one call per key per freshness period plus
   ceil(candles / 1000) pages per cold range, computed from the times requests were really
   issued, a value fresh for its TTL from the request that fetched it. (Any real cache is
   fresh from when the answer arrives, a latency later, so it can come in under 1.0; the
   figure with the run's median upstream latency added is reported too.)

``--quick`` runs everything small in seconds (the test suite runs it); ``--json`` prints one
JSON object of figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import cachetools
import httpx
import msgspec
from cashews import Cache

from mystic_trading.config import Settings
from mystic_trading.marketdata.facade import MarketData
from mystic_trading.models import Interval
from mystic_trading.sandbox import SYMBOLS as SANDBOX_SYMBOLS

MINUTE, HOUR, DAY = 60_000, 3_600_000, 86_400_000
TICKER_TTL, BOOK_TTL = 1.5, 0.5


# -- the sandbox --------------------------------------------------------------------------------


class Exchange:
    """A sandbox subprocess; counters read over HTTP."""

    def __init__(self, latency_ms: float) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mystic_trading.sandbox", "--port", "0",
             "--weight-limit", str(10**9), "--latency-ms", str(latency_ms),
             "--log-level", "warning"],
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            if "sandbox ready" in line:
                fields = dict(p.split("=", 1) for p in line.split() if "=" in p)
                self.url, self.token = fields["url"], fields["admin_token"]
                break
        else:
            raise RuntimeError("the sandbox did not start")

    def requests(self) -> dict[str, int]:
        data = httpx.get(f"{self.url}/sandbox/stats").json()
        out = {k: v["requests"] for k, v in data["by_endpoint"].items()}
        out["total"] = data["total"]["requests"]
        return out

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
        if self.proc.stderr is not None:
            self.proc.stderr.close()


def delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


def settings(url: str, db: Path, **cache: float) -> Settings:
    return Settings(
        store={"url": f"sqlite+aiosqlite:///{db}"},
        provider={"base_url": url},
        throttle={"level": "unlimited", "safety_margin": 0.02},
        cache={"ticker_ttl_s": TICKER_TTL, "book_ttl_s": BOOK_TTL, **cache},
    )


# -- 1. L1 hit ----------------------------------------------------------------------------------


def median_per_call(samples: list[float], per_batch: int) -> float:
    return statistics.median(samples) / per_batch * 1e6


async def bench_l1(url: str, tmp: Path, batches: int) -> dict[str, float]:
    """Median per-call cost of a memory hit; batches of each contender interleaved, so drift
    in the machine's speed during the run falls on all of them alike."""
    per_batch = 2000
    ttl: cachetools.TTLCache[str, dict[str, str]] = cachetools.TTLCache(100_000, 3600)
    ttl["BTCUSDT"] = {"price": "1"}
    cache = Cache()
    cache.setup("mem://")
    await cache.set("BTCUSDT", {"price": "1"}, expire=3600)
    value = {"price": "1"}

    async def bare() -> dict[str, str]:
        return value

    samples: dict[str, list[float]] = defaultdict(list)
    async with MarketData.open(settings(url, tmp / "l1.db", ticker_ttl_s=3600)) as md:
        await md.ticker("BTC/USDT")
        for _ in range(batches):
            t0 = time.perf_counter()
            for _ in range(per_batch):
                await md.ticker("BTC/USDT")
            samples["mystic"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            for _ in range(per_batch):
                ttl.get("BTCUSDT")
            samples["cachetools"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            for _ in range(per_batch):
                await cache.get("BTCUSDT")
            samples["cashews"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            for _ in range(per_batch):
                await bare()
            samples["bare_async_def"].append(time.perf_counter() - t0)
    return {name: median_per_call(times, per_batch) for name, times in samples.items()}


# -- 2-4. stampede, cold/warm, restart ----------------------------------------------------------


async def bench_stampede(ex: Exchange, tmp: Path) -> int:
    async with MarketData.open(settings(ex.url, tmp / "stampede.db")) as md:
        await md.exchange_info()
        before = ex.requests()
        await asyncio.gather(*(md.ticker("ETH/BTC") for _ in range(1000)))
        return delta(ex.requests(), before).get("ticker/24hr", 0)


async def bench_cold_warm(url: str, tmp: Path, symbols: list[str]) -> dict[str, Any]:
    cold: dict[str, list[float]] = defaultdict(list)
    warm: dict[str, list[float]] = defaultdict(list)
    db = tmp / "coldwarm.db"
    async with MarketData.open(settings(url, db, ticker_ttl_s=60)) as md:
        await md.exchange_info()
        for name in symbols:
            for kind in ("ticker", "candles"):
                for attempt in range(21):
                    t0 = time.perf_counter()
                    if kind == "ticker":
                        await md.ticker(name)
                    else:
                        await md.candles(name, "1h", limit=200)
                    (cold if attempt == 0 else warm)[kind].append(time.perf_counter() - t0)
    result: dict[str, Any] = {}
    for kind in ("ticker", "candles"):
        c, w = statistics.median(cold[kind]), statistics.median(warm[kind])
        result[kind] = {"cold_ms": c * 1e3, "warm_us": w * 1e6, "speedup_pct": 100 * (1 - w / c)}
    return result


async def bench_restart(ex: Exchange, tmp: Path, quick: bool) -> dict[str, int]:
    db = tmp / "restart.db"
    ranges = []
    async with MarketData.open(settings(ex.url, db)) as md:
        now = md.provider.now_ms()
        rng = random.Random(3)
        most = 300 if quick else 3000
        for name in ("BTCUSDT", "ETHUSDT", "SOLUSDT", "NEWUSDT", "ETHBTC"):
            for iv in (Interval.M1, Interval.H1, Interval.D1):
                step = iv.ms or DAY
                start = iv.floor(now - rng.randrange(100, 1500) * step)
                ranges.append((name, iv, start, start + rng.randrange(50, most) * step))
        before = ex.requests()
        for name, iv, start, end in ranges:
            await md.candles(name, iv, start=start, end=min(end, iv.floor(now)))
        first = delta(ex.requests(), before).get("klines", 0)
    before = ex.requests()
    async with MarketData.open(settings(ex.url, db)) as md:
        for name, iv, start, end in ranges:
            await md.candles(name, iv, start=start, end=min(end, iv.floor(now)))
    return {
        "first_run_calls": first,
        "after_restart_calls": delta(ex.requests(), before).get("klines", 0),
    }


# -- 5. Zipf workload ---------------------------------------------------------------------------


class Req(msgspec.Struct, frozen=True, gc=False):
    """One scheduled request. Not tracked by the GC: 100,000 of them live through the run,
    and the harness must not lengthen the collections of the process it measures."""

    at: float
    kind: str  # ticker | book | m1 | h1 | day
    symbol: str
    day: int = 0


def schedule(n: int, seconds: float, symbols: list[str], seed: int = 1) -> list[Req]:
    rng = random.Random(seed)
    weights = [1 / (k**1.1) for k in range(1, len(symbols) + 1)]
    kinds, kind_w = ("ticker", "book", "m1", "h1", "day"), (0.40, 0.15, 0.20, 0.10, 0.15)
    days = list(range(30, 40))
    day_w = [1 / (k**1.1) for k in range(1, len(days) + 1)]
    times = sorted(rng.uniform(0, seconds) for _ in range(n))
    out = []
    for t in times:
        kind = rng.choices(kinds, kind_w)[0]
        symbol = rng.choices(symbols, weights)[0]
        out.append(Req(t, kind, symbol, rng.choices(days, day_w)[0] if kind == "day" else 0))
    return out


def greedy_calls(times: list[float], valid_until: Any) -> int:
    """Calls an ideal cache makes: fetch at a request when the last fetch is no longer valid."""
    calls, until = 0, -math.inf
    for t in times:
        if t >= until:
            calls += 1
            until = valid_until(t)
    return calls


def theoretical_minimum(reqs: list[Req], t0_ms: int, latency: dict[str, float]) -> dict[str, int]:
    """One call per key per freshness period; ceil(candles / 1000) pages per cold range.

    ``latency[kind]`` (seconds) is when a fetch's answer arrives; its TTL runs from then.
    """
    by_key: dict[tuple[str, ...], list[float]] = defaultdict(list)
    for r in reqs:
        by_key[(r.kind, r.symbol, str(r.day))].append(r.at)
    out = {"exchangeInfo": 1, "ticker": 0, "book": 0, "candles_recent": 0, "candles_past": 0}
    for (kind, _, _), times in by_key.items():
        if kind == "ticker":
            out["ticker"] += greedy_calls(times, lambda t: t + latency["ticker"] + TICKER_TTL)
        elif kind == "book":
            out["book"] += greedy_calls(times, lambda t: t + latency["book"] + BOOK_TTL)
        elif kind in ("m1", "h1"):
            step = MINUTE if kind == "m1" else HOUR

            def until(t: float, step: int = step) -> float:
                boundary = ((t0_ms + t * 1000) // step + 1) * step
                return min(t + latency["candles"] + TICKER_TTL, (boundary - t0_ms) / 1000)

            out["candles_recent"] += greedy_calls(times, until)
        else:
            out["candles_past"] += math.ceil(1440 / 1000)
    out["total"] = sum(out.values())
    return out


def no_cache_calls(reqs: list[Req]) -> int:
    return sum(2 if r.kind == "day" else 1 for r in reqs)


def day_start(now_ms: int, day: int) -> int:
    return (now_ms // DAY - day) * DAY


async def run_schedule(reqs: list[Req], do: Any) -> tuple[float, int, list[Req]]:
    """Fire each request at its time; returns elapsed seconds, errors, and the requests with
    the times they were really issued (a client that falls behind its schedule issues them
    later, and the minimum must be computed from what really happened)."""
    errors = 0
    start = time.monotonic()
    # Only the requests still running are held: 100,000 finished tasks kept to the end would
    # be 400,000 objects more for the GC to walk in the process being measured.
    running: set[asyncio.Task[None]] = set()
    issued: list[Req] = []

    async def one(r: Req) -> None:
        nonlocal errors
        try:
            await do(r)
        except Exception:
            errors += 1

    for r in reqs:
        delay = start + r.at - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        issued.append(Req(time.monotonic() - start, r.kind, r.symbol, r.day))
        task = asyncio.create_task(one(r))
        running.add(task)
        task.add_done_callback(running.discard)
    while running:
        await asyncio.gather(*running)
    return time.monotonic() - start, errors, issued


async def zipf_mystic(ex: Exchange, tmp: Path, reqs: list[Req]) -> dict[str, Any]:
    # 500 distinct past days of 1,440 candles hold ~0.8 GiB as Decimals: a deployment serving
    # them sizes its memory cache for them (the default 256 MiB would re-read them from the
    # store: no upstream call, but CPU the client then lacks to keep to the schedule).
    db = tmp / "zipf.db"
    async with MarketData.open(settings(ex.url, db, memory_max_mib=1536)) as md:
        now = md.provider.now_ms()

        async def do(r: Req) -> None:
            if r.kind == "ticker":
                await md.ticker(r.symbol)
            elif r.kind == "book":
                await md.order_book(r.symbol, 20)
            elif r.kind == "m1":
                await md.candles(r.symbol, "1m", limit=100)
            elif r.kind == "h1":
                await md.candles(r.symbol, "1h", limit=200)
            else:
                start = day_start(now, r.day)
                await md.candles(r.symbol, "1m", start=start, end=start + DAY)

        before = ex.requests()
        t0_ms = md.provider.now_ms()
        elapsed, errors, issued = await run_schedule(reqs, do)
        calls = delta(ex.requests(), before)
        stats = md.stats()
    latency = {
        kind: data["latency"].get("upstream", {}).get("p50_us", 0.0) / 1e6
        for kind, data in stats["by_kind"].items()
    }
    stale = sum(k["stale"] for k in stats["by_kind"].values())
    return {
        "calls": calls.get("total", 0),
        "by_endpoint": calls,
        "errors": errors,
        "elapsed_s": elapsed,
        "t0_ms": t0_ms,
        "stale": stale,
        "latency_s": latency,
        "issued": issued,
    }


async def zipf_cachetools(ex: Exchange, reqs: list[Req]) -> dict[str, Any]:
    """A plain TTL cache in front of the same exchange: same TTLs, no single flight, no store."""
    tickers: cachetools.TTLCache[str, Any] = cachetools.TTLCache(10_000, TICKER_TTL)
    books: cachetools.TTLCache[str, Any] = cachetools.TTLCache(10_000, BOOK_TTL)
    recent: cachetools.TTLCache[tuple[Any, ...], Any] = cachetools.TTLCache(10_000, TICKER_TTL)
    past: cachetools.TTLCache[tuple[Any, ...], Any] = cachetools.TTLCache(10_000, 86_400)
    # At most 64 requests in flight, the pool's size: more only queue inside httpcore, whose
    # pool assignment is quadratic in the number waiting.
    gate = asyncio.Semaphore(64)
    async with httpx.AsyncClient(base_url=ex.url, limits=httpx.Limits(max_connections=64)) as c:
        now = int(time.time() * 1000)

        async def get(path: str, params: dict[str, Any]) -> Any:
            async with gate:
                return (await c.get(path, params=params)).json()

        async def klines(symbol: str, interval: str, start: int, end: int) -> list[Any]:
            rows: list[Any] = []
            while start < end:
                page = await get("/api/v3/klines", {
                    "symbol": symbol, "interval": interval, "startTime": start,
                    "endTime": end - 1, "limit": 1000})  # fmt: skip
                rows.extend(page)
                if len(page) < 1000:
                    break
                start = page[-1][0] + 1
            return rows

        async def do(r: Req) -> None:
            if r.kind == "ticker":
                if r.symbol not in tickers:
                    tickers[r.symbol] = await get("/api/v3/ticker/24hr", {"symbol": r.symbol})
            elif r.kind == "book":
                if r.symbol not in books:
                    books[r.symbol] = await get("/api/v3/depth", {"symbol": r.symbol, "limit": 20})
            elif r.kind in ("m1", "h1"):
                step = MINUTE if r.kind == "m1" else HOUR
                n = 100 if r.kind == "m1" else 200
                end = (int(time.time() * 1000) // step + 1) * step
                key = (r.symbol, r.kind, end)
                if key not in recent:
                    recent[key] = await klines(r.symbol, r.kind[1] + r.kind[0], end - n * step, end)
            else:
                key = (r.symbol, r.day)
                if key not in past:
                    start = day_start(now, r.day)
                    past[key] = await klines(r.symbol, "1m", start, start + DAY)

        before = ex.requests()
        elapsed, errors, _ = await run_schedule(reqs, do)
        calls = delta(ex.requests(), before)
    return {
        "calls": calls.get("total", 0),
        "by_endpoint": calls,
        "errors": errors,
        "elapsed_s": elapsed,
    }


# -- main ---------------------------------------------------------------------------------------


async def main(quick: bool, skip_anchor: bool = False) -> dict[str, Any]:
    n_symbols, n_requests, seconds = (10, 1200, 3.0) if quick else (50, 100_000, 60.0)
    symbols = [s.symbol for s in SANDBOX_SYMBOLS[:n_symbols]]
    ex = Exchange(latency_ms=50)
    try:
        with tempfile.TemporaryDirectory() as tmp_name:
            tmp = Path(tmp_name)
            phases: dict[str, float] = {}

            def done(name: str, figures: Any) -> None:
                print(f"{name}: {figures}", file=sys.stderr, flush=True)

            t = time.perf_counter()
            l1 = await bench_l1(ex.url, tmp, batches=10 if quick else 60)
            phases["l1"], t = time.perf_counter() - t, time.perf_counter()
            done("l1", l1)
            stampede = await bench_stampede(ex, tmp)
            phases["stampede"], t = time.perf_counter() - t, time.perf_counter()
            cold_warm = await bench_cold_warm(ex.url, tmp, symbols[:3] if quick else symbols[:10])
            phases["cold_warm"], t = time.perf_counter() - t, time.perf_counter()
            restart = await bench_restart(ex, tmp, quick)
            phases["restart"], t = time.perf_counter() - t, time.perf_counter()
            done("stampede, cold/warm, restart", (stampede, cold_warm, restart))
            reqs = schedule(n_requests, seconds, symbols)
            mystic = await zipf_mystic(ex, tmp, reqs)
            phases["zipf_mystic"], t = time.perf_counter() - t, time.perf_counter()
            done("zipf mystic", {k: v for k, v in mystic.items() if k != "issued"})
            if skip_anchor:
                anchor = {"calls": 0, "errors": 0, "elapsed_s": 0.0}
            else:
                anchor = await zipf_cachetools(ex, reqs)
            phases["zipf_cachetools"] = time.perf_counter() - t
    finally:
        ex.close()
    zero = dict.fromkeys(mystic["latency_s"], 0.0)
    minimum = theoretical_minimum(mystic["issued"], mystic["t0_ms"], zero)
    with_latency = theoretical_minimum(mystic["issued"], mystic["t0_ms"], mystic["latency_s"])
    return {
        "quick": quick,
        "phase_seconds": phases,
        "l1_hit_us": l1["mystic"],
        "l1_anchor_cachetools_get_us": l1["cachetools"],
        "l1_anchor_cashews_hit_us": l1["cashews"],
        "l1_anchor_bare_async_def_us": l1["bare_async_def"],
        "stampede_upstream_calls": stampede,
        "cold_warm": cold_warm,
        "cold_warm_speedup_pct": cold_warm["ticker"]["speedup_pct"],
        "restart_first_run_calls": restart["first_run_calls"],
        "restart_closed_range_calls": restart["after_restart_calls"],
        "zipf_requests": n_requests,
        "zipf_seconds": seconds,
        "zipf_mystic_elapsed_s": mystic["elapsed_s"],
        "zipf_cachetools_elapsed_s": anchor["elapsed_s"],
        "zipf_symbols": n_symbols,
        "zipf_minimum_calls": minimum["total"],
        "zipf_minimum_by_kind": minimum,
        "zipf_mystic_calls": mystic["calls"],
        "zipf_mystic_by_endpoint": mystic["by_endpoint"],
        "zipf_mystic_errors": mystic["errors"],
        "zipf_mystic_stale_answers": mystic["stale"],
        "zipf_upstream_latency_s": mystic["latency_s"],
        "zipf_cachetools_errors": anchor["errors"],
        "zipf_calls_over_minimum": mystic["calls"] / minimum["total"],
        "zipf_minimum_with_latency_calls": with_latency["total"],
        "zipf_calls_over_minimum_with_latency": mystic["calls"] / with_latency["total"],
        "zipf_cachetools_calls": anchor["calls"],
        "zipf_cachetools_over_minimum": anchor["calls"] / minimum["total"],
        "zipf_no_cache_calls": no_cache_calls(reqs),
        "zipf_no_cache_over_minimum": no_cache_calls(reqs) / minimum["total"],
    }


def table(r: dict[str, Any]) -> str:
    lines = [
        f"MarketData benchmark ({'quick' if r['quick'] else 'full'}), sandbox at 50 ms latency",
        "",
        "L1 hit, median per call              us",
        f"  await md.ticker('BTC/USDT')    {r['l1_hit_us']:8.2f}   goal <= 2.00",
        f"  cachetools TTLCache.get        {r['l1_anchor_cachetools_get_us']:8.2f}",
        f"  cashews mem:// hit             {r['l1_anchor_cashews_hit_us']:8.2f}",
        f"  bare async def -> dict         {r['l1_anchor_bare_async_def_us']:8.2f}",
        "",
        f"stampede: 1,000 concurrent cold requests -> {r['stampede_upstream_calls']} "
        "upstream call(s)",
        "",
        "cold against warm (median, same request)",
    ]
    for kind, v in r["cold_warm"].items():
        lines.append(
            f"  {kind:8} cold {v['cold_ms']:7.1f} ms   warm {v['warm_us']:8.1f} us   "
            f"{v['speedup_pct']:.2f}% faster"
        )
    lines += [
        "",
        f"restart: closed ranges re-read after a restart -> {r['restart_closed_range_calls']} "
        f"upstream calls (first run: {r['restart_first_run_calls']})",
        "",
        f"Zipf workload: {r['zipf_requests']:,} requests, {r['zipf_symbols']} symbols, "
        f"{r['zipf_seconds']:g} s",
        "  client              upstream calls   x minimum",
        f"  theoretical minimum {r['zipf_minimum_calls']:14,}   {1:9.3f}",
        f"   ... TTL from arrival {r['zipf_minimum_with_latency_calls']:13,}   "
        f"{r['zipf_minimum_with_latency_calls'] / r['zipf_minimum_calls']:9.3f}",
        f"  Mystic              {r['zipf_mystic_calls']:14,}   {r['zipf_calls_over_minimum']:9.3f}"
        "   goal <= 1.05",
        f"  cachetools TTL      {r['zipf_cachetools_calls']:14,}   "
        f"{r['zipf_cachetools_over_minimum']:9.3f}",
        f"  no cache            {r['zipf_no_cache_calls']:14,}   "
        f"{r['zipf_no_cache_over_minimum']:9.3f}",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small and fast (the test suite)")
    parser.add_argument("--json", action="store_true", help="print one JSON object of figures")
    parser.add_argument(
        "--skip-anchor",
        action="store_true",
        help="skip the cachetools client in the Zipf run (its 1,000s of duplicate calls take "
        "about 14 minutes at full size); its figures are then 0",
    )
    args = parser.parse_args()
    os.environ.setdefault("PYTHONHASHSEED", "0")
    result = asyncio.run(main(args.quick, args.skip_anchor))
    print(json.dumps(result) if args.json else table(result))
