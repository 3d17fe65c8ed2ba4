"""``mystic demo``: a realistic client workload through MarketData, and what it saved.

Starts the sandbox exchange on loopback with realistic latency, opens MarketData on a store of
its own (``demo.db`` beside the default store, so a second run shows what survives a restart,
and your own store never holds a synthetic candle) and no Redis unless asked, runs
several bots asking for tickers, candles and order books with Zipf-skewed symbols, and prints
the optimization report: hit rates per layer, upstream calls saved, cold against warm
latency, throttle utilisation, 429s and 418s as counted by the exchange itself.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import AnyHttpUrl
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from mystic_trading.config import Settings, StoreSettings, default_database_url

if TYPE_CHECKING:
    from mystic_trading.marketdata.facade import MarketData

console = Console()

SYMBOLS = (
    "BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "XRPUSDT", "ADAUSDT", "DOGEUSDT", "LTCUSDT",
    "DOTUSDT", "ETHBTC", "BNBBTC", "SOLBTC",
)  # fmt: skip


def _zipf_weights(n: int, s: float = 1.1) -> list[float]:
    return [1 / (k**s) for k in range(1, n + 1)]


async def _measure_cold_warm(md: MarketData) -> dict[str, tuple[float, float]]:
    """Median latency of the first (cold) and a repeated (warm) request, per kind."""
    cold: dict[str, list[float]] = {"ticker": [], "candles 1h x200": []}
    warm: dict[str, list[float]] = {"ticker": [], "candles 1h x200": []}
    for name in SYMBOLS[-4:]:
        for kind, call in (
            ("ticker", lambda n=name: md.ticker(n)),
            ("candles 1h x200", lambda n=name: md.candles(n, "1h", limit=200)),
        ):
            t0 = time.perf_counter()
            await call()
            cold[kind].append(time.perf_counter() - t0)
            for _ in range(20):
                t0 = time.perf_counter()
                await call()
                warm[kind].append(time.perf_counter() - t0)
    return {k: (statistics.median(cold[k]), statistics.median(warm[k])) for k in cold}


async def _bot(md: MarketData, rng: random.Random, until: float, counts: dict[str, int]) -> None:
    weights = _zipf_weights(len(SYMBOLS))
    while time.monotonic() < until:
        name = rng.choices(SYMBOLS, weights)[0]
        roll = rng.random()
        if roll < 0.6:
            await md.ticker(name)
        elif roll < 0.8:
            await md.candles(name, "1m", limit=100)
        elif roll < 0.9:
            await md.candles(name, "1h", limit=200)
        else:
            await md.order_book(name, 20)
        counts["requests"] += 1
        await asyncio.sleep(rng.uniform(0.002, 0.02))


def demo_store_url() -> str:
    """The demo's own SQLite file, ``demo.db`` beside the default store."""
    return default_database_url().removesuffix("mystic.db") + "demo.db"


def demo_settings(
    settings: Settings, exchange_url: str, store_url: str | None, use_redis: bool
) -> Settings:
    """``settings`` pointed at the demo's sandbox and store, with Redis only if asked."""
    provider = settings.provider.model_copy(
        update={"base_url": AnyHttpUrl(exchange_url), "venue": None}
    )
    store = StoreSettings(**{**settings.store.model_dump(), "url": store_url or demo_store_url()})
    update: dict[str, Any] = {"provider": provider, "store": store}
    if not use_redis:
        update["redis_url"] = None
    return settings.model_copy(update=update)


