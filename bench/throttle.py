"""Benchmark: Mystic's throttler against aiolimiter, ccxt, pyrate-limiter and limits.

Runs the sandbox exchange as a subprocess on loopback with a small budget in a short window
(``--weight-limit`` per ``--window-s``), then, through the same httpx client and the same
mixed-weight traffic (1 to 50), measures for each limiter: the share of the exchange's limit
used (``util``), 429s and 418s; Mystic alone at 8, 32 and 64 callers (the headline
``util_1proc`` is the worst of them). Mystic also runs as four processes sharing one Redis quota,
through a mid-run halving of the exchange's budget (``recovery_s``: from the halving to the
end of the first window back at >= 95 % of the new limit), and for its acquire overhead with
free budget (median microseconds, in memory and with Redis).

Every limiter is set to the limit less a 2 % margin, is driven by the same callers through
the same client and is measured the same way (``measure``: whole epoch-aligned windows, from
a fresh sandbox, read on the boundaries), over the same number of windows. ``--quick`` runs
in seconds (for the test suite; its figures mean little). ``--json`` prints one JSON object.

    python bench/throttle.py [--quick] [--json] [--redis-url redis://127.0.0.1:6379/0]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import itertools
import json
import os
import random
import re
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from mystic_trading.config import ThrottleSettings
from mystic_trading.throttle import Budget, MemoryQuota, Quota, RedisQuota, Throttler

MARGIN = 0.02
MAX_WEIGHT = 50
# Mixed weights 1..50 from the sandbox's real endpoints (path, params, weight).
CALLS: list[tuple[str, dict[str, Any], int]] = [
    ("/api/v3/ping", {}, 1),
    ("/api/v3/klines", {"symbol": "BTCUSDT", "interval": "1m", "limit": 5}, 2),
    ("/api/v3/ticker/price", {}, 4),
    ("/api/v3/depth", {"symbol": "BTCUSDT", "limit": 10}, 5),
    ("/api/v3/avgPrice", {"symbol": "ETHUSDT"}, 2),
    ("/api/v3/depth", {"symbol": "BTCUSDT", "limit": 200}, 25),
    ("/api/v3/depth", {"symbol": "ETHUSDT", "limit": 1000}, 50),
]
TOKEN = uuid.uuid4().hex
# One client for every limiter. Its idle keep-alive connections are capped: with 64 callers
# and no cap, httpx's pool kept 64 mostly idle connections and answers stalled (p99 450 ms,
# in flight up to 64, against 14 ms with 32 kept), which every limiter then paid for.
CLIENT_LIMITS = httpx.Limits(max_connections=128, max_keepalive_connections=32)

Acquire = Callable[[int], Awaitable[None]]


# -- the sandbox ------------------------------------------------------------------------------


def start_sandbox(limit: int, window_s: int) -> tuple[subprocess.Popen[str], str]:
    cmd = [
        sys.executable,
        "-m",
        "mystic_trading.sandbox",
        "--port",
        "0",
        "--weight-limit",
        str(limit),
        "--window-s",
        str(window_s),
        "--ban-base-s",
        "5",
        "--admin-token",
        TOKEN,
    ]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    assert proc.stderr is not None
    for line in proc.stderr:
        match = re.search(r"url=(\S+)", line)
        if match:
            return proc, match.group(1)
    raise RuntimeError("sandbox did not start")


async def admin(client: httpx.AsyncClient, path: str, body: dict[str, Any] | None = None) -> Any:
    response = await client.post(path, json=body, headers={"X-Sandbox-Token": TOKEN})
    response.raise_for_status()
    return response.json()


async def sandbox_total(client: httpx.AsyncClient) -> dict[str, int]:
    response = await client.get("/sandbox/stats")
    total: dict[str, int] = response.json()["total"]
    return total


async def next_window(window_s: int) -> float:
    """Sleep to just past the next window boundary (epoch-aligned, as the sandbox counts)."""
    boundary = (time.time() // window_s + 1) * window_s
    await sleep_until(boundary + 0.002)
    return boundary


async def sleep_until(wall: float) -> None:
    await asyncio.sleep(max(0.0, wall - time.time()))


# -- traffic ---------------------------------------------------------------------------------


async def drive(
    client: httpx.AsyncClient,
    seconds: float,
    concurrency: int,
    send: Callable[[str, dict[str, Any], int], Awaitable[Any]],
    seed: int = 0,
) -> None:
    stop = time.monotonic() + seconds

    async def caller(index: int) -> None:
        rng = random.Random(seed * 1000 + index)
        while time.monotonic() < stop:
            path, params, weight = rng.choice(CALLS)
            try:
                await send(path, params, weight)
            except Exception:  # the sandbox's counters tell what happened
                await asyncio.sleep(0.01)

    await asyncio.gather(*(caller(i) for i in range(concurrency)))


def mystic_sender(
    throttler: Throttler, client: httpx.AsyncClient
) -> Callable[[str, dict[str, Any], int], Awaitable[Any]]:
    async def send(path: str, params: dict[str, Any], weight: int) -> Any:
        async with throttler.slot(path, weight) as slot:
            response = await client.get(path, params=params)
            slot.record(response.status_code, response.headers)
        return response

    return send


def anchor_sender(
    acquire: Acquire, client: httpx.AsyncClient
) -> Callable[[str, dict[str, Any], int], Awaitable[Any]]:
    async def send(path: str, params: dict[str, Any], weight: int) -> Any:
        await acquire(weight)
        return await client.get(path, params=params)

    return send


def anchors(limit: int, window_s: int) -> dict[str, Callable[[], Acquire]]:
    """Each anchor configured to the limit less the margin, in weight per window."""
    allowed = limit * (1 - MARGIN)

    def aiolimiter_acquire() -> Acquire:
        from aiolimiter import AsyncLimiter

        limiter = AsyncLimiter(allowed, window_s)

        async def acquire(weight: int) -> None:
            await limiter.acquire(weight)

        return acquire

    def ccxt_acquire() -> Acquire:
        from ccxt.async_support.base.throttler import Throttler as CcxtThrottler

        throttler = CcxtThrottler({"refillRate": allowed / window_s / 1000, "capacity": 1.0})

        async def acquire(weight: int) -> None:
            await throttler(weight)

        return acquire

    def pyrate_acquire() -> Acquire:
        from pyrate_limiter import Duration, Limiter, Rate

        limiter = Limiter(Rate(int(allowed), Duration.SECOND * window_s))

        async def acquire(weight: int) -> None:
            await limiter.try_acquire_async("bench", weight)

        return acquire

    def limits_acquire() -> Acquire:
        from limits import RateLimitItemPerSecond
        from limits.aio.storage import MemoryStorage
        from limits.aio.strategies import MovingWindowRateLimiter

        item = RateLimitItemPerSecond(int(allowed), window_s)
        limiter = MovingWindowRateLimiter(MemoryStorage())

        async def acquire(weight: int) -> None:
            # limits only answers yes or no: the caller sleeps until the window frees up.
            while not await limiter.hit(item, "bench", cost=weight):
                stats = await limiter.get_window_stats(item, "bench")
                await asyncio.sleep(max(0.001, stats.reset_time - time.time()))

        return acquire

    return {
        "aiolimiter": aiolimiter_acquire,
        "ccxt": ccxt_acquire,
        "pyrate": pyrate_acquire,
        "limits": limits_acquire,
    }


def settings() -> ThrottleSettings:
    return ThrottleSettings(level="unlimited", safety_margin=MARGIN, expected_processes=4)


def make_throttler(limit: int, window_s: int, quota: Quota | None = None) -> Throttler:
    budget = Budget(limit=limit, window_s=window_s, max_weight=MAX_WEIGHT)
    return Throttler("sandbox", budget, settings=settings(), quota=quota)


async def measure(
    client: httpx.AsyncClient,
    limit: int,
    window_s: int,
    windows: int,
    run: Callable[[float], Awaitable[None]],
) -> dict[str, float]:
    """Run over ``windows`` whole windows; util = weight served / (windows * limit).

    The same for every limiter: from a fresh sandbox, traffic starts on a window boundary,
    and the counters are read on the boundary that ends the last window (the read is one
    loopback round trip, about a millisecond, so a request served just after it may be
    counted: the same for everyone). The traffic goes on a little past it, so no limiter is
    judged on its callers winding down inside a measured window.
    """
    await admin(client, "/sandbox/admin/reset")
    boundary = await next_window(window_s)
    before = await sandbox_total(client)
    task = asyncio.create_task(run(windows * window_s + 0.2))
    await sleep_until(boundary + windows * window_s)
    after = await sandbox_total(client)
    await task
    return {
        "util": (after["weight"] - before["weight"]) / (windows * limit),
        "n429": after["http_429"] - before["http_429"],
        "n418": after["http_418"] - before["http_418"],
    }


# -- phases ----------------------------------------------------------------------------------


async def warm_up(client: httpx.AsyncClient, a: argparse.Namespace) -> None:
    """Open the client's connections and warm the sandbox's caches before anything is
    measured, so the first limiter measured does not pay for them (every limiter then
    shares the same warm keep-alive pool)."""
    await drive(client, 1.0, a.concurrency, anchor_sender(lambda _w: asyncio.sleep(0.2), client))
    await admin(client, "/sandbox/admin/reset")


async def phase_one_process(
    client: httpx.AsyncClient, a: argparse.Namespace, concurrency: int
) -> dict[str, float]:
    throttler = make_throttler(a.weight_limit, a.window_s)
    async with throttler:
        send = mystic_sender(throttler, client)
        return await measure(
            client,
            a.weight_limit,
            a.window_s,
            a.windows,
            lambda s: drive(client, s, concurrency, send),
        )


async def phase_anchor(
    client: httpx.AsyncClient, a: argparse.Namespace, make: Callable[[], Acquire]
) -> dict[str, float]:
    send = anchor_sender(make(), client)
    result = await measure(
        client,
        a.weight_limit,
        a.window_s,
        a.windows,
        lambda s: drive(client, s, a.concurrency, send),
    )
    await asyncio.sleep(0)
    return result


async def phase_four_processes(
    client: httpx.AsyncClient, a: argparse.Namespace, url: str
) -> dict[str, float]:
    prefix = f"bench:{uuid.uuid4().hex}"

    async def run(seconds: float) -> None:
        procs = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                __file__,
                "--worker",
                url,
                prefix,
                str(seconds),
                str(i),
                "--redis-url",
                a.redis_url,
                "--weight-limit",
                str(a.weight_limit),
                "--window-s",
                str(a.window_s),
                "--concurrency",
                str(max(8, a.concurrency // 4)),
            )
            for i in range(4)
        ]
        await asyncio.gather(*(p.wait() for p in procs))

    # The workers need a moment to start: measure from the window after they are up, to
    # the boundary ending the last one (as ``measure``), and let them run a little past it.
    await admin(client, "/sandbox/admin/reset")
    boundary = await next_window(a.window_s)
    start_at = boundary + a.window_s
    seconds = a.windows * a.window_s
    task = asyncio.create_task(run(seconds + a.window_s + 0.2))
    await sleep_until(start_at)
    before = await sandbox_total(client)
    await sleep_until(start_at + seconds)
    after = await sandbox_total(client)
    await task
    return {
        "util": (after["weight"] - before["weight"]) / (a.windows * a.weight_limit),
        "n429": after["http_429"] - before["http_429"],
        "n418": after["http_418"] - before["http_418"],
    }


async def worker(argv: argparse.Namespace) -> None:
    url, prefix, seconds, index = argv.worker
    quota = RedisQuota(argv.redis_url, prefix=prefix, expected_processes=4)
    async with (
        httpx.AsyncClient(base_url=url, limits=CLIENT_LIMITS) as client,
        make_throttler(argv.weight_limit, argv.window_s, quota) as throttler,
    ):
        await drive(
            client,
            float(seconds),
            argv.concurrency,
            mystic_sender(throttler, client),
            seed=int(index) + 1,
        )


async def phase_halving(client: httpx.AsyncClient, a: argparse.Namespace) -> dict[str, Any]:
    """Halve the exchange's budget early in a window; find when usage is back at >= 95 %."""
    throttler = make_throttler(a.weight_limit, a.window_s)
    new_limit = a.weight_limit // 2
    window = a.window_s
    await admin(client, "/sandbox/admin/reset")
    async with throttler:
        send = mystic_sender(throttler, client)
        await next_window(window)
        total = a.halving_windows * window
        load = asyncio.create_task(drive(client, total, a.concurrency, send))
        samples: list[tuple[float, dict[str, int]]] = []
        halved_at = 0.0
        for k in range(a.halving_windows):
            samples.append((time.time(), await sandbox_total(client)))
            if k == 1:
                await asyncio.sleep(0.3 * window)
                halved_at = time.time()
                await admin(client, "/sandbox/admin/faults", {"weight_limit": new_limit})
            await next_window(window)
        samples.append((time.time(), await sandbox_total(client)))
        await load
    recovery = None
    for (t0, s0), (t1, s1) in itertools.pairwise(samples):
        if t0 < halved_at:
            continue
        if (s1["weight"] - s0["weight"]) >= 0.95 * new_limit:
            recovery = t1 - halved_at
            break
    first = samples[0][1]
    last = samples[-1][1]
    return {
        "recovery_s": recovery,
        "n429": last["http_429"] - first["http_429"],
        "n418": last["http_418"] - first["http_418"],
    }


