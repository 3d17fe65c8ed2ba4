"""Benchmark: ``mystic serve`` against a bare app and against bots going straight to the
exchange, in one run, over the sandbox exchange (a subprocess on 127.0.0.1).

1. Ticker: a cached ``GET /api/v3/ticker/price?symbol=BTCUSDT`` and
   ``GET /api/v1/ticker/BTCUSDT`` on one worker, requests per second and p99, each against
   a bare Starlette app on the same uvicorn, uvloop and httptools answering the same route
   template with the same bytes (``ticker_v3_over_bare``, ``ticker_v1_over_bare``, goal
   >= 0.8). Each is warmed untimed, then bare and Mystic are measured in turn, three times
   each, and the best run of each is kept; the machine is shared, so only the ratios within
   one run mean much.
2. Bots: ten simulated freqtrade bots, 40 pairs each out of the sandbox's 50 (so they
   overlap), each polling 5m klines (limit 500) for all its pairs at every candle close and
   all tickers (``/ticker/24hr``, what ccxt's ``fetch_tickers`` sends, weight 80) every 5 s;
   once straight to the sandbox, once through Mystic, each against a fresh sandbox with
   Binance's 6,000 weight a minute. Time is compressed ``--speed`` times: a 5-minute candle
   closes every 300/speed s, tickers are polled every 5/speed s, Mystic's ticker TTL is its
   1.5 s / speed and the exchange's window 60/speed s, so every rate and lifetime keeps its
   proportion. A close is the moment the bots are told to poll (the candle open on the
   sandbox's clock does not move that fast): through Mystic every poll after the first asks
   again for the open candle, as a real close does. ``bots_weight_saved_pct`` is the weight
   the exchange charged through Mystic against the weight the bots asked for (goal >= 90;
   straight, the exchange charges only what it served, and bans them), with the 429s and 418s
   each way (through Mystic: 0).
3. Load: 500 concurrent keep-alive clients for 60 s on cached tickers and candles:
   ``load_errors`` counts every answer but 200 and counted 503s (shedding at
   ``api.max_in_flight``), ``load_rss_growth_mb`` the service's resident memory growth
   (goal < 50), with p50 and p99.

The load generator runs in a process of its own: ``wrk`` when it is installed (a full run
installs Debian's package when it can), else this file's own aiohttp client (many keep-alive
connections in one process, and always for the load phase, whose clients ask several
paths); ``ticker_generator`` and ``load_generator`` say which ran. On a 2-core machine the
generator and the server share the CPUs, so the absolute figures are the machine's; the
ratios compare like with like. ``--quick`` runs everything small in seconds (the test suite
runs it); ``--json`` prints one JSON object.

    python bench/http_service.py [--quick] [--json] [--speed 10]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from mystic_trading.throttle import binance_weight

TICKER_PATH = "/api/v3/ticker/price?symbol=BTCUSDT"
TICKER_V1_PATH = "/api/v1/ticker/BTCUSDT"
# The bare app's routes: the same templates as Mystic's, so the router does the same work.
BARE_ROUTES = {TICKER_PATH: "/api/v3/ticker/price", TICKER_V1_PATH: "/api/v1/ticker/{symbol}"}
FIVE_MINUTES_S = 300.0
TICKER_EVERY_S = 5.0
TICKER_TTL_S = 1.5  # CacheSettings.ticker_ttl_s


# -- processes ----------------------------------------------------------------------------


def _read_url(proc: subprocess.Popen[str], pattern: str) -> str:
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        match = re.search(pattern, line)
        if match:
            # Keep draining stderr, so a chatty process never blocks on a full pipe.
            threading.Thread(target=_drain, args=(proc.stderr,), daemon=True).start()
            return match.group(1)
    raise RuntimeError("process did not start:\n" + "".join(seen))


def _drain(stream: Any) -> None:
    for _ in stream:
        pass


@contextlib.contextmanager
def running(cmd: list[str], pattern: str, env: dict[str, str] | None = None) -> Iterator[Any]:
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        yield proc, _read_url(proc, pattern)
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


def sandbox(weight_limit: int = 6000, window_s: int = 60) -> Any:
    cmd = [sys.executable, "-m", "mystic_trading.sandbox", "--port", "0"]
    cmd += ["--weight-limit", str(weight_limit), "--window-s", str(window_s)]
    return running(cmd, r"url=(\S+)")


def mystic(exchange_url: str, data_dir: Path, **settings: str) -> Any:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("MYSTIC_")}
    env.update(
        MYSTIC_STORE__URL=f"sqlite+aiosqlite:///{data_dir / 'mystic.db'}",
        MYSTIC_PROVIDER__BASE_URL=exchange_url,
        MYSTIC_MONITOR__ENABLED="false",
    )
    env.update({f"MYSTIC_{k.upper()}": v for k, v in settings.items()})
    cmd = [sys.executable, "-m", "mystic_trading.api", "--port", "0", "--workers", "1"]
    return running(cmd, r"serving at (http://\S+)", env)


def bare(bodies: dict[str, bytes]) -> Any:
    """The bare app answering each route template in ``bodies`` with its bytes."""
    cmd = [
        sys.executable,
        __file__,
        "--bare",
        json.dumps({k: v.decode() for k, v in bodies.items()}),
    ]
    return running(cmd, r"bare at (http://\S+)")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def wait_ready(url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{url} never became ready")


# -- the bare app and the load generator (each run as this file in a process of its own) ---


def run_bare(bodies: str) -> None:
    import socket

    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    def answer(payload: bytes) -> Any:
        async def endpoint(request: Any) -> Response:
            return Response(payload, media_type="application/json")

        return endpoint

    routes = [Route(path, answer(body.encode())) for path, body in json.loads(bodies).items()]
    app = Starlette(routes=routes)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)
    print(f"bare at http://127.0.0.1:{sock.getsockname()[1]}", file=sys.stderr, flush=True)
    config = uvicorn.Config(
        app,
        loop="uvloop",
        http="httptools",
        ws="none",
        lifespan="off",
        log_config=None,
        access_log=False,
        server_header=False,
    )
    uvicorn.Server(config).run(sockets=[sock])


async def run_load(url: str, paths: list[str], connections: int, seconds: float) -> None:
    """Keep-alive clients, each asking in turn, for ``seconds``; prints one JSON line."""
    import aiohttp

    latencies: list[float] = []
    statuses: dict[int, int] = {}
    failures = 0
    stop_at = time.perf_counter() + seconds
    limit = aiohttp.TCPConnector(limit=connections, force_close=False)
    async with aiohttp.ClientSession(connector=limit) as session:

        async def client(k: int) -> None:
            nonlocal failures
            n = k
            while time.perf_counter() < stop_at:
                started = time.perf_counter()
                try:
                    async with session.get(url + paths[n % len(paths)]) as answer:
                        await answer.read()
                        statuses[answer.status] = statuses.get(answer.status, 0) + 1
                except (aiohttp.ClientError, OSError, TimeoutError):
                    failures += 1
                latencies.append(time.perf_counter() - started)
                n += 1

        began = time.perf_counter()
        await asyncio.gather(*(client(k) for k in range(connections)))
        elapsed = time.perf_counter() - began
    print(json.dumps(_load_figures(latencies, statuses, failures, elapsed)), flush=True)


def _load_figures(
    latencies: list[float], statuses: dict[int, int], failures: int, elapsed: float
) -> dict[str, Any]:
    ordered = sorted(latencies) or [0.0]
    return {
        "requests": len(latencies),
        "rps": len(latencies) / elapsed if elapsed else 0.0,
        "p50_ms": ordered[len(ordered) // 2] * 1000,
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
        "statuses": {str(k): v for k, v in statuses.items()},
        "failures": failures,
    }


def install_wrk() -> None:
    """Install Debian's ``wrk`` when it is missing and apt-get can (root): the ticker's
    figures need a load generator faster than the server. Says so on stderr either way."""
    if shutil.which("wrk") is not None:
        return
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        print(
            "wrk is missing (apt-get install wrk): the ticker is driven by this file's "
            "aiohttp client, which reads every ratio near 1",
            file=sys.stderr,
            flush=True,
        )
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for args in (["install", "-y", "wrk"], ["update"], ["install", "-y", "wrk"]):
        subprocess.run(["apt-get", *args], env=env, capture_output=True, timeout=600, check=False)
        if args[0] == "install" and shutil.which("wrk") is not None:
            print("installed Debian's wrk for the ticker", file=sys.stderr, flush=True)
            return
    print("could not install wrk; the aiohttp client drives the ticker", file=sys.stderr)


def load(url: str, paths: list[str], connections: int, seconds: float) -> dict[str, Any]:
    """Load from a process of its own: wrk when installed (one path only), else ours."""
    wrk = shutil.which("wrk")
    if wrk is not None and len(paths) == 1:
        return _wrk(wrk, url + paths[0], connections, seconds)
    cmd = [sys.executable, __file__, "--load", url, str(connections), str(seconds), *paths]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120)
    if done.returncode != 0:
        raise RuntimeError(f"load generator failed:\n{done.stderr}")
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    figures["generator"] = "aiohttp"
    return figures


def _wrk(wrk: str, url: str, connections: int, seconds: float) -> dict[str, Any]:
    cmd = [wrk, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", url]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout

    def ms(label: str) -> float:
        found = re.search(rf"{label}\s+([\d.]+)(us|ms|s)\b", out)
        if found is None:
            return float("nan")
        scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[found.group(2)]
        return float(found.group(1)) * scale

    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "requests": None,
        "rps": float(rps.group(1)) if rps else 0.0,
        "p50_ms": ms("50%"),
        "p99_ms": ms("99%"),
        "statuses": {"non-2xx": int(non2xx.group(1)) if non2xx else 0},
        "failures": sum(int(g) for g in errors.groups()) if errors else 0,
        "generator": "wrk",
    }


# -- 1. the ticker against a bare app -------------------------------------------------------


def phase_ticker(a: argparse.Namespace, url: str) -> dict[str, Any]:
    bodies = {path: httpx.get(url + path, timeout=10).content for path in BARE_ROUTES}
    with bare({BARE_ROUTES[path]: body for path, body in bodies.items()}) as (_, bare_url):
        for path, body in bodies.items():
            assert httpx.get(bare_url + path, timeout=10).content == body
        # Warmed first, each server on each path, untimed: the first seconds of a service
        # still load exchangeInfo, sync the clock and start its samplers.
        for path in BARE_ROUTES:
            for target in (bare_url, url):
                load(target, [path], a.ticker_conns, min(2.0, a.ticker_s))
        runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for _ in range(a.rounds):
            for path in BARE_ROUTES:
                for name, target in (("bare", bare_url), ("mystic", url)):
                    figures = load(target, [path], a.ticker_conns, a.ticker_s)
                    runs.setdefault((name, path), []).append(figures)
    best = {key: max(r, key=lambda f: f["rps"]) for key, r in runs.items()}
    out: dict[str, Any] = {"ticker_generator": best["mystic", TICKER_PATH]["generator"]}
    for path, label in ((TICKER_PATH, "v3"), (TICKER_V1_PATH, "v1")):
        mine, anchor = best["mystic", path], best["bare", path]
        out[f"ticker_{label}_rps"] = mine["rps"]
        out[f"ticker_{label}_p99_ms"] = mine["p99_ms"]
        out[f"ticker_bare_{label}_rps"] = anchor["rps"]
        out[f"ticker_bare_{label}_p99_ms"] = anchor["p99_ms"]
        out[f"ticker_{label}_over_bare"] = mine["rps"] / anchor["rps"]
    # The v3 anchor under its former names, which earlier runs' figures use.
    out["ticker_bare_rps"] = out["ticker_bare_v3_rps"]
    out["ticker_bare_p99_ms"] = out["ticker_bare_v3_p99_ms"]
    return out


# -- 2. bots ------------------------------------------------------------------------------


def bot_pairs(symbols: list[str], bots: int, pairs: int, seed: int = 7) -> list[list[str]]:
    rng = random.Random(seed)
    return [rng.sample(symbols, pairs) for _ in range(bots)]


async def run_bots(
    base_url: str, pair_lists: list[list[str]], speed: float, closes: int
) -> dict[str, int]:
    """Every bot polls its pairs' 5m klines at each close and all tickers every 5 s (both
    compressed ``speed`` times); the answers' statuses are counted, and the weight asked
    for (Binance's weight of every request sent) under ``"asked"``."""
    statuses: dict[int, int] = {}
    asked = 0
    close_every = FIVE_MINUTES_S / speed
    ticker_every = TICKER_EVERY_S / speed
    stop_at = time.monotonic() + close_every * closes

    async def ask(client: httpx.AsyncClient, path: str, params: dict[str, Any]) -> None:
        nonlocal asked
        asked += binance_weight(path, params)
        try:
            status = (await client.get(path, params=params)).status_code
        except httpx.HTTPError:
            status = 0
        statuses[status] = statuses.get(status, 0) + 1

    async def klines(client: httpx.AsyncClient, pairs: list[str]) -> None:
        started = time.monotonic()
        while started < stop_at:
            await asyncio.gather(
                *(
                    ask(client, "/api/v3/klines", {"symbol": p, "interval": "5m", "limit": 500})
                    for p in pairs
                )
            )
            started += close_every
            await asyncio.sleep(max(0.0, started - time.monotonic()))

    async def tickers(client: httpx.AsyncClient, offset: float) -> None:
        await asyncio.sleep(offset)
        at = time.monotonic()
        while at < stop_at:
            await ask(client, "/api/v3/ticker/24hr", {})
            at += ticker_every
            await asyncio.sleep(max(0.0, at - time.monotonic()))

    clients = [
        httpx.AsyncClient(base_url=base_url, timeout=60, limits=httpx.Limits(max_connections=8))
        for _ in pair_lists
    ]
    try:
        work = []
        for k, (client, pairs) in enumerate(zip(clients, pair_lists, strict=True)):
            work.append(klines(client, pairs))
            work.append(tickers(client, ticker_every * k / len(pair_lists)))
        await asyncio.gather(*work)
    finally:
        for client in clients:
            await client.aclose()
    return {"asked": asked, **{str(k): v for k, v in sorted(statuses.items())}}


def sandbox_counts(url: str) -> dict[str, int]:
    total: dict[str, int] = httpx.get(f"{url}/sandbox/stats", timeout=10).json()["total"]
    return total


def phase_bots(a: argparse.Namespace) -> dict[str, Any]:
    window_s = max(1, round(60 / a.speed))
    out: dict[str, Any] = {}
    with sandbox(6000, window_s) as (_, exchange_url):
        symbols = [
            s["symbol"] for s in httpx.get(f"{exchange_url}/api/v3/exchangeInfo").json()["symbols"]
        ]
        pair_lists = bot_pairs(symbols, a.bots, min(a.pairs, len(symbols)))
        direct_statuses = asyncio.run(run_bots(exchange_url, pair_lists, a.speed, a.closes))
        direct = sandbox_counts(exchange_url)
    with sandbox(6000, window_s) as (_, exchange_url), tempfile.TemporaryDirectory() as tmp:
        ttl = f"{TICKER_TTL_S / a.speed:.4f}"
        with mystic(exchange_url, Path(tmp), CACHE__TICKER_TTL_S=ttl) as (_, url):
            wait_ready(url)
            through_statuses = asyncio.run(run_bots(url, pair_lists, a.speed, a.closes))
        through = sandbox_counts(exchange_url)
    direct_asked, through_asked = direct_statuses.pop("asked"), through_statuses.pop("asked")
    out.update(
        bots=a.bots,
        bots_pairs=a.pairs,
        bots_unique_pairs=len({p for pairs in pair_lists for p in pairs}),
        bots_closes=a.closes,
        bots_speed=a.speed,
        bots_direct_asked=direct_asked,
        bots_direct_weight=direct["weight"],
        bots_direct_429=direct["http_429"],
        bots_direct_418=direct["http_418"],
        bots_direct_answers=direct_statuses,
        bots_asked=through_asked,
        bots_weight=through["weight"],
        bots_429=through["http_429"],
        bots_418=through["http_418"],
        bots_answers=through_statuses,
        # Against what the bots asked for: straight, the exchange charges only what it
        # served, and stops serving once it has banned them.
        bots_weight_saved_pct=100 * (1 - through["weight"] / direct_asked),
    )
    return out


# -- 3. load ------------------------------------------------------------------------------


def phase_load(a: argparse.Namespace, proc: subprocess.Popen[str], url: str) -> dict[str, Any]:
    paths = [f"/api/v3/ticker/price?symbol={s}" for s in ("BTCUSDT", "ETHUSDT", "BNBUSDT")]
    paths.append("/api/v3/klines?symbol=BTCUSDT&interval=1h&limit=100")
    for path in paths:  # warm: every path cached before the memory is read
        httpx.get(url + path, timeout=30)
    load(url, paths, min(50, a.load_conns), 1.0)
    before = rss_mb(proc.pid)
    figures = load(url, paths, a.load_conns, a.load_s)
    after = rss_mb(proc.pid)
    statuses = figures["statuses"]
    shed = int(statuses.get("503", 0))
    ok = int(statuses.get("200", 0))
    errors = figures["failures"] + sum(
        int(v) for k, v in statuses.items() if k not in ("200", "503")
    )
    return {
        "load_clients": a.load_conns,
        "load_s": a.load_s,
        "load_requests": ok + shed,
        "load_rps": figures["rps"],
        "load_p50_ms": figures["p50_ms"],
        "load_p99_ms": figures["p99_ms"],
        "load_shed_503": shed,
        "load_errors": errors,
        "load_rss_mb": after,
        "load_rss_growth_mb": after - before,
        "load_generator": figures["generator"],
    }


# -- main ---------------------------------------------------------------------------------


def main(a: argparse.Namespace) -> dict[str, Any]:
    if not a.quick:  # a full run's figures; the test suite's quick one uses what is there
        install_wrk()
    out: dict[str, Any] = {"quick": a.quick}
    # Cached: a ticker fresh for an hour, so every request is a memory hit.
    with (
        sandbox() as (_, exchange_url),
        tempfile.TemporaryDirectory() as tmp,
        mystic(exchange_url, Path(tmp), CACHE__TICKER_TTL_S="3600") as (proc, url),
    ):
        wait_ready(url)
        out.update(phase_ticker(a, url))
        load_figures = phase_load(a, proc, url)
    out.update(phase_bots(a))
    out.update(load_figures)
    return out


def table(r: dict[str, Any]) -> str:
    lines = [
        f"load generators: {r['ticker_generator']} for the ticker, {r['load_generator']} for "
        "the load" + (" (quick)" if r["quick"] else ""),
        "",
        f"{'ticker, one worker':28} {'req/s':>10} {'p99 ms':>9}",
        f"{'  bare Starlette, v3 bytes':28} {r['ticker_bare_v3_rps']:>10.0f} "
        f"{r['ticker_bare_v3_p99_ms']:>9.2f}",
        f"{'  mystic /api/v3/ticker/price':28} {r['ticker_v3_rps']:>10.0f} "
        f"{r['ticker_v3_p99_ms']:>9.2f}   {r['ticker_v3_over_bare']:.2f} x bare (goal >= 0.8)",
        f"{'  bare Starlette, v1 bytes':28} {r['ticker_bare_v1_rps']:>10.0f} "
        f"{r['ticker_bare_v1_p99_ms']:>9.2f}",
        f"{'  mystic /api/v1/ticker/{symbol}':28} {r['ticker_v1_rps']:>10.0f} "
        f"{r['ticker_v1_p99_ms']:>9.2f}   {r['ticker_v1_over_bare']:.2f} x bare (goal >= 0.8)",
        "",
        f"bots: {r['bots']} x {r['bots_pairs']} pairs ({r['bots_unique_pairs']} distinct), "
        f"{r['bots_closes']} closes, time x{r['bots_speed']:g}",
        f"{'':28} {'asked':>10} {'charged':>10} {'429':>6} {'418':>6}",
        f"{'  straight to the exchange':28} {r['bots_direct_asked']:>10} "
        f"{r['bots_direct_weight']:>10} {r['bots_direct_429']:>6} {r['bots_direct_418']:>6}",
        f"{'  through mystic':28} {r['bots_asked']:>10} {r['bots_weight']:>10} "
        f"{r['bots_429']:>6} {r['bots_418']:>6}",
        f"  {r['bots_weight_saved_pct']:.1f} % of the weight asked for saved (goal >= 90); "
        "straight, the exchange charges only what it served before its bans",
        "",
        f"load: {r['load_clients']} keep-alive clients, {r['load_s']:g} s: "
        f"{r['load_requests']} answers ({r['load_rps']:.0f}/s), p50 {r['load_p50_ms']:.1f} ms, "
        f"p99 {r['load_p99_ms']:.1f} ms, {r['load_shed_503']} shed (503), "
        f"{r['load_errors']} errors, RSS {r['load_rss_mb']:.0f} MB "
        f"(+{r['load_rss_growth_mb']:.1f} MB, goal < 50)",
    ]
    return "\n".join(lines)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="seconds, for the test suite")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--speed", type=float, default=None, help="time compression of the bots")
    p.add_argument("--bare", help=argparse.SUPPRESS)
    p.add_argument("--load", nargs="+", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.quick:
        a.rounds, a.ticker_conns, a.ticker_s = 1, 16, 1.0
        a.bots, a.pairs, a.closes, a.speed = 3, 10, 2, a.speed or 60.0
        a.load_conns, a.load_s = 50, 2.0
    else:
        a.rounds, a.ticker_conns, a.ticker_s = 3, 64, 8.0
        a.bots, a.pairs, a.closes, a.speed = 10, 40, 4, a.speed or 10.0
        a.load_conns, a.load_s = 500, 60.0
    return a


if __name__ == "__main__":
    args = parse()
    if args.bare is not None:
        run_bare(args.bare)
        sys.exit(0)
    if args.load:
        url, connections, seconds, *paths = args.load
        asyncio.run(run_load(url, paths, int(connections), float(seconds)))
        sys.exit(0)
    result = main(args)
    print(json.dumps(result) if args.json else table(result))
