"""``python -m mystic_trading.api [--host H] [--port P] [--workers N]``: ``mystic serve``
without the rest of the CLI (settings from MYSTIC_* and MYSTIC_CONFIG). A setting that is
wrong exits 2, any other Mystic error (a worker that cannot start) 1, each with one line
naming it, as the CLI does."""

from __future__ import annotations

import sys

import typer

from mystic_trading.cli.serve_cmd import serve
from mystic_trading.errors import ConfigError, MysticError


class _State:
    """What ``serve`` reads from the root CLI's context: the settings, read on use."""

    config_file = None

    @property
    def settings(self):  # type: ignore[no-untyped-def]
        from mystic_trading.config import load_settings

        return load_settings()


def main() -> None:
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

    @app.callback(invoke_without_command=True)
    def _root(ctx: typer.Context) -> None:
        ctx.obj = _State()

    app.command("serve")(serve)
    try:
        app(["serve", *sys.argv[1:]])
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except MysticError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
