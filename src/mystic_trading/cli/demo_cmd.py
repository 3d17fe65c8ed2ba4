"""``mystic demo``: a realistic client workload through MarketData, and what it saved.

Starts the sandbox exchange on loopback with realistic latency, opens MarketData on a store of
its own (``demo.db`` beside the default store, so a second run shows what survives a restart,
and your own store never holds a synthetic candle) and no Redis unless asked, runs
several bots asking for tickers, candles and order books with Zipf-skewed symbols, and prints
the optimization report: hit rates per layer, upstream calls saved, cold against warm
latency, throttle utilisation, 429s and 418s as counted by the exchange itself.

The bots ask for the latest candles ("the last 100 1m") and for fixed past weeks of 1h
candles, as a chart or a backtest does. The latest candles always need the open one from the
exchange, so their closed part coming from the store shows as "closed candles fetched",
near zero on a second run; a past week is answered by the store outright on a second run.
``--json`` prints the report as one JSON document on stdout (the rest goes to stderr).
"""

from __future__ import annotations

import asyncio
import collections
import json
import random
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import AnyHttpUrl
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from mystic_trading.config import Settings, StoreSettings, default_database_url
from mystic_trading.models import Interval, to_ms

if TYPE_CHECKING:
    from mystic_trading.marketdata.answer import Answer
    from mystic_trading.marketdata.facade import MarketData

SYMBOLS = (
    "BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "XRPUSDT", "ADAUSDT", "DOGEUSDT", "LTCUSDT",
    "DOTUSDT", "ETHBTC", "BNBBTC", "SOLBTC",
)  # fmt: skip


# Fixed past weeks of 1h candles (a chart, a backtest): every candle in them is closed, so
# the store answers them outright once they have been fetched, on this run or any later one.
WEEK_MS = 7 * 86_400_000
PAST_WEEKS = tuple(to_ms(f"2024-01-{day:02d}") for day in (1, 8, 15, 22))
# The series whose closed candles the bots fetch ("closed candles fetched" counts them).
SERIES_INTERVALS = ("1m", "1h")
PAST_WEEK = "candles 1h, a past week"


def _zipf_weights(n: int, s: float = 1.1) -> list[float]:
    return [1 / (k**s) for k in range(1, n + 1)]


def _past_week(md: MarketData, name: str, start: int) -> Awaitable[Answer[Any]]:
    return md.candles(name, "1h", start=start, end=start + WEEK_MS)


async def _measure_cold_warm(md: MarketData) -> dict[str, dict[str, Any]]:
    """Per kind: median latency of the first ask and of a repeated one (the same request),
    and the layer that answered the first ask most often."""
    calls: dict[str, Callable[[str], Awaitable[Answer[Any]]]] = {
        "ticker": md.ticker,
        "candles 1h x200": lambda n: md.candles(n, "1h", limit=200),
        PAST_WEEK: lambda n: _past_week(md, n, PAST_WEEKS[0]),
    }
    out: dict[str, dict[str, Any]] = {}
    for kind, call in calls.items():
        cold: list[float] = []
        warm: list[float] = []
        layers: collections.Counter[str] = collections.Counter()
        for name in SYMBOLS[-4:]:
            t0 = time.perf_counter()
            answer = await call(name)
            cold.append(time.perf_counter() - t0)
            layers[answer.layer.value] += 1
            for _ in range(20):
                t0 = time.perf_counter()
                await call(name)
                warm.append(time.perf_counter() - t0)
        out[kind] = {
            "first_s": statistics.median(cold),
            "repeated_s": statistics.median(warm),
            "first_from": layers.most_common(1)[0][0],
        }
    return out


async def _bot(md: MarketData, rng: random.Random, until: float, counts: dict[str, int]) -> None:
    weights = _zipf_weights(len(SYMBOLS))
    while time.monotonic() < until:
        name = rng.choices(SYMBOLS, weights)[0]
        roll = rng.random()
        if roll < 0.6:
            await md.ticker(name)
        elif roll < 0.75:
            await md.candles(name, "1m", limit=100)
        elif roll < 0.85:
            await md.candles(name, "1h", limit=200)
        elif roll < 0.9:
            await _past_week(md, name, rng.choice(PAST_WEEKS))
        else:
            await md.order_book(name, 20)
        counts["requests"] += 1
        await asyncio.sleep(rng.uniform(0.002, 0.02))


