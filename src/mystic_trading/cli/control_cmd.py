"""``mystic clear``: drop cached answers in every running process of the venue.

The clear deletes the venue's Redis entries (all, or one symbol's) and writes an audited
entry in the store's control log, which every running process follows (about once a
second), dropping the same entries from its memory. The store's candles stay: closed
candles never change, so there is nothing to clear there.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from mystic_trading.cli.market_cmd import checked_arguments, run_with
from mystic_trading.config import Settings
from mystic_trading.models import Symbol

if TYPE_CHECKING:
    from mystic_trading.marketdata.facade import MarketData

console = Console()


def clear(
    ctx: typer.Context,
    symbol: Annotated[
        str | None,
        typer.Argument(
            help="One symbol (BTC/USDT or BTCUSDT); omit to clear every symbol.", show_default=False
        ),
    ] = None,
    reason: Annotated[str, typer.Option("--reason", help="Why, for the audit log.")] = "",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Drop cached tickers, books and candle windows, here, in Redis and in every running
    process of the venue (within 2 s, audited). Stored candles stay."""
    settings: Settings = ctx.obj.settings
    name = None if symbol is None else checked_arguments(lambda: Symbol.parse(symbol))

    async def work(md: MarketData) -> dict[str, Any]:
        done = await md.clear(name, actor="cli", reason=reason or "mystic clear")
        return {
            "venue": md.throttler.provider,
            "symbol": None if name is None else name.exchange,
            "redis_keys_deleted": done["redis"],
            "redis": md.redis is not None,
            "audit_id": done["audit_id"],
        }

    result = run_with(settings, work)
    if as_json:
        typer.echo(json.dumps(result))
        return
    what = result["symbol"] or "every symbol"
    redis = (
        f"{result['redis_keys_deleted']} Redis keys deleted"
        if result["redis"]
        else "no Redis configured"
    )
    console.print(
        f"cleared the cache of {what} on {result['venue']}: {redis}; every running process "
        f"drops its memory copies within 2 s (audit entry {result['audit_id']})",
        highlight=False,
    )
