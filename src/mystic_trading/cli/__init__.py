"""The ``mystic`` command line. Rich, Typer and printing live here and nowhere else."""

from mystic_trading.cli._app import app, main

__all__ = ["app", "main"]