async def _closed_candles_stored(md: MarketData) -> int:
    """Closed candles the store covers for the bots' series (fetched ones, empty minutes
    included), after the candles still being written are written."""
    await md.flush()
    venue = md.provider.venue
    total = 0
    for name in SYMBOLS:
        for value in SERIES_INTERVALS:
            interval = Interval.parse(value)
            for start, end in await md.store.candles.coverage(venue, name, interval):
                total += interval.count_between(start, end)
    return total


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
    as_json: bool = False,
) -> None:
    from mystic_trading.marketdata.facade import MarketData
    from mystic_trading.sandbox import SandboxConfig, SandboxServer

    # With --json only the report goes to stdout; the rest is for a person, on stderr.
    console = Console(stderr=as_json)
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
            stored_before = await _closed_candles_stored(md)
            cold_warm = await _measure_cold_warm(md)
            counts = {"requests": md.stats()["requests"]}  # the bar counts what the table does
            rng = random.Random(7)  # noqa: S311 - a workload, not a secret
            until = time.monotonic() + seconds
            with Progress(
                TextColumn(f"[bold]{bots} bots polling"),
                BarColumn(),
                TextColumn("{task.fields[requests]} requests"),
                TimeElapsedColumn(),
                console=console,
            ) as progress:
                task = progress.add_task("run", total=seconds, requests=counts["requests"])
                workers = [
                    asyncio.create_task(_bot(md, random.Random(rng.random()), until, counts))  # noqa: S311
                    for _ in range(bots)
                ]
                while not all(w.done() for w in workers):
                    await asyncio.sleep(0.2)
                    left = max(0.0, until - time.monotonic())
                    progress.update(task, completed=seconds - left, requests=counts["requests"])
                await asyncio.gather(*workers)
                stats = md.stats()
                progress.update(task, completed=seconds, requests=stats["requests"])
            stored_after = await _closed_candles_stored(md)
            elapsed = time.monotonic() - started
            report = _report_data(
                stats,
                cold_warm,
                exchange.stats.snapshot(),
                elapsed,
                burst=md.throttler.budget.max_weight,
                stored=(stored_before, stored_after),
            )
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    else:
        _print_report(report, console)


def _pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


LAYERS = ("memory", "redis", "store", "upstream")


def _report_data(
    stats: dict[str, Any],
    cold_warm: dict[str, dict[str, Any]],
    exchange: dict[str, Any],
    seconds: float,
    *,
    burst: int,
    stored: tuple[int, int],
) -> dict[str, Any]:
    """The report as plain data: what ``--json`` prints and the tables show."""
    throttle = stats["throttle"]
    total = exchange["total"]
    budget = throttle["limit"] / throttle["window_s"] * seconds  # over the whole run
    requests, calls = stats["requests"], stats["upstream_calls"]
    return {
        "seconds": round(seconds, 2),
        "venue": stats["venue"],
        "requests": requests,
        "by_kind": {
            kind: {
                "requests": data["requests"],
                **{layer: data["hits"][layer] for layer in LAYERS},
                "stale": data["stale"],
                "coalesced": data["coalesced"],
            }
            for kind, data in stats["by_kind"].items()
        },
        "upstream_calls": calls,
        "calls_saved": stats["calls_saved"],
        "calls_saved_pct": round(100 * (requests - calls) / requests, 1) if requests else None,
        "closed_candles_fetched": stored[1] - stored[0],
        "closed_candles_in_store": stored[1],
        "weight": total["weight"],
        "budget_share_pct": round(100 * total["weight"] / budget, 1) if budget else None,
        "throttle": {
            "level": throttle["level"],
            "sustained_weight_per_s": throttle["ceiling"],
            "burst_weight": burst,
            # The most any run of this length may send: the GCRA admits at most the
            # sustained rate times the time, plus one burst (throttle/_gcra.py).
            "allowance_weight": round(throttle["ceiling"] * seconds + burst),
        },
        "http_429": total["http_429"],
        "http_418": total["http_418"],
        "cold_warm": {
            kind: {
                "first_ms": round(m["first_s"] * 1e3, 3),
                "first_from": m["first_from"],
                "repeated_us": round(m["repeated_s"] * 1e6, 1),
                "faster_x": round(m["first_s"] / m["repeated_s"], 1) if m["repeated_s"] else None,
            }
            for kind, m in cold_warm.items()
        },
    }


