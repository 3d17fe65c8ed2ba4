"""``mystic monitor``: a live view of the deployment, refreshed every second.

Each refresh is one ``Controller.status()`` (the store and Redis: control state and the
processes' last heartbeats), turned into a frame by ``monitor_frame.FrameBuilder`` and drawn
here with Rich: in place on a terminal (``rich.live.Live``), one frame after another when
the output is not a terminal, or as JSON. It needs no exchange and no MarketData, and
changes nothing.

Ctrl-C ends it with exit code 0: it is how a watch is meant to end, as with ``top`` or
``watch``, not a failure. ``--once`` prints one frame and exits, for scripts. A refresh that
fails (the store unreachable for a moment) is shown above the last frame, or as a line
``{"error": ..., "last_frame": n}`` in JSON, and tried again at the next tick; a failure
before the first frame is the command's error (exit 1, or 2 for settings).

With ``--url`` each refresh is one ``GET /api/v1/status`` of the service at that URL
(``status_cmd.control``), over one kept-alive connection.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from mystic_trading.cli._remote import Control, RemoteError
from mystic_trading.cli.monitor_frame import LAYERS, Frame, FrameBuilder, ProcessRow, Span
from mystic_trading.cli.status_cmd import TokenOption, UrlOption, VenueOption, control, refused
from mystic_trading.errors import MysticError

__all__ = ["monitor", "render"]

BAR_WIDTH = 30
ALERTS_SHOWN = 8
WIDE = 200


# -- drawing a frame --------------------------------------------------------------------


def _n(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f} ms"


def _shares(span: Span | None) -> str:
    """The share of answers from each layer, in LAYERS' order: ``81/4/3/2``."""
    if span is None:
        return "-"
    return "/".join(_n(span.hit_pct[layer]) for layer in LAYERS)


def _bar(frame: Frame) -> RenderableType:
    """Weight used per minute against the exchange's limit, coloured by how close it is to
    the usable part (the limit less the safety margin)."""
    limit = frame.limit_weight_per_min or 1.0
    used = frame.used_weight_per_min
    if used >= frame.safe_weight_per_min:
        style = "red"
    elif used >= frame.ceiling_weight_per_min:
        style = "yellow"
    else:
        style = "green"
    bar = ProgressBar(
        total=limit, completed=min(used, limit), width=BAR_WIDTH, complete_style=style
    )
    grid = Table.grid(padding=(0, 1))
    grid.add_row(
        bar,
        Text(
            f"{_n(used)} / {_n(frame.limit_weight_per_min)} weight/min "
            f"({_n(frame.used_of_limit_pct, 1)} % of the limit; ceiling "
            f"{_n(frame.ceiling_weight_per_min)}, {_n(frame.used_of_ceiling_pct, 1)} % of it)"
        ),
    )
    return grid


def _summary(frame: Frame) -> Table:
    t = frame.total
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    grid.add_row("level", f"{frame.level} (ceiling {_n(frame.ceiling_weight_per_min)} weight/min)")
    grid.add_row("weight", _bar(frame))
    grid.add_row(
        "throughput",
        f"{_n(t.per_s.get('requests'), 1)} requests/s, "
        f"{_n(t.per_s.get('upstream_calls'), 2)} upstream calls/s "
        f"({_n(t.per_s.get('upstream_weight'), 1)} weight/s)",
    )
    grid.add_row(
        "hit rate",
        "  ".join(
            f"{layer} {_n(t.hit_pct[layer], 1)} %" if t.hit_pct[layer] is not None else f"{layer} -"
            for layer in LAYERS
        ),
    )
    grid.add_row("queue", f"{frame.queue_depth} waiting, wait p95 {_ms(frame.queue_wait_p95_ms)}")
    grid.add_row(
        "upstream",
        f"latency p50 {_ms(frame.latency_p50_ms)}, p95 {_ms(frame.latency_p95_ms)} (worst process)",
    )
    grid.add_row(
        "429 / 418",
        f"{frame.n429} / {frame.n418} since start (+{t.counts['n429']} / +{t.counts['n418']})",
    )
    trouble = [x for x in (frame.pause, frame.ban) if x]
    grid.add_row("pause, ban", Text("; ".join(trouble), style="red") if trouble else "none")
    if frame.health is not None:
        health = frame.health
        if health["failing"]:
            shown = ", ".join(
                f"{c['name']} {c['status']} ({c['reason']})" for c in health["failing"]
            )
        elif health["checks"]:
            shown = f"all {health['checks']} checks ok"
        else:
            shown = "no process alive reports its health checks"
        style = {"critical": "red", "warning": "yellow"}.get(str(health["overall"]), "")
        grid.add_row("health", Text(f"{health['overall']}: {shown}", style=style))
    if frame.recommendations is not None:
        grid.add_row("advice", f"{frame.recommendations} recommendation(s): mystic recommendations")
    return grid


