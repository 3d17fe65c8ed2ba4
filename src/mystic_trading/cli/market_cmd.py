"""``mystic ticker``, ``mystic candles`` and ``mystic backfill``: market data from the shell."""

from __future__ import annotations

import asyncio
import csv
import enum
import io
import json
import os
import re
import sys
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
    from mystic_trading.marketdata.answer import Answer
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
    settings = ctx.obj.settings
    answers = run_with(settings, lambda md: md.tickers(symbols))
    _note_stale(answers, settings)
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
            _age(a.age_ms),
            "[bold red]STALE[/]" if a.stale else "",
        )
    console.print(table)


def _age(ms: int) -> str:
    return f"{ms} ms" if ms < 1000 else f"{ms / 1000:,.1f} s"


def _note_stale(answers: list[Answer[Any]], settings: Settings) -> None:
    """One line on stderr when an answer is stale: in a fresh process that means the
    exchange failed and the store or Redis answered (stale-if-error). The exit status stays
    0: an answer younger than ``cache.stale_if_error_s`` is an answer, as the API gives it
    (``.stale``); a script reads ``stale`` in ``--json`` (new-user D10)."""
    stale = [a for a in answers if a.stale]
    if not stale:
        return
    layers = " and ".join(dict.fromkeys(f"the {a.layer.value}" for a in stale))
    ages = ", ".join(f"{a.value.symbol} {_age(a.age_ms)} old" for a in stale)
    err_console.print(
        f"[bold yellow]stale[/]: exchange at {settings.provider.base_url} unreachable; "
        f"answered from {layers}: {ages} (served up to cache.stale_if_error_s = "
        f"{settings.cache.stale_if_error_s:g} s old)",
        highlight=False,
    )


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

    Over 10,000 candles are fetched and stored as backfill does, and printed as they come:
    memory holds 10 pages of candles however long the range.
    A progress bar shows on stderr when the output goes to a file or a pipe.
    A table that long is printed in plain columns, its count on the last line.
    """

    def check() -> int | None:
        from mystic_trading.marketdata.window import check_range

        symbol_text(symbol)
        Interval.parse(interval)
        check_range(start, end, names=("--start", "--end"))
        return _limit(limit)

    count = checked_arguments(check)
    printer = _CandlePrinter(fmt, f"{symbol} {interval}")

    async def work(md: MarketData) -> None:
        # start/end go on as given: the API reads a string of digits as epoch ms, as the CLI
        # does. A long window comes a stored chunk at a time and is printed as it comes.
        with _ProgressBar(f"{symbol} {interval}") as bar:
            async for answer in md.candle_chunks(
                symbol, interval, start, end, count, allow_large=yes, progress=bar.report
            ):
                printer.add(answer)
        printer.close()

    try:
        run_with(ctx.obj.settings, work)
    except BrokenPipeError:  # `mystic candles ... | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(0) from None


class _ProgressBar:
    """A progress bar on stderr for a long walk, when stdout is not the terminal (the rows
    printed are the progress there; a bar between them would be drawn over them). Started
    by the first report, so a short request shows none; it leaves nothing behind."""

    def __init__(self, description: str) -> None:
        self.description = description
        self._progress: Progress | None = None
        self._task: Any = None

    def __enter__(self) -> _ProgressBar:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def report(self, done: int, total: int) -> None:
        if sys.stdout.isatty():
            return
        if self._progress is None:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=err_console,
                transient=True,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._task = self._progress.add_task(self.description, total=total)
            self._progress.start()
        self._progress.update(self._task, completed=done, total=total)


_TABLE_COLUMNS = ("open time (UTC)", "open", "high", "low", "close", "volume", "trades")
_MIN_WIDTHS = (21, 14, 14, 14, 14, 16, 7)  # of the plain columns of a long window


def _table_cells(c: Candle) -> tuple[str, ...]:
    return (
        _when(c.open_time) + ("" if c.closed else " *"),
        plain(c.open),
        plain(c.high),
        plain(c.low),
        plain(c.close),
        plain(c.volume),
        str(c.trades),
    )


_NOT_FINAL = "* not final yet (the open candle, or one closed within the grace): it may change"


class _CandlePrinter:
    """Prints candle answers as they come, in the documented formats, holding none of them
    past its own chunk (the table of a window of one chunk excepted: it is laid out whole).

    JSON is the same array of objects (``indent=1``) and CSV the same header and rows as when
    the answer was printed whole. A table of one answer is one rich table titled with the
    count and the layer; a longer one is printed in plain columns, its header once, and ends
    with that title line.
    """

    def __init__(self, fmt: Format, what: str) -> None:
        self.fmt = fmt
        self.what = what
        self.count = 0
        self.layers: list[str] = []
        self.open_seen = False
        self._held: Answer[list[Candle]] | None = None  # the table's first answer
        self._widths: list[int] = []

    def add(self, answer: Answer[list[Candle]]) -> None:
        rows = answer.value
        if answer.layer.value not in self.layers:
            self.layers.append(answer.layer.value)
        self.open_seen = self.open_seen or any(not c.closed for c in rows)
        if self.fmt is Format.json:
            self._json(rows)
        elif self.fmt is Format.csv:
            self._csv(rows)
        elif self.count == 0 and self._held is None:
            self._held = answer  # one answer only is a rich table; wait for a second
            return
        else:
            if self._held is not None:
                held, self._held = self._held, None
                self._columns(held.value, header=True)
                self.count += len(held.value)
            self._columns(rows, header=False)
        self.count += len(rows)

    def close(self) -> None:
        if self.fmt is Format.json:
            sys.stdout.write("[]\n" if self.count == 0 else "\n]\n")
        elif self.fmt is Format.csv:
            if self.count == 0:
                sys.stdout.write("open_time\r\n")
        elif self.count == 0:
            answer = self._held
            self._table([] if answer is None else answer.value, answer)
        else:
            layers = " and ".join(self.layers)
            console.print(f"{self.what}: {self.count} candles from {layers}", highlight=False)
            if self.open_seen:
                console.print(_NOT_FINAL, highlight=False)
        sys.stdout.flush()

    def _json(self, rows: list[Candle]) -> None:
        if not rows:
            return
        items = ",\n".join(
            " " + json.dumps(_candle_dict(c), indent=1).replace("\n", "\n ") for c in rows
        )
        sys.stdout.write(("[\n" if self.count == 0 else ",\n") + items)

    def _csv(self, rows: list[Candle]) -> None:
        if not rows:
            return
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        if self.count == 0:
            writer.writerow(_candle_dict(rows[0]).keys())
        for c in rows:  # booleans as true/false, as in the JSON output
            writer.writerow(
                str(v).lower() if isinstance(v, bool) else v for v in _candle_dict(c).values()
            )
        sys.stdout.write(buffer.getvalue())

    def _columns(self, rows: list[Candle], *, header: bool) -> None:
        cells = [_table_cells(c) for c in rows]
        if header:  # room for prices to grow between chunks, so columns rarely shift
            self._widths = [
                max(len(n), w) for n, w in zip(_TABLE_COLUMNS, _MIN_WIDTHS, strict=True)
            ]
        for row in cells:
            self._widths = [max(w, len(v)) for w, v in zip(self._widths, row, strict=True)]
        lines = []
        if header:
            lines.append(self._line(_TABLE_COLUMNS))
            lines.append("  ".join("─" * w for w in self._widths))
        lines.extend(self._line(row) for row in cells)
        sys.stdout.write("\n".join(lines) + "\n")

    def _line(self, cells: tuple[str, ...]) -> str:
        first, *rest = cells
        parts = [first.ljust(self._widths[0])]
        parts.extend(v.rjust(w) for v, w in zip(rest, self._widths[1:], strict=True))
        return "  ".join(parts).rstrip()

    def _table(self, rows: list[Candle], answer: Answer[list[Candle]] | None) -> None:
        source = f" from {answer.layer.value}" if answer is not None else ""
        table = Table(
            title=f"{self.what}: {len(rows)} candles{source}",
            caption=_NOT_FINAL if any(not c.closed for c in rows) else None,
        )
        for name in _TABLE_COLUMNS:
            table.add_column(name, justify="left" if name.startswith("open time") else "right")
        for c in rows:
            table.add_row(*_table_cells(c))
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
        for name in symbols:  # an unknown symbol is refused before any bar is drawn
            await md.symbol(name)
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
        note = (
            "already complete"
            if pages == 0
            else f"{pages:,} {'page' if pages == 1 else 'pages'} fetched"
        )
        console.print(f"{name} {interval}: {note}")
