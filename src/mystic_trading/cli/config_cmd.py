"""``mystic config``: show the effective settings."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="Inspect the effective settings.", no_args_is_help=True)


@app.command("show")
def show(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Print the effective settings (defaults, TOML file, environment), secrets masked."""
    data = ctx.obj.settings.masked()
    if as_json:
        typer.echo(json.dumps(data, indent=2, sort_keys=True))
        return
    table = Table(title="Mystic settings", show_lines=False)
    table.add_column("setting", overflow="fold")
    table.add_column("environment variable", style="dim", overflow="fold")
    table.add_column("value", overflow="fold")
    for name, env, value in _flatten(data):
        table.add_row(name, env, "" if value is None else str(value))
    Console().print(table)


def _flatten(data: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, str, Any]]:
    rows: list[tuple[str, str, Any]] = []
    for key, value in data.items():
        path = (*prefix, key)
        if isinstance(value, dict):
            rows.extend(_flatten(value, path))
        else:
            rows.append((".".join(path), "MYSTIC_" + "__".join(path).upper(), value))
    return rows
