"""``mystic serve``: the HTTP service (Binance-compatible ``/api/v3/``, health, metrics)."""

from __future__ import annotations

import contextlib
from typing import Annotated

import typer
from rich.console import Console

from mystic_trading.errors import ConfigError


def serve(
    ctx: typer.Context,
    host: Annotated[
        str | None,
        typer.Option(
            help="Address to bind (default api.host, 127.0.0.1). A non-loopback address "
            "needs api.admin_token.",
            show_default=False,
        ),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(help="TCP port (default api.port, 8080).", show_default=False),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(help="Worker processes; more than 1 needs redis_url (one quota, one cache)."),
    ] = 1,
) -> None:
    """Serve Binance's public market data at /api/v3/ through Mystic's layers, for
    unmodified bots (ccxt: urls.api.public = http://HOST:PORT/api/v3); Mystic's own API at
    /api/v1/ (admin POSTs need api.admin_token), documented at /openapi.json and /docs; the
    dashboard at /; /livez, /readyz and /metrics. Stop with Ctrl-C: candle writes are
    flushed first.
    """
    from mystic_trading.api import serve as run_service
    from mystic_trading.api._serve import bind, check_bind

    state = ctx.obj
    settings = state.settings
    host = settings.api.host if host is None else host
    port = settings.api.port if port is None else port
    console = Console(stderr=True, soft_wrap=True)
    try:
        check_bind(settings, host, workers)
        sock = bind(host, port)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{sock.getsockname()[1]}"
    console.print(f"[bold green]mystic serving[/] at [bold]{url}[/]", highlight=False)
    console.print(f"  ccxt:    urls.api.public = {url}/api/v3", highlight=False)
    console.print(f"  try:     curl '{url}/api/v3/ticker/price?symbol=BTCUSDT'", highlight=False)
    console.print(f"  dashboard: {url}/   API: {url}/api/v1/ (docs: {url}/docs)", highlight=False)
    console.print(f"  health:  {url}/livez  {url}/readyz", highlight=False)
    console.print(f"  metrics: {url}/metrics", highlight=False)
    console.print("  Ctrl-C stops it.", highlight=False)
    with contextlib.suppress(KeyboardInterrupt):
        run_service(
            settings,
            host=host,
            port=port,
            workers=workers,
            sock=sock,
        )
    console.print("mystic serve stopped")