def _print_report(report: dict[str, Any], console: Console) -> None:
    kinds = report["by_kind"]
    # One column per kind, one row per layer: narrow enough for 80 columns, no header cut.
    layers = Table(title="Where answers came from")
    layers.add_column("", no_wrap=True)
    for kind in kinds:
        layers.add_column(kind, justify="right", no_wrap=True)
    layers.add_row("requests", *(f"{k['requests']:,}" for k in kinds.values()))
    for layer in LAYERS:
        layers.add_row(
            layer, *(f"{k[layer]:,} ({_pct(k[layer], k['requests'])})" for k in kinds.values())
        )
    layers.add_row("stale", *(f"{k['stale']:,}" for k in kinds.values()))
    layers.add_row("coalesced", *(f"{k['coalesced']:,}" for k in kinds.values()))
    console.print(layers)

    speed = Table(title="Cold against warm (median, same request)")
    for name in ("request", "first ask", "from", "repeated", "faster"):
        speed.add_column(name, justify="left" if name in ("request", "from") else "right")
    for kind, m in report["cold_warm"].items():
        faster = "-" if m["faster_x"] is None else f"{m['faster_x']:,.0f}x"
        speed.add_row(
            kind, f"{m['first_ms']:.1f} ms", m["first_from"], f"{m['repeated_us']:.1f} us", faster
        )
    console.print(speed)

    t = report["throttle"]
    seconds = report["seconds"]
    quota = Table(title="Quota", show_header=False)
    quota.add_column("what", no_wrap=True)
    quota.add_column("value", justify="right", no_wrap=True)
    requests, saved = report["requests"], report["calls_saved"]
    quota.add_row("requests served", f"{requests:,}")
    quota.add_row("upstream calls", f"{report['upstream_calls']:,}")
    quota.add_row("calls saved", f"{saved:,} ({_pct(saved, requests)})")
    quota.add_row(
        "closed candles fetched",
        f"{report['closed_candles_fetched']:,} new (store holds "
        f"{report['closed_candles_in_store']:,})",
    )
    quota.add_row(
        "weight used",
        f"{report['weight']:,} ({report['weight'] / seconds:.0f}/s over {seconds:.1f} s)",
    )
    quota.add_row(
        "weight allowed",
        f"{t['allowance_weight']:,} ({t['sustained_weight_per_s']:g}/s x {seconds:.1f} s "
        f"+ {t['burst_weight']} burst)",
    )
    share = report["budget_share_pct"]
    quota.add_row("budget share", "-" if share is None else f"{share}% of the exchange's")
    quota.add_row(
        "throttle level",
        f"{t['level']}: {t['sustained_weight_per_s']:g} weight/s sustained, "
        f"bursts up to {t['burst_weight']}",
    )
    quota.add_row("429s / 418s", f"{report['http_429']} / {report['http_418']} at the exchange")
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
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help="Print the report as JSON on stdout (progress goes to stderr)."
        ),
    ] = False,
) -> None:
    """Run a realistic workload against the built-in sandbox and print what Mystic saved.

    Uses a store of its own (demo.db beside the default store), never your configured one,
    and no Redis unless --use-redis: the sandbox's synthetic market never mixes with a real
    exchange's data. Run it twice and the second run fetches no closed candle again: past
    weeks come from the store, and "closed candles fetched" counts only those closed since.
    """
    asyncio.run(_demo(ctx.obj.settings, seconds, bots, latency_ms, store, use_redis, as_json))
