"""``mystic status``, ``mystic increase`` and ``mystic decrease``: the controller's commands.

Each is one call of :class:`~mystic_trading.monitor.Controller` (which prints nothing),
rendered here as Rich tables or, with ``--json``, as its data. None contacts the exchange
nor needs a process running: status is what the store and Redis hold (control state and the
last heartbeats), and a level step is saved in the store with its audit entry, which every
running process applies within 2 s. Exit codes: 0 done, 1 a Mystic error or a step refused
at the top or bottom of the ladder (nothing changed), 2 bad arguments or settings.

With ``--url`` (or MYSTIC_URL) every controller command (these, ``optimize``,
``recommendations``, ``clear``, ``monitor``) acts through a running service's API instead
(``_remote.Remote``): the same data, rendered the same way, and no store opened here.
:func:`control` is the one place that choice is made.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from mystic_trading.cli._remote import Control, Remote, RemoteError, check_service_url
from mystic_trading.config import ProviderSettings, Settings
from mystic_trading.monitor import Controller

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

T = TypeVar("T")


def _venue_id(value: str | None) -> str | None:
    """The ``--venue`` given, checked as ``provider.venue`` is, before anything opens."""
    if value is None:
        return None
    try:
        ProviderSettings(venue=value)
    except ValidationError as exc:
        why = exc.errors()[0]["msg"].removeprefix("Value error, ")
        raise typer.BadParameter(f"{value!r} is not a venue id: {why}") from exc
    return value


JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
VenueOption = Annotated[
    str | None,
    typer.Option(
        "--venue",
        help="The venue (default: provider.venue, else what provider.base_url last identified as).",
        show_default=False,
        callback=_venue_id,
    ),
]


def _service_url(value: str | None) -> str | None:
    """``--url`` checked before anything is sent."""
    if value is None:
        return None
    try:
        return check_service_url(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc


UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url",
        envvar="MYSTIC_URL",
        help="Act through the `mystic serve` service at this URL (http://host:port) instead "
        "of opening the store and Redis of the settings.",
        show_default=False,
        callback=_service_url,
    ),
]
TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="MYSTIC_API_TOKEN",
        help="The service's api.admin_token, for changes made with --url (better from "
        "MYSTIC_API_TOKEN: a command line is visible to every user of the machine).",
        show_default=False,
    ),
]


def control(
    ctx: typer.Context, url: str | None, token: str | None
) -> contextlib.AbstractAsyncContextManager[Control]:
    """Where a controller command acts, chosen here only: the service at ``url`` through
    its API, else the store and Redis of the settings (read only then: a remote call needs
    no local settings, and a broken local file must not stop it)."""
    if url is not None:
        return Remote(url, token, warn=_warn)
    settings: Settings = ctx.obj.settings
    return Controller.open(settings)


def _warn(message: str) -> None:
    err_console.print(f"[bold yellow]warning[/]: {message}")


def refused(exc: RemoteError) -> typer.Exit:
    """Print a remote refusal as the local command prints the same case; the exit to raise."""
    if exc.code == "at_limit":
        err_console.print(f"[bold red]refused[/]: {escape(str(exc))}")
    elif exc.code == "cooldown":
        err_console.print(f"[bold red]not applied[/]: {escape(str(exc))}")
    elif exc.exit_code == 2:
        err_console.print(f"[bold red]invalid argument[/]: {escape(str(exc))}")
    else:
        err_console.print(f"[bold red]error[/]: {escape(str(exc))}")
    return typer.Exit(exc.exit_code)


def _run(
    ctx: typer.Context,
    url: str | None,
    token: str | None,
    work: Callable[[Control], Awaitable[T]],
) -> T:
    async def run() -> T:
        async with control(ctx, url, token) as target:
            return await work(target)

    try:
        return asyncio.run(run())
    except RemoteError as exc:
        raise refused(exc) from None


# -- formatting -------------------------------------------------------------------------


def _n(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _span(seconds: float) -> str:
    """A duration in its two largest units: ``1h 59m``, ``4m 10s``, ``45s``."""
    whole = max(0, math.ceil(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s" if minutes else f"{secs}s"


def _age(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 120 else _span(seconds)


def _audit_value(field: str, value: str | None) -> str:
    if value is None:
        return "-"
    if field == "ban" and value.isdigit():  # a ban's end, kept as UTC epoch ms
        return datetime.fromtimestamp(int(value) / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return value


# -- mystic status ----------------------------------------------------------------------


def status(
    ctx: typer.Context,
    venue: VenueOption = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """The deployment at a glance: processes alive and gone with their figures, the level
    and its ceiling, the exchange's limit and the weight used, pause or ban, open alerts and
    the last changes. Works with no process running."""
    data = _run(ctx, url, token, lambda target: target.status(venue))
    if as_json:
        typer.echo(json.dumps(data, sort_keys=True))
        return
    _print_status(data)


def _print_status(data: dict[str, Any]) -> None:
    level, limit, used = data["level"], data["limit"], data["weight_used"]
    redis = data["redis"]
    if not redis["configured"]:
        redis_text = "no Redis configured"
    elif redis["available"]:
        redis_text = "Redis reachable"
    else:
        redis_text = f"Redis unavailable ({redis['error']})"
    console.print(
        f"[bold]{data['venue']}[/] ({data['venue_source']}) at {data['now']}\n"
        f"store {data['store']['backend']} {data['store']['target']}; {redis_text}"
    )
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    set_by = f", set {level['set_at']} by {level['set_by']}" if level["set_at"] else ""
    grid.add_row("level", f"{level['name']} ({level['source']}{set_by})")
    grid.add_row(
        "ceiling",
        f"{_n(level['ceiling_weight_per_min'])} weight/min "
        f"({_n(level['ceiling_weight_per_s'], 1)} weight/s)"
        + (
            " per process: with no Redis each process meters its own (the exchange's "
            "limit still holds for all through its usage header)"
            if not data["redis"]["configured"]
            else ""
        ),
    )
    source = (
        f"exchangeInfo kept {limit['info_kept_at']}" if limit["info_kept_at"] else limit["source"]
    )
    grid.add_row(
        "limit",
        f"{_n(limit['weight'])} weight per {_n(limit['window_s'])} s ({source}); "
        f"{_n(limit['safe_weight_per_min'])} weight/min usable after the "
        f"{limit['safety_margin']:.0%} margin",
    )
    grid.add_row(
        "used",
        f"{_n(used['weight_per_min'])} weight/min by {used['processes']} process(es) alive: "
        f"{_n(used['of_limit_pct'], 1)} % of the limit, "
        f"{_n(used['of_ceiling_pct'], 1)} % of the ceiling",
    )
    pause = data["pause"]
    grid.add_row(
        "pause",
        f"until {pause['until']} ({_span(pause['remaining_s'])} left)"
        if pause["paused"]
        else "none",
    )
    ban = data["ban"]
    if ban["banned"]:
        ban_text = f"until {ban['until']} ({_span(ban['remaining_s'])} left): {ban['reason']}"
    elif ban["until"]:
        ban_text = f"none (the ban recorded until {ban['until']} has ended)"
    else:
        ban_text = "none"
    grid.add_row("ban", ban_text)
    console.print(grid)
    _print_processes(data)
    if "health" in data:
        _print_health(data["health"])
    _print_alerts(data["alerts"])
    _print_audit(data["audit"])


def _print_processes(data: dict[str, Any]) -> None:
    beats = data["heartbeats"]
    where = ", ".join(beats["read_from"]) or "nowhere"
    unread = "".join(f"; {k} unread: {v}" for k, v in beats["errors"].items())
    title = (
        f"processes: {data['alive']} alive, {data['gone']} gone "
        f"(heartbeats read from {where}{unread})"
    )
    if not data["processes"]:
        console.print(f"\n{title}: none has beaten in the last hour")
    else:
        table = Table(
            title=title,
            title_justify="left",
            box=box.SIMPLE_HEAD,
            show_footer=True,
            collapse_padding=True,
            pad_edge=False,
        )
        totals = data["totals"]
        columns: list[tuple[str, str, str]] = [
            ("process", "left", "total"),
            ("state", "left", ""),
            ("host", "left", ""),
            ("pid", "right", ""),
            ("beat", "right", ""),
            ("requests", "right", _n(totals["requests"])),
            ("calls", "right", _n(totals["upstream_calls"])),
            ("weight", "right", _n(totals["upstream_weight"])),
            ("weight/s", "right", _n(totals["weight_per_s"], 1)),
            ("429/418", "right", f"{totals['n429']}/{totals['n418']}"),
        ]
        for header, justify, footer in columns:
            # Read whole or not at all: never cut to an ellipsis.
            table.add_column(header, justify=justify, footer=footer, no_wrap=True)  # type: ignore[arg-type]
        for p in data["processes"]:
            state = {"alive": "[green]alive[/]", "stopped": "stopped"}.get(
                p["state"], "[red]gone[/]"
            )
            table.add_row(
                p["id"][:8],
                state,
                p["host"],
                str(p["pid"]),
                _age(p["age_s"]),
                _n(p["requests"]),
                _n(p["upstream_calls"]),
                _n(p["upstream_weight"]),
                _n(p["weight_per_s"], 1),
                f"{p['n429']}/{p['n418']}",
            )
        console.print()
        console.print(table)
        console.print(
            "beat: age of the last heartbeat; calls and weight: sent to the exchange since "
            "each process started; weight/s: over the exchange's window; total: of the "
            "processes alive",
            style="dim",
        )
    for venue, count in data["other_venues"].items():
        console.print(f"also alive: {count} process(es) of venue {venue} (--venue {venue})")


_STATUS_STYLE = {"ok": "green", "warning": "yellow", "critical": "red"}
_STATUS_ORDER = {"critical": 0, "warning": 1, "ok": 2}


def _value(value: Any, unit: str | None) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "-"
    text = f"{value:,.0f}" if abs(value) >= 100 or float(value).is_integer() else f"{value:.3g}"
    return f"{text} {unit}".rstrip() if unit else text


def _print_health(health: dict[str, Any]) -> None:
    """The checks that are not ok in a table, the worst first (a stable sort keeps the
    checker's order within a status), and the names of those that are ok on one line:
    what needs attention stays on one screen. ``--json`` has every check in full."""
    overall = health.get("overall") or "ok"
    every = health.get("checks") or []
    title = f"health: [{_STATUS_STYLE.get(overall, 'bold')}]{overall}[/]"
    if not every:
        console.print(f"\n{title} (no check has run: no process alive)")
        return
    fine = [c["name"] for c in every if c["status"] == "ok"]
    checks = sorted(
        (c for c in every if c["status"] != "ok"), key=lambda c: _STATUS_ORDER.get(c["status"], 3)
    )
    if not checks:
        console.print(f"\n{title} (all {len(fine)} checks: {', '.join(fine)})", highlight=False)
        return
    table = Table(
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        collapse_padding=True,
        pad_edge=False,
    )
    for header, justify in (
        ("check", "left"),
        ("status", "left"),
        ("value", "right"),
        ("process", "left"),
        ("reason", "left"),
    ):
        table.add_column(header, justify=justify, no_wrap=header != "reason")  # type: ignore[arg-type]
    for c in checks:
        style = _STATUS_STYLE.get(c["status"], "bold")
        process = c.get("process")
        table.add_row(
            c["name"],
            f"[{style}]{c['status']}[/]",
            _value(c.get("value"), c.get("unit")),
            process[:8] if process else "deployment",
            escape(c.get("reason") or ""),
        )
    console.print()
    console.print(table)
    if fine:
        console.print(f"ok: {', '.join(fine)}", highlight=False)


def _print_alerts(alerts: list[dict[str, Any]]) -> None:
    if not alerts:
        console.print("\nopen alerts: none")
        return
    table = Table(title="open alerts", title_justify="left", box=box.SIMPLE_HEAD)
    for header in ("opened", "severity", "rule", "subject", "value", "threshold", "message"):
        table.add_column(header)
    for a in alerts:
        style = "red" if a["severity"] == "critical" else "yellow"
        table.add_row(
            a["opened_at_utc"],
            f"[{style}]{a['severity']}[/]",
            a["rule"],
            escape(a.get("subject") or ""),
            f"{a['value']:g}",
            f"{a['threshold']:g}",
            escape(a["message"]),
        )
    console.print()
    console.print(table)


def _print_audit(audit: list[dict[str, Any]]) -> None:
    if not audit:
        console.print("\nlast changes: none recorded")
        return
    table = Table(title="last changes", title_justify="left", box=box.SIMPLE_HEAD)
    for header in ("at", "what", "from", "to", "by", "reason"):
        table.add_column(header)
    for c in audit:
        table.add_row(
            c["at"],
            c["field"],
            _audit_value(c["field"], c["from"]),
            _audit_value(c["field"], c["to"]),
            c["actor"],
            escape(c["reason"] or ""),
        )
    console.print()
    console.print(table)


# -- mystic increase / decrease ---------------------------------------------------------


def _step(
    ctx: typer.Context,
    direction: str,
    reason: str,
    venue: str | None,
    as_json: bool,
    url: str | None,
    token: str | None,
) -> None:
    async def work(target: Control) -> dict[str, Any]:
        move = target.increase if direction == "increase" else target.decrease
        return await move(reason=reason or f"mystic {direction}", actor="cli", venue=venue)

    data = _run(ctx, url, token, work)
    if as_json:
        typer.echo(json.dumps(data, sort_keys=True))
    elif data["changed"]:
        console.print(
            f"{data['venue']}: level {data['from']} -> {data['to']}; ceiling "
            f"{_n(data['from_ceiling_weight_per_min'])} -> "
            f"{_n(data['ceiling_weight_per_min'])} weight/min; every running process applies "
            f"it within {data['applied_within_s']:g} s ({data['processes_alive']} alive now)"
        )
        _, found, why = str(data.get("message") or "").partition("; no effective change")
        if data.get("effective") is False and found:
            err_console.print(f"note: no effective change{why}", highlight=False)
    else:
        err_console.print(f"[bold red]refused[/]: {data['message']}")
    if not data["changed"]:
        raise typer.Exit(1)


ReasonOption = Annotated[
    str, typer.Option("--reason", help="Why, for the audit log.", show_default=False)
]


def increase(
    ctx: typer.Context,
    reason: ReasonOption = "",
    venue: VenueOption = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """One throttle level up for the whole deployment (audited): prints from, to and the new
    ceiling; every running process applies it within 2 s. At the highest level (unlimited)
    nothing changes and the exit code is 1."""
    _step(ctx, "increase", reason, venue, as_json, url, token)


def decrease(
    ctx: typer.Context,
    reason: ReasonOption = "",
    venue: VenueOption = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """One throttle level down for the whole deployment (audited): prints from, to and the
    new ceiling; every running process applies it within 2 s. At the lowest level
    (conservative) nothing changes and the exit code is 1."""
    _step(ctx, "decrease", reason, venue, as_json, url, token)