# -- acquire overhead ------------------------------------------------------------------------


async def overhead_mystic(quota: Quota, n: int) -> float:
    budget = Budget(limit=10**9, window_s=60, max_weight=MAX_WEIGHT)
    throttler = Throttler("overhead", budget, settings=settings(), quota=quota)
    timings = []
    async with throttler:
        for _ in range(n):
            start = time.perf_counter_ns()
            async with throttler.slot("/api/v3/ping", 1) as slot:
                slot.record(200, {})
            timings.append(time.perf_counter_ns() - start)
    return statistics.median(timings) / 1000


async def overhead_anchor(make: Callable[[], Acquire], n: int) -> float:
    acquire = make()
    timings = []
    for _ in range(n):
        start = time.perf_counter_ns()
        await acquire(1)
        timings.append(time.perf_counter_ns() - start)
    return statistics.median(timings) / 1000


# -- main ------------------------------------------------------------------------------------


def measure_overheads(a: argparse.Namespace) -> dict[str, float]:
    """Every limiter's acquire overhead, each in an event loop of its own, before any traffic
    phase: the same conditions for all (measured inside the run, the last ones paid 5-10 us
    for the leftovers of the others: a big heap, a background task still polling)."""

    async def redis() -> float:
        quota = RedisQuota(a.redis_url, prefix=f"bench:{uuid.uuid4().hex}")
        return await overhead_mystic(quota, a.overhead_n)

    runs: dict[str, Callable[[], Awaitable[float]]] = {
        name: functools.partial(overhead_anchor, make, a.overhead_n)
        for name, make in anchors(10**9, 60).items()
    }
    runs["mystic"] = functools.partial(overhead_mystic, MemoryQuota(), a.overhead_n)
    runs["mystic_redis"] = redis
    found = {}
    for name, run in runs.items():
        # Whatever is already loaded (ccxt alone is a large heap) is frozen out of the
        # collector, so nobody pays for traversing the other libraries' objects.
        gc.collect()
        gc.freeze()
        found[name] = asyncio.run(run())
    return found


