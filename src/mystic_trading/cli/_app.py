"""The root Typer app: global options, error rendering, and the command groups."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from mystic_trading.config import Settings, load_settings
from mystic_trading.errors import ConfigError, MysticError

# One line however long: soft_wrap leaves wrapping to the terminal.
err_console = Console(stderr=True, soft_wrap=True)
log = logging.getLogger("mystic_trading.cli")
LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"

app = typer.Typer(
    name="mystic",
    help=(
        "Mystic: market data from the closest layer that holds a correct answer "
        "(memory, Redis, the store), and the exchange's rate limit spent fully and safely "
        "when it must go upstream.\n\n"
        "Settings come from MYSTIC_* environment variables and an optional TOML file "
        "(--config or MYSTIC_CONFIG); see `mystic config show`."
    ),
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)


class State:
    """What the global options decided, handed to every command through the context."""

    def __init__(self, config_file: Path | None) -> None:
        self.config_file = config_file
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config_file)
            apply_log_level(self._settings.log_level)
            if log.isEnabledFor(logging.DEBUG):
                shown = self._settings.masked()
                log.debug(
                    "settings read (config file: %s): store %s, exchange %s, Redis %s, "
                    "throttle level %s",
                    self.config_file or os.environ.get("MYSTIC_CONFIG") or "none",
                    shown["store"]["url"],
                    shown["provider"]["base_url"],
                    shown["redis_url"] or "none",
                    shown["throttle"]["level"],
                )
        return self._settings


class _CurrentStderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a line is logged, not the one at start-up.

    A Rich progress bar swaps ``sys.stderr`` for a proxy that prints above the bar; a handler
    bound to the original stream wrote into the bar instead (backfill's slow-query lines,
    new-user D11).
    """

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass  # always the current sys.stderr


def setup_logging() -> None:
    """One handler on the root logger, at WARNING until the settings say otherwise."""
    handler = _CurrentStderr()
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)


def apply_log_level(level: str) -> None:
    """``log_level`` for Mystic's own loggers; other libraries stay at WARNING (their DEBUG
    is pages of SQL and socket detail) unless the level is ERROR, which silences them too."""
    number = logging.getLevelName(level)
    logging.getLogger("mystic_trading").setLevel(number)
    logging.getLogger().setLevel(max(number, logging.WARNING))


@app.callback()
def _root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="TOML settings file (else MYSTIC_CONFIG). Environment variables win over it.",
            show_default=False,
        ),
    ] = None,
) -> None:
    ctx.obj = State(config)


def _register() -> None:
    # Imported here so each command module can import `State` from this one. Typer builds
    # every command when the app runs, so each module is imported by every invocation:
    # keep their top level light (drivers, the sandbox, the facade imported inside the
    # command), since `mystic status` must answer within 1 s, start-up included.
    from mystic_trading.cli import (
        config_cmd,
        control_cmd,
        db_cmd,
        demo_cmd,
        market_cmd,
        monitor_cmd,
        optimize_cmd,
        sandbox_cmd,
        serve_cmd,
        status_cmd,
        throttle_cmd,
    )

    app.add_typer(config_cmd.app, name="config")
    app.add_typer(db_cmd.app, name="db")
    app.add_typer(throttle_cmd.app, name="throttle")

    app.command("demo")(demo_cmd.demo)
    app.command("ticker")(market_cmd.ticker)
    app.command("candles")(market_cmd.candles)
    app.command("backfill")(market_cmd.backfill)
    app.command("clear")(control_cmd.clear)
    app.command("sandbox")(sandbox_cmd.sandbox)
    app.command("status")(status_cmd.status)
    app.command("increase")(status_cmd.increase)
    app.command("decrease")(status_cmd.decrease)
    app.command("optimize")(optimize_cmd.optimize)
    app.command("recommendations")(optimize_cmd.recommendations)
    app.command("monitor")(monitor_cmd.monitor)
    app.command("serve")(serve_cmd.serve)


_register()


def main() -> None:
    """Console-script entry point: runs the app and turns Mystic errors into exit codes."""
    setup_logging()
    try:
        app()
    except ConfigError as exc:
        err_console.print(f"[bold red]configuration error[/]: {exc}", highlight=False)
        sys.exit(2)
    except MysticError as exc:
        err_console.print(f"[bold red]error[/] ({type(exc).__name__}): {exc}", highlight=False)
        sys.exit(1)
