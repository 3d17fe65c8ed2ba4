"""What monitoring costs, in one run, over a real sandbox exchange (a subprocess on 127.0.0.1).

1. The Zipf workload of bench/marketdata.py (the same mix at half its rate, a fresh store each
   run) with monitoring off and on (a heartbeat every second and a health round, alert
   evaluation included, every second: far more often than the defaults of 2 s and 30 s), in turns
   (off, on, off, on, ...). Figures: the process's CPU time per request, on over off
   (``cpu_per_request_on_over_off``, goal <= 1.03) and the upstream calls the exchange
   counted, on over off (``upstream_calls_on_over_off``, goal <= 1.01); each the median of
   the seven pairs' ratios (the runs' own figures are medians per mode).
2. One health round (``md.health`` checker's ``run()``: every check, the registry's read of
   the deployment and alert evaluation) with 8 processes' heartbeats in the store: median
   of many rounds (``health_round_ms``, goal < 20 ms).
3. ``mystic status --json`` as a real subprocess with those 8 processes alive: median wall
   time (``status_wall_s``, goal < 1 s, interpreter start-up included), and the start-up's
   share of it, with Mystic byte-compiled as a wheel's install leaves it (and, beside it, from
   source, as an editable install under PYTHONDONTWRITEBYTECODE=1 runs it). The start-up is
   what every invocation pays before it does any work: the interpreter and the imports of the
   command line (``python -c "import mystic_trading.cli._app"``); a bare ``python -c pass``
   (the interpreter alone) is reported beside it.

``--quick`` runs everything small in seconds (the test suite runs it); ``--json`` prints one
JSON object of figures.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from mystic_trading.config import Settings
from mystic_trading.marketdata.facade import MarketData
from mystic_trading.monitor import HeartbeatPublisher, ProcessRegistry, heartbeat_figures
from mystic_trading.sandbox import SYMBOLS as SANDBOX_SYMBOLS


def _load_zipf() -> Any:
    """bench/marketdata.py, for its sandbox, schedule and runner (one workload, not two)."""
    path = Path(__file__).with_name("marketdata.py")
    spec = importlib.util.spec_from_file_location("bench_marketdata", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # msgspec's Struct resolves its annotations through it
    spec.loader.exec_module(module)
    return module


zipf = _load_zipf()
PROCESSES = 8


def settings(url: str, db: Path, *, monitor: bool, **extra: Any) -> Settings:
    return Settings(
        store={"url": f"sqlite+aiosqlite:///{db}"},
        provider={"base_url": url},
        throttle={"level": "unlimited", "safety_margin": 0.02},
        cache={"ticker_ttl_s": zipf.TICKER_TTL, "book_ttl_s": zipf.BOOK_TTL},
        monitor={"enabled": monitor, "heartbeat_s": 1.0, "interval_s": 1.0, **extra},
    )


# -- 1. the Zipf workload, monitoring off and on ------------------------------------------------


async def zipf_run(ex: Any, db: Path, reqs: list[Any], monitor: bool) -> dict[str, Any]:
    async with MarketData.open(settings(ex.url, db, monitor=monitor)) as md:
        now = md.provider.now_ms()

        async def do(r: Any) -> None:
            if r.kind == "ticker":
                await md.ticker(r.symbol)
            elif r.kind == "book":
                await md.order_book(r.symbol, 20)
            elif r.kind == "m1":
                await md.candles(r.symbol, "1m", limit=100)
            elif r.kind == "h1":
                await md.candles(r.symbol, "1h", limit=200)
            else:
                start = zipf.day_start(now, r.day)
                await md.candles(r.symbol, "1m", start=start, end=start + zipf.DAY)

        before = ex.requests()
        cpu = time.process_time()
        elapsed, errors, _ = await zipf_run_schedule(reqs, do)
        cpu = time.process_time() - cpu
        calls = zipf.delta(ex.requests(), before).get("total", 0)
        rounds = md.monitor.rounds if md.monitor is not None else 0
    return {
        "cpu_s": cpu,
        "cpu_per_request_us": cpu / len(reqs) * 1e6,
        "calls": calls,
        "errors": errors,
        "elapsed_s": elapsed,
        "health_rounds": rounds,
    }


async def zipf_run_schedule(reqs: list[Any], do: Any) -> tuple[float, int, list[Any]]:
    result: tuple[float, int, list[Any]] = await zipf.run_schedule(reqs, do)
    return result


async def bench_overhead(ex: Any, tmp: Path, quick: bool) -> dict[str, Any]:
    # Half bench/marketdata.py's rate (the same mix and Zipf law): at 1,500 requests a second
    # one process here runs at 100 % of a core, falls behind its schedule, and its upstream
    # calls then swing 10 % between runs of the same mode (how many requests coalesce rides
    # on the machine's noise); at 750 they agree within 1 %, so monitoring's effect shows.
    n_symbols, n_requests, seconds, pairs = (10, 600, 2.0, 1) if quick else (50, 15_000, 20.0, 7)
    symbols = [s.symbol for s in SANDBOX_SYMBOLS[:n_symbols]]
    reqs = zipf.schedule(n_requests, seconds, symbols)
    runs: dict[str, list[dict[str, Any]]] = {"off": [], "on": []}
    for i in range(pairs):
        for mode in ("off", "on"):
            run = await zipf_run(ex, tmp / f"zipf-{mode}-{i}.db", reqs, monitor=mode == "on")
            print(f"zipf {mode} #{i}: {run}", file=sys.stderr, flush=True)
            runs[mode].append(run)

    def median(mode: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[mode])

    def paired(key: str) -> float:
        return statistics.median(
            on[key] / off[key] for off, on in zip(runs["off"], runs["on"], strict=True)
        )

    return {
        "zipf_requests": n_requests,
        "zipf_seconds": seconds,
        "zipf_runs_per_mode": pairs,
        "cpu_per_request_off_us": median("off", "cpu_per_request_us"),
        "cpu_per_request_on_us": median("on", "cpu_per_request_us"),
        # The median of each pair's ratio (an off run and the on run right after it): the
        # machine's drift over minutes moves both runs of a pair alike.
        "cpu_per_request_on_over_off": paired("cpu_per_request_us"),
        "upstream_calls_off": median("off", "calls"),
        "upstream_calls_on": median("on", "calls"),
        "upstream_calls_on_over_off": paired("calls"),
        "zipf_errors": sum(r["errors"] for mode in runs.values() for r in mode),
        "health_rounds_during_zipf_on": min(r["health_rounds"] for r in runs["on"]),
        "health_rounds_during_zipf_off": max(r["health_rounds"] for r in runs["off"]),
    }


# -- 2. a health round with 8 processes, and 3. mystic status ------------------------------------


async def start_deployment(ex: Any, db: Path) -> list[HeartbeatPublisher]:
    """Eight processes' beats in the store, each alive for three minutes (a 60 s interval):
    what a round and status find."""
    publishers = []
    async with MarketData.open(settings(ex.url, db, monitor=False)) as md:
        await md.ticker(SANDBOX_SYMBOLS[0].symbol)
        figures = heartbeat_figures(md.stats())
        for i in range(PROCESSES):
            publisher = HeartbeatPublisher(
                md.store,
                lambda: figures,
                venue=md.provider.venue,
                heartbeat_s=60.0,
                host=f"bench-{i}",
                pid=10_000 + i,
            )
            await publisher.beat_once()
            publishers.append(publisher)
    return publishers


async def bench_round(ex: Any, db: Path, rounds: int) -> dict[str, Any]:
    async with MarketData.open(settings(ex.url, db, monitor=True, interval_s=3600.0)) as md:
        await md.ticker(SANDBOX_SYMBOLS[0].symbol)
        checker = md.monitor
        assert checker is not None, "monitor.enabled gives MarketData its health checker"
        times = []
        report = None
        for _ in range(rounds):
            began = time.perf_counter()
            report = await checker.run()
            times.append((time.perf_counter() - began) * 1000)
        assert report is not None
        seen = await ProcessRegistry(md.store).read()
    return {
        "health_round_ms": statistics.median(times),
        "health_round_p90_ms": statistics.quantiles(times, n=10)[-1]
        if len(times) >= 10
        else max(times),
        "health_rounds_timed": rounds,
        "health_checks": len(report.checks),
        "processes_alive_in_round": len(seen.alive),
    }


def wall(argv: list[str], env: dict[str, str], runs: int) -> tuple[float, str]:
    times, out = [], ""
    for _ in range(runs):
        began = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
        times.append(time.perf_counter() - began)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed: {done.stderr[-2000:]}")
        out = done.stdout
    return statistics.median(times), out


def bench_status(ex: Any, db: Path, runs: int, tmp: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MYSTIC_")}
    env.update(
        {"MYSTIC_STORE__URL": f"sqlite+aiosqlite:///{db}", "MYSTIC_PROVIDER__BASE_URL": ex.url}
    )
    py = sys.executable
    # As installed: pip byte-compiles a wheel's modules at install, while an editable install
    # under PYTHONDONTWRITEBYTECODE=1 (as here) compiles Mystic's sources on every start. With
    # a cache prefix of its own (PYTHONPYCACHEPREFIX: the source tree untouched) Python reads
    # byte code only from there, so one untimed run first writes it for every module loaded.
    # The from-source figure is reported beside it.
    installed = {
        **{k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"},
        "PYTHONPYCACHEPREFIX": str(tmp / "pycache"),
    }
    argv = [py, "-m", "mystic_trading", "status", "--json"]
    status_s, out = wall(argv, installed, runs)
    shown = json.loads(out)
    source_s, _ = wall(argv, {**env, "PYTHONDONTWRITEBYTECODE": "1"}, runs)
    imports_s, _ = wall([py, "-c", "import mystic_trading.cli._app"], installed, runs)
    bare_s, _ = wall([py, "-c", "pass"], env, runs)
    return {
        "status_wall_s": status_s,
        "status_wall_from_source_s": source_s,
        "status_runs": runs,
        "status_processes_alive": shown["alive"],
        "startup_s": imports_s,
        "startup_share": imports_s / status_s,
        "interpreter_s": bare_s,
        "interpreter_share": bare_s / status_s,
    }


async def main(quick: bool) -> dict[str, Any]:
    ex = zipf.Exchange(latency_ms=50)
    try:
        with tempfile.TemporaryDirectory() as tmp_name:
            tmp = Path(tmp_name)
            phases: dict[str, float] = {}
            t = time.perf_counter()
            overhead = await bench_overhead(ex, tmp, quick)
            phases["zipf"], t = time.perf_counter() - t, time.perf_counter()
            db = tmp / "deployment.db"
            await start_deployment(ex, db)
            rounds = await bench_round(ex, db, 20 if quick else 200)
            phases["health_round"], t = time.perf_counter() - t, time.perf_counter()
            status = bench_status(ex, db, 3 if quick else 11, tmp)
            phases["status"] = time.perf_counter() - t
    finally:
        ex.close()
    return {"quick": quick, "phase_seconds": phases, **overhead, **rounds, **status}


def table(r: dict[str, Any]) -> str:
    return "\n".join(
        [
            f"Monitoring benchmark ({'quick' if r['quick'] else 'full'}), sandbox at 50 ms latency",
            "",
            f"Zipf workload, {r['zipf_requests']:,} requests in {r['zipf_seconds']:g} s, "
            f"{r['zipf_runs_per_mode']} run(s) each, medians; on/off is the median of the "
            "pairs' ratios",
            "                          off          on     on/off   goal",
            f"  CPU per request us {r['cpu_per_request_off_us']:9.1f} "
            f"{r['cpu_per_request_on_us']:11.1f} {r['cpu_per_request_on_over_off']:10.3f}"
            "   <= 1.03",
            f"  upstream calls     {r['upstream_calls_off']:9,.0f} {r['upstream_calls_on']:11,.0f} "
            f"{r['upstream_calls_on_over_off']:10.3f}   <= 1.01",
            f"  health rounds during a run with monitoring on: "
            f"{r['health_rounds_during_zipf_on']} (off: {r['health_rounds_during_zipf_off']})",
            "",
            f"health round, {r['processes_alive_in_round']} processes alive, "
            f"{r['health_checks']} checks: median {r['health_round_ms']:.2f} ms, "
            f"p90 {r['health_round_p90_ms']:.2f} ms   goal < 20 ms",
            "",
            f"mystic status --json, {r['status_processes_alive']} processes alive: median "
            f"{r['status_wall_s']:.3f} s wall   goal < 1 s   (as installed: byte-compiled)",
            f"  from source (an editable install, PYTHONDONTWRITEBYTECODE=1): "
            f"{r['status_wall_from_source_s']:.3f} s",
            f"  start-up (interpreter + CLI imports) {r['startup_s']:.3f} s = "
            f"{r['startup_share']:.0%} of it; the interpreter alone {r['interpreter_s']:.3f} s "
            f"= {r['interpreter_share']:.0%}",
        ]
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small and fast (the test suite)")
    parser.add_argument("--json", action="store_true", help="print one JSON object of figures")
    args = parser.parse_args()
    os.environ.setdefault("PYTHONHASHSEED", "0")
    result = asyncio.run(main(args.quick))
    print(json.dumps(result) if args.json else table(result))