async def main(a: argparse.Namespace) -> dict[str, Any]:
    proc, url = start_sandbox(a.weight_limit, a.window_s)
    result: dict[str, Any] = {
        "weight_limit": a.weight_limit,
        "window_s": a.window_s,
        "margin": MARGIN,
        "concurrency": a.concurrency,
    }
    try:
        overheads = a.overheads
        result["acquire_us_memory"] = overheads.pop("mystic")
        result["acquire_us_redis"] = overheads.pop("mystic_redis")
        async with httpx.AsyncClient(base_url=url, limits=CLIENT_LIMITS, timeout=10) as client:
            await warm_up(client, a)
            # The range of callers; the headline is the worst of them.
            sweep = {c: await phase_one_process(client, a, c) for c in a.caller_sweep}
            one = min(sweep.values(), key=lambda f: f["util"])
            result.update(
                util_1proc=one["util"],
                n429_1proc=sum(f["n429"] for f in sweep.values()),
                n418_1proc=sum(f["n418"] for f in sweep.values()),
                util_1proc_by_callers={str(c): f["util"] for c, f in sweep.items()},
            )
            four = await phase_four_processes(client, a, url)
            result.update(
                util_4proc_redis=four["util"],
                n429_4proc_redis=four["n429"],
                n418_4proc_redis=four["n418"],
            )
            halving = await phase_halving(client, a)
            result.update(
                recovery_s=halving["recovery_s"],
                n429_halving=halving["n429"],
                n418_halving=halving["n418"],
            )
            makers = anchors(a.weight_limit, a.window_s)
            result["anchors"] = {}
            for name, make in makers.items():
                figures = await phase_anchor(client, a, make)
                figures["acquire_us_memory"] = overheads[name]
                result["anchors"][name] = figures
    finally:
        proc.terminate()
        proc.wait()
    return result


