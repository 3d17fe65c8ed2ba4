"""``mystic db venues``: which exchanges the store holds data of, and the repair of a store
whose rows are of unknown origin (written before venues were recorded) or unwanted."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from mystic_trading.config import StoreSettings
from mystic_trading.models import utc_text
from mystic_trading.providers.venue import LEGACY_VENUE
from mystic_trading.store import VenueRepository, open_store

app = typer.Typer(
    help=(
        "The venues (exchanges) the store holds data of. Rows written before Mystic "
        f"recorded venues are under {LEGACY_VENUE!r} and are served by no venue until you "
        "move them to the venue they came from or drop them."
    ),
    no_args_is_help=True,
)
console = Console()

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
YesOption = Annotated[bool, typer.Option("--yes", help="Confirm: without it nothing is changed.")]
_TABLES = ("candles", "coverage", "tickers", "books", "control_state", "bans", "exchange_info")


async def _census(settings: StoreSettings) -> dict[str, Any]:
    async with await open_store(settings) as store:
        counts = await store.venues.census()
        urls = await store.venues.records()
    return {
        "venues": {
            venue: {
                "rows": {t: counts[venue].get(t, 0) for t in _TABLES},
                "legacy": venue == LEGACY_VENUE,
                "base_urls": [r.base_url for r in urls if r.venue == venue],
            }
            for venue in sorted(counts)
        },
        "base_urls": [
            {
                "base_url": r.base_url,
                "venue": r.venue,
                "declared": r.declared,
                "first_seen": utc_text(r.first_seen),
                "last_seen": utc_text(r.last_seen),
            }
            for r in urls
        ],
    }


@app.command("list")
def list_cmd(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """The venues the store holds rows of, how many per table, and the base URLs seen."""
    data = asyncio.run(_census(ctx.obj.settings.store))
    if as_json:
        typer.echo(json.dumps(data, sort_keys=True))
        return
    table = Table(title="Venues in the store")
    table.add_column("venue")
    for name in _TABLES:
        table.add_column(name, justify="right")
    table.add_column("base URLs")
    for venue, info in data["venues"].items():
        label = f"{venue} [bold red](unknown origin)[/]" if info["legacy"] else venue
        table.add_row(
            label, *(f"{info['rows'][t]:,}" for t in _TABLES), ", ".join(info["base_urls"])
        )
    console.print(table)
    if LEGACY_VENUE in data["venues"]:
        console.print(
            f"Rows under {LEGACY_VENUE!r} were written before venues were recorded: they may "
            "be the built-in sandbox's (mystic demo) or Binance's, and no venue serves them. "
            f"`mystic db venues move {LEGACY_VENUE} binance-spot --yes` if you know they are "
            f"Binance's; `mystic db venues drop {LEGACY_VENUE} --yes` to delete them."
        )


def _change(
    ctx: typer.Context,
    yes: bool,
    what: str,
    change: Callable[[VenueRepository, str], Awaitable[int]],
    reason: str,
) -> int:
    """Run one audited change of the store's venues once ``--yes`` confirms it."""
    if not yes:
        typer.echo(f"this {what}; add --yes to do it")
        raise typer.Exit(2)

    async def run() -> int:
        async with await open_store(ctx.obj.settings.store) as store:
            return await change(store.venues, reason)

    try:
        return asyncio.run(run())
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


@app.command("move")
def move_cmd(
    ctx: typer.Context,
    source: Annotated[
        str, typer.Argument(help=f"The venue whose rows to re-key, e.g. {LEGACY_VENUE}.")
    ],
    target: Annotated[str, typer.Argument(help="The venue they came from, e.g. binance-spot.")],
    yes: YesOption = False,
) -> None:
    """Re-key every row of SOURCE to TARGET (only into a venue that holds nothing yet)."""
    moved = _change(
        ctx,
        yes,
        f"re-keys every row of {source!r} as {target!r}",
        lambda venues, why: venues.move(source, target, actor="cli", reason=why),
        f"mystic db venues move {source} {target}",
    )
    typer.echo(f"moved {moved:,} rows from {source} to {target}")


@app.command("drop")
def drop_cmd(
    ctx: typer.Context,
    venue: Annotated[str, typer.Argument(help="The venue whose rows to delete.")],
    yes: YesOption = False,
) -> None:
    """Delete every row of VENUE (the audit log keeps a record of it)."""
    dropped = _change(
        ctx,
        yes,
        f"deletes every row of {venue!r}",
        lambda venues, why: venues.drop(venue, actor="cli", reason=why),
        f"mystic db venues drop {venue}",
    )
    typer.echo(f"dropped {dropped:,} rows of {venue}")