# Each process's columns: key, header, justification, and the terminal width from which it
# is shown. On a narrow terminal the columns `mystic status` also shows (host, pid) and the
# secondary figures give way: a figure cut to an ellipsis would mislead, a missing one not.
COLUMNS = (
    ("process", "process", "left", 0),
    ("host", "host", "left", 115),
    ("pid", "pid", "right", 115),
    ("state", "state", "left", 0),
    ("requests", "req/s", "right", 0),
    ("hits", "hit % m/r/s/u", "right", 0),
    ("calls", "calls/s", "right", 100),
    ("weight", "weight/s", "right", 0),
    ("queue", "queue", "right", 0),
    ("wait", "wait p95", "right", 100),
    ("p50", "p50 ms", "right", 100),
    ("p95", "p95 ms", "right", 0),
    ("n429", "429/418", "right", 0),
)


def _processes(frame: Frame, width: int) -> RenderableType:
    title = f"processes: {frame.alive} alive, {frame.gone} gone"
    if not frame.processes:
        return Text(f"{title}: none has beaten in the last hour")
    table = Table(
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        collapse_padding=True,
        pad_edge=False,
    )
    shown = [column for column in COLUMNS if width >= column[3]]
    for _, header, justify, _ in shown:
        table.add_column(header, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for row in frame.processes:
        cells = _cells(row)
        table.add_row(*(cells[key] for key, *_ in shown))
    return table


def _cells(row: ProcessRow) -> dict[str, str]:
    span = row.span
    return {
        "process": row.id[:8],
        "host": escape(row.host),
        "pid": str(row.pid),
        "state": {"alive": "[green]alive[/]", "stopped": "stopped"}.get(row.state, "[red]gone[/]"),
        "requests": "-" if span is None else _n(span.per_s.get("requests"), 1),
        "hits": _shares(span),
        "calls": "-" if span is None else _n(span.per_s.get("upstream_calls"), 2),
        "weight": _n(row.weight_per_s, 1),
        "queue": str(row.queue_depth),
        "wait": _ms(row.queue_wait_p95_ms),
        "p50": _n(row.latency_p50_ms),
        "p95": _n(row.latency_p95_ms),
        "n429": f"{row.n429}/{row.n418}",
    }


def _alerts(frame: Frame) -> RenderableType:
    if not frame.alerts:
        return Text("open alerts: none")
    table = Table(title="open alerts", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for header in ("opened", "severity", "rule", "message"):
        table.add_column(header)
    for a in frame.alerts[:ALERTS_SHOWN]:
        style = "red" if a.get("severity") == "critical" else "yellow"
        table.add_row(
            str(a.get("opened_at_utc")),
            f"[{style}]{escape(str(a.get('severity')))}[/]",
            escape(str(a.get("rule"))),
            escape(str(a.get("message"))),
        )
    if len(frame.alerts) > ALERTS_SHOWN:
        table.caption = f"and {len(frame.alerts) - ALERTS_SHOWN} more: mystic status"
    return table


def render(
    frame: Frame,
    *,
    width: int = WIDE,
    interval_s: float | None = None,
    error: str | None = None,
) -> Group:
    """A frame as a Rich renderable (what a terminal ``width`` wide shows at a refresh)."""
    every = "" if interval_s is None else f", every {interval_s:g} s, Ctrl-C to stop"
    basis = (
        "rates since each process started (no earlier heartbeat seen yet)"
        if frame.since_start
        else "rates over each process's last heartbeat interval"
    )
    parts: list[RenderableType] = [
        Text.from_markup(
            f"[bold]mystic monitor[/] {escape(frame.venue)} at {frame.at} "
            f"(frame {frame.number}{every})"
        ),
    ]
    if error is not None:
        parts.append(Text(f"refresh failed, showing the last frame: {error}", style="bold red"))
    parts += [_summary(frame), Text(""), _processes(frame, width), _alerts(frame)]
    parts += [Text(note, style="yellow") for note in frame.notes]
    parts.append(
        Text(
            f"{basis}; hit % m/r/s/u: share of answers from memory, Redis, the store and "
            "upstream; weight/s over the exchange's window; p50/p95: upstream latency",
            style="dim",
        )
    )
    return Group(*parts)


# -- the command ------------------------------------------------------------------------


def monitor(
    ctx: typer.Context,
    venue: VenueOption = None,
    interval: Annotated[
        float,
        typer.Option(
            "--interval",
            min=0.1,
            max=3600.0,
            help="Seconds between refreshes (0.1 to 3600).",
        ),
    ] = 1.0,
    once: Annotated[
        bool,
        typer.Option(
            "--once",
            help="Print one frame and exit, for scripts; its rates are since each process started.",
        ),
    ] = False,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print frames as JSON: one object with --once, else one line per refresh.",
        ),
    ] = False,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """A live view of the deployment, refreshed every second: throughput, hit rate per
    layer, weight used against the exchange's limit, queue, upstream latency p50/p95,
    429/418, pause or ban, open alerts, and each process. Rates are differences between
    each process's last two heartbeats (about 2 s apart); in the first frame, and with
    --once, they are since each process started. Reads the store and Redis only (as
    `mystic status`); needs no exchange and changes nothing. Ctrl-C stops it (exit 0)."""
    console = Console(highlight=False)
    try:
        asyncio.run(_watch(control(ctx, url, token), venue, interval, once, as_json, console))
    except RemoteError as exc:  # before the first frame; later ones are shown and retried
        raise refused(exc) from None
    except KeyboardInterrupt:
        # Ctrl-C is how a live view ends: the last frame stays on screen, exit 0.
        if not as_json and not console.is_terminal:
            console.print("monitor stopped")


async def _watch(
    opened: AbstractAsyncContextManager[Control],
    venue: str | None,
    interval: float,
    once: bool,
    as_json: bool,
    console: Console,
) -> None:
    builder = FrameBuilder()
    async with opened as controller:
        frame = builder.build(await controller.status(venue))
        if once:
            if as_json:
                typer.echo(json.dumps(frame.as_dict(), sort_keys=True))
            else:
                console.print(render(frame, width=console.width))
            return
        if as_json:
            await _repeat(controller, venue, interval, builder, frame, _json_lines)
        elif console.is_terminal:
            with Live(console=console, auto_refresh=False, transient=False) as live:

                def show(frame: Frame, error: str | None) -> None:
                    live.update(
                        render(frame, width=console.width, interval_s=interval, error=error),
                        refresh=True,
                    )

                await _repeat(controller, venue, interval, builder, frame, show)
        else:

            def show(frame: Frame, error: str | None) -> None:
                console.print(render(frame, width=console.width, interval_s=interval, error=error))
                console.print()

            await _repeat(controller, venue, interval, builder, frame, show)


def _json_lines(frame: Frame, error: str | None) -> None:
    data: dict[str, Any] = frame.as_dict()
    if error is not None:
        data = {"error": error, "last_frame": frame.number}
    typer.echo(json.dumps(data, sort_keys=True))


async def _repeat(
    controller: Control,
    venue: str | None,
    interval: float,
    builder: FrameBuilder,
    frame: Frame,
    show: Callable[[Frame, str | None], None],
) -> None:
    """Show ``frame``, then a new one every ``interval`` seconds on the loop's clock (a slow
    refresh skips ticks rather than piling them up), until cancelled (Ctrl-C)."""
    loop = asyncio.get_running_loop()
    due = loop.time()
    error: str | None = None
    while True:
        show(frame, error)
        due += interval
        now = loop.time()
        if due < now:
            due = now + interval - (now - due) % interval
        await asyncio.sleep(due - now)
        try:
            frame = builder.build(await controller.status(venue))
        except MysticError as exc:
            error = f"{type(exc).__name__}: {exc}"
        else:
            error = None