def table(result: dict[str, Any]) -> str:
    def pct(value: float | None) -> str:
        return "-" if value is None else f"{value * 100:6.2f}%"

    lines = [
        f"budget {result['weight_limit']} weight / {result['window_s']} s, margin "
        f"{result['margin']:.0%}, {result['concurrency']} callers, weights 1-50",
        f"{'limiter':<22}{'util':>9}{'429':>7}{'418':>7}{'acquire us':>12}",
        f"{'mystic (1 process)':<22}{pct(result['util_1proc']):>9}{result['n429_1proc']:>7}"
        f"{result['n418_1proc']:>7}{result['acquire_us_memory']:>12.1f}"
        f"   (worst of {', '.join(result['util_1proc_by_callers'])} callers: "
        f"{', '.join(pct(u).strip() for u in result['util_1proc_by_callers'].values())})",
        f"{'mystic (4 proc, Redis)':<22}{pct(result['util_4proc_redis']):>9}"
        f"{result['n429_4proc_redis']:>7}{result['n418_4proc_redis']:>7}"
        f"{result['acquire_us_redis']:>12.1f}",
    ]
    for name, fig in result["anchors"].items():
        lines.append(
            f"{name:<22}{pct(fig['util']):>9}{fig['n429']:>7}{fig['n418']:>7}"
            f"{fig['acquire_us_memory']:>12.1f}"
        )
    recovery = result["recovery_s"]
    lines.append(
        f"budget halved mid-run: recovery "
        f"{'never' if recovery is None else f'{recovery:.1f} s'}, "
        f"{result['n429_halving']} x 429, {result['n418_halving']} x 418"
    )
    return "\n".join(lines)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="seconds, for the test suite")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument(
        "--redis-url",
        default=os.environ.get("MYSTIC_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"),
    )
    p.add_argument("--weight-limit", type=int, default=None)
    p.add_argument("--window-s", type=int, default=None)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--windows", type=int, default=None, help="windows measured per phase")
    p.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.quick:
        a.weight_limit = a.weight_limit or 3000
        a.window_s = a.window_s or 1
        a.windows, a.halving_windows, a.overhead_n = 1, 4, 300
        a.caller_sweep = [a.concurrency]
    else:
        a.weight_limit = a.weight_limit or 9000
        a.window_s = a.window_s or 3
        # 20 windows of 3 s: the 60 s, for every limiter and every caller count.
        a.windows, a.halving_windows, a.overhead_n = a.windows or 20, 6, 5000
        a.caller_sweep = sorted({8, a.concurrency, 64})
    return a


if __name__ == "__main__":
    args = parse()
    if args.worker:
        asyncio.run(worker(args))
        sys.exit(0)
    args.overheads = measure_overheads(args)
    out = asyncio.run(main(args))
    print(json.dumps(out) if args.json else table(out))
