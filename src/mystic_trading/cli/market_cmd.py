"""``mystic ticker``, ``mystic candles`` and ``mystic backfill``: market data from the shell."""

from __future__ import annotations

import asyncio
import csv
import enum
import io
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from mystic_trading.config import Settings
from mystic_trading.errors import UpstreamUnavailable
from mystic_trading.models import Candle

if TYPE_CHECKING:
    from mystic_trading.marketdata.facade import MarketData

T = TypeVar("T")
console = Console()


class Format(enum.StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def run_with(settings: Settings, work: Callable[[MarketData], Awaitable[T]]) -> T:
    """Open MarketData, run ``work``, close; an unreachable exchange says what to do."""

    from mystic_trading.marketdata.facade import MarketData  # heavy: only when needed

    async def main() -> T:
        async with MarketData.open(settings) as md:
            try:
                return await work(md)
            except UpstreamUnavailable as exc:
                url = settings.provider.base_url
                raise UpstreamUnavailable(
                    f"{exc}. Is the exchange at {url} up? Start the sandbox with "
                    "`mystic sandbox`, or set MYSTIC_PROVIDER__BASE_URL.",
                    provider=exc.provider,
                    endpoint=exc.endpoint,
                    status=exc.status,
                ) from exc

    return asyncio.run(main())


def ticker(
    ctx: typer.Context,
    symbols: Annotated[list[str], typer.Argument(help="Symbols: BTC/USDT or BTCUSDT.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Latest price, 24h change and best bid/ask, with where each answer came from."""
    answers = run_with(ctx.obj.settings, lambda md: md.tickers(symbols))
    if as_json:
        out = [
            {
                "symbol": str(a.value.symbol),
                "price": str(a.value.price),
                "bid": None if a.value.bid is None else str(a.value.bid),
                "ask": None if a.value.ask is None else str(a.value.ask),
                "change_pct": None if a.value.change_pct is None else str(a.value.change_pct),
                "layer": a.layer.value,
                "age_ms": a.age_ms,
                "stale": a.stale,
            }
            for a in answers
        ]
        typer.echo(json.dumps(out, indent=2))
        return
    table = Table(title="Tickers")
    for name in ("symbol", "price", "bid", "ask", "24h %", "from", "age", "stale"):
        table.add_column(name, justify="right" if name not in ("symbol", "from") else "left")
    for a in answers:
        t = a.value
        table.add_row(
            str(t.symbol),
            str(t.price),
            str(t.bid or ""),
            str(t.ask or ""),
            str(t.change_pct or ""),
            a.layer.value,
            f"{a.age_ms} ms",
            "yes" if a.stale else "",
        )
    console.print(table)


def _candle_dict(c: Candle) -> dict[str, Any]:
    return {
        "open_time": c.open_time,
        "open": str(c.open),
        "high": str(c.high),
        "low": str(c.low),
        "close": str(c.close),
        "volume": str(c.volume),
        "close_time": c.close_time,
        "quote_volume": str(c.quote_volume),
        "trades": c.trades,
        "closed": c.closed,
    }


def candles(
    ctx: typer.Context,
    symbol: Annotated[str, typer.Argument(help="Symbol: BTC/USDT or BTCUSDT.")],
    interval: Annotated[
        str, typer.Argument(help="1s 1m 3m 5m 15m 30m 1h 2h 4h 6h 8h 12h 1d 3d 1w 1M")
    ],
    start: Annotated[
        str | None, typer.Option(help="ISO date/time (UTC) or epoch ms; inclusive.")
    ] = None,
    end: Annotated[
        str | None, typer.Option(help="ISO date/time (UTC) or epoch ms; exclusive.")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="At most this many candles.")] = None,
    fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.table,
    yes: Annotated[
        bool, typer.Option("--yes", help="Confirm a request of more than 1,000,000 candles.")
    ] = False,
) -> None:
    """Candles of one symbol: closed ones from the store, only missing ones from the exchange.

    With neither --start nor --end: the last --limit (default 500) candles, the open one last.
    """

    def moment(text: str | None) -> int | str | None:
        if text is None:
            return None
        return int(text) if text.isdigit() else text

    answer = run_with(
        ctx.obj.settings,
        lambda md: md.candles(symbol, interval, moment(start), moment(end), limit, allow_large=yes),
    )
    rows = answer.value
    if fmt is Format.json:
        typer.echo(json.dumps([_candle_dict(c) for c in rows], indent=1))
        return
    if fmt is Format.csv:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        header = list(_candle_dict(rows[0]).keys()) if rows else ["open_time"]
        writer.writerow(header)
        for c in rows:
            writer.writerow(_candle_dict(c).values())
        typer.echo(buffer.getvalue(), nl=False)
        return
    table = Table(
        title=f"{symbol} {interval}: {len(rows)} candles from {answer.layer.value}",
        caption="* the open candle: it will still change",
    )
    for name in ("open time (UTC)", "open", "high", "low", "close", "volume", "trades"):
        table.add_column(name, justify="left" if name.startswith("open time") else "right")
    for c in rows:
        table.add_row(
            _when(c.open_time) + ("" if c.closed else " *"),
            str(c.open),
            str(c.high),
            str(c.low),
            str(c.close),
            str(c.volume.normalize() if c.volume else Decimal(0)),
            str(c.trades),
        )
    console.print(table)


def backfill(
    ctx: typer.Context,
    symbols: Annotated[list[str], typer.Argument(help="Symbols to backfill.")],
    interval: Annotated[str, typer.Option(help="Candle interval, e.g. 1m or 1h.")],
    since: Annotated[str, typer.Option(help="First day to keep, ISO date (UTC).")],
    until: Annotated[
        str | None, typer.Option(help="End (exclusive), ISO date; default: now.")
    ] = None,
) -> None:
    """Store every closed candle since --since: resumable and idempotent.

    Only ranges the store does not know are fetched (ranges known to be empty included), at
    background priority so interactive requests go first. Interrupt it any time; run it again
    to continue where it stopped.
    """

    async def work(md: MarketData) -> dict[str, int]:
        fetched: dict[str, int] = {}
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=console,
        ) as progress:
            for name in symbols:
                task = progress.add_task(f"{name} {interval}", total=None)

                def report(done: int, total: int, task: Any = task) -> None:
                    progress.update(task, completed=done, total=total)

                fetched[name] = await md.backfill(name, interval, since, until, progress=report)
        return fetched

    fetched = run_with(ctx.obj.settings, work)
    for name, pages in fetched.items():
        note = "already complete" if pages == 0 else f"{pages} pages fetched"
        console.print(f"{name} {interval}: {note}")
