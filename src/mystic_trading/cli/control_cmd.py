"""``mystic clear``: drop cached answers in every running process of the venue.

The clear deletes the venue's Redis entries (all, or one symbol's) and writes an audited
entry in the store's control log naming the layers and the symbol; every running process
follows the log (about once a second) and drops the same entries from its memory and its
store query cache (``monitor/_clear.py``). It needs neither the exchange nor a MarketData.
The store's candles stay: closed candles never change, so there is nothing to clear there.
With ``--url`` the service at that URL does the same through its API (``status_cmd.control``).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console

from mystic_trading.cli._remote import Control
from mystic_trading.cli.market_cmd import checked_arguments
from mystic_trading.cli.status_cmd import TokenOption, UrlOption, VenueOption, _run

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def clear(
    ctx: typer.Context,
    symbol_argument: Annotated[
        str | None,
        typer.Argument(
            metavar="[SYMBOL]",
            help="One symbol (BTC/USDT or BTCUSDT), the same as --symbol; omit both to clear "
            "every symbol.",
            show_default=False,
        ),
    ] = None,
    symbol: Annotated[
        str | None,
        typer.Option(
            "--symbol",
            help="Clear only this symbol's entries (BTC/USDT or BTCUSDT).",
            show_default=False,
        ),
    ] = None,
    memory: Annotated[
        bool, typer.Option("--memory", help="Clear each running process's memory cache (L1).")
    ] = False,
    redis: Annotated[
        bool, typer.Option("--redis", help="Clear the Redis cache shared by the processes (L2).")
    ] = False,
    query_cache: Annotated[
        bool,
        typer.Option(
            "--query-cache",
            help="Clear each running process's store query cache (reads go to the database).",
        ),
    ] = False,
    reason: Annotated[
        str, typer.Option("--reason", help="Why, for the audit log.", show_default=False)
    ] = "",
    venue: VenueOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Drop cached tickers, books and candle windows of the venue in every running process
    within 2 s, audited. --memory, --redis and --query-cache choose the layers; none given
    clears all three. Stored candles are never deleted by clear: closed candles never change,
    and fetching them again would spend weight for the same rows. Needs no exchange.
    Exit codes: 0 cleared, 1 Redis could not be cleared (the rest was) or a Mystic error,
    2 bad arguments or settings."""
    # Imported here: every `mystic` invocation imports each command's module (cli/_app.py).
    from mystic_trading.monitor._clear import exchange_form

    if symbol_argument is not None and symbol is not None and symbol_argument != symbol:
        err_console.print(
            f"[bold red]invalid argument[/]: two symbols given ({symbol_argument!r} and "
            f"--symbol {symbol!r}); give one"
        )
        raise typer.Exit(2)
    text = symbol if symbol is not None else symbol_argument
    name = None if text is None else checked_arguments(lambda: exchange_form(text))
    every = not (memory or redis or query_cache)

    async def work(target: Control) -> dict[str, Any]:
        return await target.clear(
            venue=venue,
            memory=memory or every,
            redis=redis or every,
            query_cache=query_cache or every,
            symbol=name,
            actor="cli",
            reason=reason or "mystic clear",
        )

    result = _run(ctx, url, token, work)
    failed = "redis" in result["layers"] and result["redis_error"] is not None
    if as_json:
        typer.echo(json.dumps(result, sort_keys=True))
    else:
        _print(result)
    if failed:
        raise typer.Exit(1)


def _print(result: dict[str, Any]) -> None:
    what = result["symbol"] or "every symbol"
    layers = result["layers"]
    in_processes = [layer.replace("_", " ") for layer in layers if layer != "redis"]
    parts = []
    if "redis" in layers:
        if not result["redis_configured"]:
            parts.append("Redis: none configured")
        elif result["redis_error"] is None:
            parts.append(f"Redis: {result['redis_keys_deleted']} keys deleted")
    if in_processes:
        parts.append(
            f"{' and '.join(in_processes)}: each of the {result['processes_alive']} running "
            f"process(es) drops its entries within {result['applied_within_s']:g} s"
        )
    console.print(
        f"cleared the cache of {what} on {result['venue']} ({', '.join(layers)}). "
        f"{'; '.join(parts)}. Stored candles are kept (audit entry {result['audit_id']})."
    )
    if result["redis_error"] is not None and "redis" in layers:
        err_console.print(
            f"[bold red]error[/]: Redis was not cleared ({result['redis_error']}); "
            f"{result['redis_keys_deleted']} keys deleted before it failed"
        )
