"""``mystic ticker``, ``mystic candles`` and ``mystic backfill``: market data from the shell."""

from __future__ import annotations

import asyncio
import csv
import enum
import io
import json
import re
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from mystic_trading.config import Settings
from mystic_trading.errors import DataError, InvalidRange, UpstreamUnavailable
from mystic_trading.models import Candle, Interval, iso_from_ms, symbol_text

if TYPE_CHECKING:
    from mystic_trading.marketdata.facade import MarketData

T = TypeVar("T")
console = Console()
# One line however long: soft_wrap leaves wrapping to the terminal.
err_console = Console(stderr=True, soft_wrap=True)
_WHOLE = re.compile(r"[+-]?[0-9]{1,20}")


class Format(enum.StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def checked_arguments(check: Callable[[], T]) -> T:
    """Run ``check``, the arguments' own checks, before anything is opened or fetched.

    A :class:`DataError` there is an invalid argument: one line on stderr and exit code 2
    (the README's "invalid settings or arguments"). Errors found later, by Mystic itself
    (an unknown symbol, a range too large without --yes), exit 1 in ``_app.main``.
    """
    try:
        return check()
    except DataError as exc:
        err_console.print(
            f"[bold red]invalid argument[/] ({type(exc).__name__}): {escape(str(exc))}",
            highlight=False,
        )
        raise typer.Exit(2) from None


def _limit(text: str | None) -> int | None:
    """--limit: digits only, then the API's own rule (1 to 1,000,000)."""
    from mystic_trading.marketdata.window import check_limit

    if text is None:
        return None
    stripped = text.strip()
    return check_limit(int(stripped) if _WHOLE.fullmatch(stripped) else text, "--limit")


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
    checked_arguments(lambda: [symbol_text(name) for name in symbols])
    answers = run_with(ctx.obj.settings, lambda md: md.tickers(symbols))
    if as_json:
        out = [
            {
                "symbol": str(a.value.symbol),
                "price": plain(a.value.price),
                "bid": None if a.value.bid is None else plain(a.value.bid),
                "ask": None if a.value.ask is None else plain(a.value.ask),
                "change_pct": None if a.value.change_pct is None else plain(a.value.change_pct),
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
            plain(t.price),
            "" if t.bid is None else plain(t.bid),
            "" if t.ask is None else plain(t.ask),
            "" if t.change_pct is None else plain(t.change_pct),
            a.layer.value,
            f"{a.age_ms} ms",
            "yes" if a.stale else "",
        )
    console.print(table)


def plain(value: Decimal) -> str:
    """A decimal in plain notation, as the exchange writes it: 0.00000026, never 2.6E-7."""
    return format(value, "f")


def _candle_dict(c: Candle) -> dict[str, Any]:
    return {
        "open_time": c.open_time,
        "open": plain(c.open),
        "high": plain(c.high),
        "low": plain(c.low),
        "close": plain(c.close),
        "volume": plain(c.volume),
        "close_time": c.close_time,
        "quote_volume": plain(c.quote_volume),
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
    limit: Annotated[
        str | None,
        typer.Option(
            metavar="N", help="At most this many candles, 1 to 1,000,000.", show_default=False
        ),
    ] = None,
    fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.table,
    yes: Annotated[
        bool, typer.Option("--yes", help="Confirm a request of more than 1,000,000 candles.")
    ] = False,
) -> None:
    """Candles of one symbol: closed ones from the store, only missing ones from the exchange.

    With neither --start nor --end: the last --limit (default 500) candles, the open one last.
    A --start in the future gives no candles.
    Epoch ms below 100000000000 look like epoch seconds and are refused.
    """

    def check() -> int | None:
        from mystic_trading.marketdata.window import check_range

        symbol_text(symbol)
        Interval.parse(interval)
        check_range(start, end, names=("--start", "--end"))
        return _limit(limit)

    count = checked_arguments(check)
    # start/end go on as given: the API reads a string of digits as epoch ms, as the CLI does.
    answer = run_with(
        ctx.obj.settings,
        lambda md: md.candles(symbol, interval, start, end, count, allow_large=yes),
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
        for c in rows:  # booleans as true/false, as in the JSON output
            writer.writerow(
                str(v).lower() if isinstance(v, bool) else v for v in _candle_dict(c).values()
            )
        typer.echo(buffer.getvalue(), nl=False)
        return
    table = Table(
        title=f"{symbol} {interval}: {len(rows)} candles from {answer.layer.value}",
        caption=(
            "* not final yet (the open candle, or one closed within the grace): it may change"
            if any(not c.closed for c in rows)
            else None
        ),
    )
    for name in ("open time (UTC)", "open", "high", "low", "close", "volume", "trades"):
        table.add_column(name, justify="left" if name.startswith("open time") else "right")
    for c in rows:
        table.add_row(
            _when(c.open_time) + ("" if c.closed else " *"),
            plain(c.open),
            plain(c.high),
            plain(c.low),
            plain(c.close),
            plain(c.volume),
            str(c.trades),
        )
    console.print(table)


def backfill(
    ctx: typer.Context,
    symbols: Annotated[list[str], typer.Argument(help="Symbols to backfill.")],
    interval: Annotated[str, typer.Option(help="Candle interval, e.g. 1m or 1h.")],
    since: Annotated[str, typer.Option(help="Start (inclusive): ISO date/time (UTC) or epoch ms.")],
    until: Annotated[
        str | None,
        typer.Option(help="End (exclusive): ISO date/time (UTC) or epoch ms; default: now."),
    ] = None,
) -> None:
    """Store every closed candle since --since: resumable and idempotent.

    Only ranges the store does not know are fetched (ranges known to be empty included), at
    background priority so interactive requests go first. Interrupt it any time; run it again
    to continue where it stopped.

    A --since in the future is refused: nothing has closed there yet.
    """

    def check() -> None:
        from mystic_trading.marketdata.window import check_range

        for name in symbols:
            symbol_text(name)
        Interval.parse(interval)
        since_ms, _ = check_range(since, until, names=("--since", "--until"))
        now_ms = int(time.time() * 1000)
        if since_ms is not None and since_ms > now_ms:
            raise InvalidRange(
                f"--since {since.strip()} is in the future (now is {iso_from_ms(now_ms)}): "
                "there are no closed candles to store yet",
                start=since_ms,
            )

    checked_arguments(check)

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
