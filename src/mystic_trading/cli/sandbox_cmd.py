"""``mystic sandbox``: run the built-in Binance-compatible exchange on loopback."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from mystic_trading.errors import ConfigError

_OPTS = "Rate limits"
_FAULTS = "Faults"
_CLOCK = "Clock"


def sandbox(
    port: Annotated[int, typer.Option(help="TCP port; 0 picks a free one.")] = 9000,
    host: Annotated[
        str, typer.Option(help="Address to bind; loopback only unless --allow-remote.")
    ] = "127.0.0.1",
    seed: Annotated[int, typer.Option(help="Seed of the synthetic market.")] = 0,
    weight_limit: Annotated[
        int,
        typer.Option(help="REQUEST_WEIGHT budget per client IP and window.", rich_help_panel=_OPTS),
    ] = 6000,
    window_s: Annotated[
        int,
        typer.Option(help="Length of the clock-aligned window, seconds.", rich_help_panel=_OPTS),
    ] = 60,
    ban_after: Annotated[
        int,
        typer.Option(
            help="Requests after a 429 (same window) that earn a 418 ban.", rich_help_panel=_OPTS
        ),
    ] = 5,
    ban_base_s: Annotated[
        float, typer.Option(help="First ban length; doubles per repeat.", rich_help_panel=_OPTS)
    ] = 120.0,
    ban_max_s: Annotated[
        float, typer.Option(help="Longest ban (Binance: 3 days).", rich_help_panel=_OPTS)
    ] = 259_200.0,
    latency_ms: Annotated[
        float, typer.Option(help="Added latency of every answer.", rich_help_panel=_FAULTS)
    ] = 0.0,
    jitter_ms: Annotated[
        float, typer.Option(help="Random extra latency, up to this.", rich_help_panel=_FAULTS)
    ] = 0.0,
    error_rate: Annotated[
        float,
        typer.Option(
            help="Share of answers that are an injected 5xx (0-1).", rich_help_panel=_FAULTS
        ),
    ] = 0.0,
    clock_skew_ms: Annotated[
        int,
        typer.Option(
            help="The exchange's clock runs this far ahead (negative: behind) of this machine's.",
            rich_help_panel=_CLOCK,
        ),
    ] = 0,
    aggregation_lag_ms: Annotated[
        int,
        typer.Option(
            help="Candles and tickers show trades only up to this long before the exchange's "
            "clock (klines finalised late).",
            rich_help_panel=_CLOCK,
        ),
    ] = 0,
    admin_token: Annotated[
        str | None,
        typer.Option(
            help="Token for the fault-injection admin API (X-Sandbox-Token); generated if omitted.",
            envvar="MYSTIC_SANDBOX_ADMIN_TOKEN",
            show_default=False,
        ),
    ] = None,
    allow_remote: Annotated[
        bool, typer.Option(help="Allow binding a non-loopback address.")
    ] = False,
) -> None:
    """Run the sandbox exchange: Binance's spot market-data REST API on 127.0.0.1.

    A deterministic synthetic market (50 symbols, candles consistent across intervals, gaps),
    Binance's weights, X-MBX-USED-WEIGHT-1M, 429 with Retry-After and 418 bans, and fault
    injection at run time through POST /sandbox/admin/faults (also clock_skew_ms and
    aggregation_lag_ms). Every answer carries a Date from the exchange's clock and its venue
    id in X-Sandbox-Venue. Counters at GET /sandbox/stats. Stop with Ctrl-C.
    """
    from mystic_trading.sandbox import SandboxConfig, SandboxExchange, run

    try:
        config = SandboxConfig(
            seed=seed,
            host=host,
            port=port,
            weight_limit=weight_limit,
            window_s=window_s,
            ban_after=ban_after,
            ban_base_s=ban_base_s,
            ban_max_s=ban_max_s,
            latency_ms=latency_ms,
            jitter_ms=jitter_ms,
            error_rate=error_rate,
            clock_skew_ms=clock_skew_ms,
            aggregation_lag_ms=aggregation_lag_ms,
            admin_token=admin_token,
            allow_remote=allow_remote,
        )
    except ConfigError as exc:
        raise typer.BadParameter(str(exc)) from None
    console = Console(stderr=True)
    exchange = SandboxExchange(config)

    def ready(url: str, token: str) -> None:
        console.print(f"[bold green]sandbox exchange ready[/] at [bold]{url}[/]", highlight=False)
        console.print(f"  venue: {exchange.venue}  (X-Sandbox-Venue)", highlight=False)
        console.print(f"  try:   curl '{url}/api/v3/ticker/price?symbol=BTCUSDT'", highlight=False)
        console.print(f"  stats: curl {url}/sandbox/stats", highlight=False)
        console.print(
            f"  admin: X-Sandbox-Token: {token}  (POST {url}/sandbox/admin/faults)", highlight=False
        )
        console.print("  Ctrl-C stops it.", highlight=False)

    try:
        run(exchange=exchange, on_ready=ready)
    except KeyboardInterrupt:
        console.print("sandbox stopped")
    except ConfigError as exc:
        if exc.setting != "port":
            raise
        typer.echo(f"error: {exc}; choose another with --port (0 picks a free one)", err=True)
        raise typer.Exit(2) from None
