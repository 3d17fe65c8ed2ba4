"""``mystic sandbox``: run the built-in Binance-compatible exchange on loopback."""

from __future__ import annotations

import typer


def sandbox(
    port: int = typer.Option(9000, help="TCP port to listen on."),
) -> None:
    """Run the sandbox exchange (placeholder until the sandbox lands)."""
    raise typer.Exit(0)