async def _demo(
    settings: Settings,
    seconds: float,
    bots: int,
    latency_ms: float,
    store_url: str | None = None,
    use_redis: bool = False,
) -> None:
    from mystic_trading.marketdata.facade import MarketData
    from mystic_trading.sandbox import SandboxConfig, SandboxServer

    async with SandboxServer(
        SandboxConfig(port=0, latency_ms=latency_ms, jitter_ms=latency_ms / 5)
    ) as exchange:
        settings = demo_settings(settings, exchange.url, store_url, use_redis)
        redis = "none" if settings.redis_url is None else settings.masked()["redis_url"]
        console.print(
            f"sandbox exchange at {exchange.url} ({latency_ms:g} ms latency, venue "
            f"{exchange.venue}); demo store: {settings.masked()['store']['url']}; "
            f"Redis: {redis}"
        )
        started = time.monotonic()
        async with MarketData.open(settings) as md:
            await md.exchange_info()
            cold_warm = await _measure_cold_warm(md)
            counts = {"requests": 0}
            rng = random.Random(7)  # noqa: S311 - a workload, not a secret
            until = time.monotonic() + seconds
            with Progress(
                TextColumn(f"[bold]{bots} bots polling"),
                BarColumn(),
                TextColumn("{task.fields[requests]} requests"),
                TimeElapsedColumn(),
                console=console,
            ) as progress:
                task = progress.add_task("run", total=seconds, requests=0)
                workers = [
                    asyncio.create_task(_bot(md, random.Random(rng.random()), until, counts))  # noqa: S311
                    for _ in range(bots)
                ]
                while not all(w.done() for w in workers):
                    await asyncio.sleep(0.2)
                    left = max(0.0, until - time.monotonic())
                    progress.update(task, completed=seconds - left, requests=counts["requests"])
                await asyncio.gather(*workers)
            elapsed = time.monotonic() - started
            _report(md.stats(), cold_warm, exchange.stats.snapshot(), elapsed)


def _pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def _report(
    stats: dict[str, Any],
    cold_warm: dict[str, tuple[float, float]],
    exchange: dict[str, Any],
    seconds: float,
) -> None:
    layers = Table(title="Where answers came from")
    for name in ("kind", "requests", "memory", "redis", "store", "upstream", "stale", "coalesced"):
        layers.add_column(name, justify="left" if name == "kind" else "right")
    for kind, data in stats["by_kind"].items():
        hits, total = data["hits"], data["requests"]
        layers.add_row(
            kind,
            str(total),
            *(f"{hits[layer]} ({_pct(hits[layer], total)})" for layer in hits),
            str(data["stale"]),
            str(data["coalesced"]),
        )
    console.print(layers)

    speed = Table(title="Cold against warm (median, same request)")
    for name in ("request", "cold (exchange)", "warm (cache)", "faster"):
        speed.add_column(name, justify="left" if name == "request" else "right")
    for kind, (cold, warm) in cold_warm.items():
        faster = f"{100 * (1 - warm / cold):.2f}% ({cold / warm:,.0f}x)"
        speed.add_row(kind, f"{cold * 1e3:.1f} ms", f"{warm * 1e6:.1f} us", faster)
    console.print(speed)

    throttle = stats["throttle"]
    total = exchange["total"]
    budget = throttle["limit"] / throttle["window_s"] * seconds  # over the whole run
    quota = Table(title="Quota", show_header=False)
    quota.add_column("what")
    quota.add_column("value", justify="right")
    requests, calls = stats["requests"], stats["upstream_calls"]
    quota.add_row("requests served", str(requests))
    quota.add_row("upstream calls", str(calls))
    quota.add_row("calls saved", f"{stats['calls_saved']} ({_pct(requests - calls, requests)})")
    quota.add_row("weight used at the exchange", str(total["weight"]))
    quota.add_row("share of the exchange's budget used", _pct(total["weight"], budget))
    quota.add_row(
        "throttle level (ceiling)", f"{throttle['level']} ({throttle['ceiling']:g} weight/s)"
    )
    quota.add_row("429s / 418s at the exchange", f"{total['http_429']} / {total['http_418']}")
    console.print(quota)


def demo(
    ctx: typer.Context,
    seconds: Annotated[float, typer.Option(help="How long the bots run.", min=1)] = 10.0,
    bots: Annotated[int, typer.Option(help="Concurrent client bots.", min=1, max=256)] = 8,
    latency_ms: Annotated[
        float, typer.Option(help="Latency the sandbox adds to every answer.", min=0)
    ] = 50.0,
    store: Annotated[
        str | None,
        typer.Option(
            "--store",
            help="Store URL for the demo (default: demo.db beside the default store; never "
            "your configured store).",
            show_default=False,
        ),
    ] = None,
    use_redis: Annotated[
        bool,
        typer.Option(
            "--use-redis", help="Use the configured MYSTIC_REDIS_URL (default: no Redis)."
        ),
    ] = False,
) -> None:
    """Run a realistic workload against the built-in sandbox and print what Mystic saved.

    Uses a store of its own (demo.db beside the default store), never your configured one,
    and no Redis unless --use-redis: the sandbox's synthetic market never mixes with a real
    exchange's data. Run it twice and the second run fetches no closed candle again.
    """
    asyncio.run(_demo(ctx.obj.settings, seconds, bots, latency_ms, store, use_redis))
