"""``mystic db``: migrate the store's database and show its schema revision."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer

from mystic_trading.cli import venues_cmd
from mystic_trading.store import MigrationStatus, migration_status, upgrade

app = typer.Typer(
    help="Migrate the store's database (SQLite or PostgreSQL) and repair its venues.",
    no_args_is_help=True,
)
app.add_typer(venues_cmd.app, name="venues")

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def _print(status: MigrationStatus, as_json: bool) -> None:
    if as_json:
        data = {
            "target": status.target,
            "current": status.current,
            "head": status.head,
            "up_to_date": status.up_to_date,
        }
        typer.echo(json.dumps(data, sort_keys=True))
        return
    state = "up to date" if status.up_to_date else "behind: run `mystic db upgrade`"
    typer.echo(f"database: {status.target}")
    typer.echo(f"current:  {status.current or '(empty)'}")
    typer.echo(f"head:     {status.head}")
    typer.echo(f"status:   {state}")


@app.command("upgrade")
def upgrade_cmd(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Migrate the database to the newest schema (safe while other processes upgrade too)."""
    _print(asyncio.run(upgrade(ctx.obj.settings.store)), as_json)


@app.command("status")
def status_cmd(
    ctx: typer.Context,
    as_json: JsonOption = False,
    check: Annotated[
        bool, typer.Option("--check", help="Exit with status 1 when the schema is behind.")
    ] = False,
) -> None:
    """Show the database's schema revision against the newest one."""
    status = asyncio.run(migration_status(ctx.obj.settings.store))
    _print(status, as_json)
    if check and not status.up_to_date:
        raise typer.Exit(1)
