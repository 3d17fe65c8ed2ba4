"""Benchmark: the dashboard of ``mystic serve``, over the sandbox exchange on 127.0.0.1.

The service runs in a process of its own (this file with ``--serve``), so its CPU time is
read from ``/proc`` apart from the clients'. Before it names its URL it takes an hour of
samples (1,800, one per 2 s; ``--quick``: 300): real ``DashboardSampler.sample`` calls over
its MarketData and store, on a wall clock stepped 2 s a sample, after a short workload, so
the history a late page loads is full-size. Then:

1. ``dashboard_load_s``: a page's first load on loopback: in Debian's Chromium (Playwright)
   from ``goto`` until the page has drawn the hour (``body[data-ready]``), else, when the
   browser or Playwright is missing, the page, its script and stylesheet and the history
   fetched with httpx (``load_client`` says which). Best of 3 (goal < 1 s).
2. ``dashboards10_cpu_pct``: ten dashboards' event streams open for ``--seconds`` (10 s;
   quick 4 s): the service process's CPU time over the wall time, in % of one core (goal
   < 2 %). ``idle_cpu_pct`` is the same process with no dashboard open, for comparison:
   the sampler runs either way.
3. ``stream_bytes_per_s``: bytes per second one dashboard's stream sends (goal < 2,048).

    python bench/dashboard.py [--quick] [--json] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

CHROMIUM = Path("/usr/bin/chromium")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    """User plus system CPU seconds of process ``pid`` (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


# -- the service process ---------------------------------------------------------------------


async def serve(exchange_url: str, data: str, samples: int) -> None:
    """The service with an hour of real samples taken before its URL is printed."""
    import uvicorn

    from mystic_trading.api import create_app
    from mystic_trading.api._serve import bind
    from mystic_trading.config import Settings

    settings = Settings(
        store={"url": f"sqlite+aiosqlite:///{data}/mystic.db"},
        provider={"base_url": exchange_url},
        monitor={"enabled": True},
        api={"admin_token": "bench"},
    )
    app = create_app(settings)
    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(
        uvicorn.Config(app, lifespan="on", log_config=None, access_log=False, http="httptools")
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:  # uvicorn has no started event  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    state = app.state.mystic
    md = state.md
    sampler = state.dashboard
    async with httpx.AsyncClient(base_url=url) as client:
        for n in range(60):
            symbol = ("BTCUSDT", "ETHUSDT", "BNBUSDT")[n % 3]
            await client.get(f"/api/v3/ticker/price?symbol={symbol}")
            if n % 10 == 0:
                await client.get(f"/api/v3/klines?symbol={symbol}&interval=1m&limit=100")
    start = time.time() - samples * sampler.interval_s
    for n in range(samples):
        sampler.wall = lambda n=n: start + n * sampler.interval_s
        await sampler.sample(md)
    sampler.wall = time.time
    sampler.ensure_started()
    print(f"serving at {url}", file=sys.stderr, flush=True)
    await task


@contextlib.contextmanager
def service(samples: int) -> Iterator[tuple[subprocess.Popen[str], str]]:
    from mystic_trading.sandbox import SandboxConfig, SandboxServer

    exchange = SandboxServer(SandboxConfig(port=0)).start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            env = {k: v for k, v in os.environ.items() if not k.upper().startswith("MYSTIC_")}
            proc = subprocess.Popen(
                [sys.executable, __file__, "--serve", exchange.url, tmp, str(samples)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            try:
                assert proc.stderr is not None
                seen = []
                for line in proc.stderr:
                    seen.append(line)
                    found = re.search(r"serving at (http://\S+)", line)
                    if found:
                        break
                else:
                    raise SystemExit("the service did not start:\n" + "".join(seen))
                yield proc, found.group(1)
            finally:
                proc.terminate()
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                if proc.stderr is not None:
                    proc.stderr.close()
    finally:
        exchange.stop()


# -- the measurements ------------------------------------------------------------------------


async def load_in_chromium(url: str, rounds: int) -> float:
    from playwright.async_api import async_playwright

    best = float("inf")
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            for _ in range(rounds):
                context = await browser.new_context()  # a cold cache each time
                page = await context.new_page()
                began = time.perf_counter()
                await page.goto(url + "/")
                await page.wait_for_selector("body[data-ready='1']")
                best = min(best, time.perf_counter() - began)
                await context.close()
        finally:
            await browser.close()
    return best


async def load_with_httpx(url: str, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        async with httpx.AsyncClient(base_url=url, timeout=30.0) as client:
            began = time.perf_counter()
            answers = await asyncio.gather(
                client.get("/"),
                client.get("/dashboard/app.js"),
                client.get("/dashboard/app.css"),
                client.get("/api/v1/dashboard/history"),
            )
            for answer in answers:
                answer.raise_for_status()
            best = min(best, time.perf_counter() - began)
    return best


def browser_usable() -> bool:
    if not CHROMIUM.exists():
        return False
    try:
        import playwright  # noqa: F401
    except ImportError:
        return False
    return True


async def streams(url: str, clients: int, seconds: float) -> tuple[int, int]:
    """``clients`` event streams open for ``seconds``: bytes and frames received."""
    received = [0, 0]

    async def one(client: httpx.AsyncClient) -> None:
        async with client.stream("GET", "/api/v1/dashboard/stream") as answer:
            async for chunk in answer.aiter_bytes():
                received[0] += len(chunk)
                received[1] += chunk.count(b"data: ")

    async with httpx.AsyncClient(base_url=url, timeout=None) as client:
        tasks = [asyncio.create_task(one(client)) for _ in range(clients)]
        await asyncio.sleep(seconds)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return received[0], received[1]


async def measure(a: argparse.Namespace, proc: subprocess.Popen[str], url: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    async with httpx.AsyncClient(base_url=url) as client:
        history = (await client.get("/api/v1/dashboard/history")).json()
    out["history_samples"] = len(history["samples"])
    out["history_bytes"] = len(json.dumps(history, separators=(",", ":")))
    if browser_usable():
        out["load_client"] = "chromium"
        out["dashboard_load_s"] = await load_in_chromium(url, 3)
    else:
        out["load_client"] = "httpx"
        out["dashboard_load_s"] = await load_with_httpx(url, 3)

    before, began = cpu_s(proc.pid), time.perf_counter()
    await asyncio.sleep(a.seconds)
    out["idle_cpu_pct"] = 100 * (cpu_s(proc.pid) - before) / (time.perf_counter() - began)

    before, began = cpu_s(proc.pid), time.perf_counter()
    size, frames = await streams(url, 10, a.seconds)
    wall = time.perf_counter() - began
    out["dashboards10_cpu_pct"] = 100 * (cpu_s(proc.pid) - before) / wall
    out["stream_bytes_per_s"] = size / 10 / wall
    out["stream_frames"] = frames
    out["stream_seconds"] = a.seconds
    return out


def main(a: argparse.Namespace) -> dict[str, Any]:
    with service(a.samples) as (proc, url):
        result = asyncio.run(measure(a, proc, url))
    return {"quick": a.quick, **result}


def table(r: dict[str, Any]) -> str:
    return "\n".join(
        [
            f"dashboard, {r['history_samples']} samples of history "
            f"({r['history_bytes'] / 1024:.0f} KiB)" + (" (quick)" if r["quick"] else ""),
            f"{'first load (' + r['load_client'] + ')':32} {r['dashboard_load_s']:>8.3f} s"
            "      goal < 1 s",
            f"{'service CPU, no dashboard':32} {r['idle_cpu_pct']:>8.2f} % of a core",
            f"{'service CPU, 10 dashboards':32} {r['dashboards10_cpu_pct']:>8.2f} % of a core"
            "  goal < 2 %",
            f"{'stream per dashboard':32} {r['stream_bytes_per_s']:>8.0f} B/s      goal < 2048",
        ]
    )


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="seconds, for the test suite")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--seconds", type=float, default=None, help="how long the streams stay open")
    p.add_argument("--serve", nargs=3, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    a.samples = 300 if a.quick else 1800
    a.seconds = a.seconds or (4.0 if a.quick else 10.0)
    return a


if __name__ == "__main__":
    args = parse()
    if args.serve:
        exchange_url, data, samples = args.serve
        asyncio.run(serve(exchange_url, data, int(samples)))
        sys.exit(0)
    result = main(args)
    print(json.dumps(result) if args.json else table(result))
