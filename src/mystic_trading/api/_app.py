"""``create_app(settings)``: the ASGI app of ``mystic serve``.

Plain Starlette routes, not FastAPI: the issue's speed goal is 80 % of a bare Starlette app
returning the same bytes (FastAPI measured 4,700 req/s against Starlette's 11,900 here),
and the Binance-compatible answers are bytes made by msgspec, with nothing for a model layer
to validate. The app is a list of routers, each a function of the shared ``ApiState``
returning its routes (``health_routes``, ``binance_routes``, Mystic's own ``v1_routes`` and
``admin_routes``, then ``openapi_routes``: ``/openapi.json`` and ``/docs``).

The lifespan opens one ``MarketData`` (``MarketData.open(settings)``: memory, Redis, the
store, the exchange behind the throttler), the forwarder and a ``Controller`` on the same
store (``controller_over``), and closes them on shutdown,
which waits for the candle writes already answered (``MarketData.aclose``). Two pure ASGI
middlewares stand in front: metrics outermost (every answer counted, a shed one included),
then the guard (size limits, the in-flight bound); behind them the fast lane (``FastLane``)
answers a GET of an indexed route without the router's and ExceptionMiddleware's layers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute

from mystic_trading.api._admin import admin_routes
from mystic_trading.api._binance import binance_routes
from mystic_trading.api._dashboard import dashboard_routes
from mystic_trading.api._errors import V1Error
from mystic_trading.api._forward import Forwarder
from mystic_trading.api._guard import Guard
from mystic_trading.api._health import health_routes
from mystic_trading.api._metrics import MarketDataCollector, MetricsMiddleware
from mystic_trading.api._openapi import openapi_routes
from mystic_trading.api._state import ApiState, FastLane, RouteIndex, controller_over
from mystic_trading.api._v1 import error_response, v1_routes
from mystic_trading.config import Settings
from mystic_trading.errors import ConfigError, MysticError
from mystic_trading.marketdata.facade import MarketData
from mystic_trading.providers.binance import BinanceProvider

__all__ = ["create_app"]

log = logging.getLogger(__name__)

Router = Callable[[ApiState], Sequence[BaseRoute]]
ROUTERS: tuple[Router, ...] = (
    health_routes,
    binance_routes,
    v1_routes,
    admin_routes,
    openapi_routes,
    dashboard_routes,
)


def create_app(
    settings: Settings,
    *,
    clock: Callable[[], float] = time.monotonic,
    max_in_flight: int | None = None,
    max_body_bytes: int | None = None,
    max_header_bytes: int | None = None,
    max_query_bytes: int | None = None,
    client_share_pct: float | None = None,
    routers: Sequence[Router] = ROUTERS,
) -> Starlette:
    """The service's ASGI app over ``settings``; serve it with its lifespan on.

    ``clock`` (monotonic seconds) times the caches' freshness, as for ``MarketData.open``:
    tests move it instead of sleeping. The ``max_*`` bounds are ``_guard.py``'s; each one
    not given is the setting of the same name in ``api``.
    """
    api = settings.api
    max_in_flight = api.max_in_flight if max_in_flight is None else max_in_flight
    max_body_bytes = api.max_body_bytes if max_body_bytes is None else max_body_bytes
    max_header_bytes = api.max_header_bytes if max_header_bytes is None else max_header_bytes
    max_query_bytes = api.max_query_bytes if max_query_bytes is None else max_query_bytes
    client_share_pct = api.client_share_pct if client_share_pct is None else client_share_pct
    for name, value in (
        ("max_in_flight", max_in_flight),
        ("max_header_bytes", max_header_bytes),
        ("max_query_bytes", max_query_bytes),
    ):
        if value < 1:
            raise ConfigError(
                f"{name} must be at least 1, got {value!r}", setting=name, value=value
            )
    state = ApiState(settings, clock, client_share_pct=client_share_pct)
    state.metrics.registry.register(MarketDataCollector(state))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with (
            MarketData.open(settings, clock=clock) as md,
            controller_over(settings, md.store) as controller,
        ):
            provider = md.provider
            declared = (
                (lambda: provider.declared)
                if isinstance(provider, BinanceProvider)
                else (lambda: None)
            )
            forwarder = Forwarder(
                md.throttler, settings.provider, settings.cache, declared=declared, clock=clock
            )
            state.md_or_none, state.forwarder = md, forwarder
            state.controller_or_none = controller
            warm = asyncio.ensure_future(_warm(md))
            if state.dashboard is not None:
                state.dashboard.ensure_started()
            try:
                yield
            finally:
                if state.dashboard is not None:
                    await state.dashboard.aclose()
                state.md_or_none = state.controller_or_none = None
                warm.cancel()
                await asyncio.gather(warm, return_exceptions=True)
                await forwarder.aclose()
                if state.shares is not None:
                    await state.shares.aclose()

    routes = [route for router in routers for route in router(state)]
    index = RouteIndex(routes)
    routes.insert(0, index)
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={404: _not_found},
        middleware=[
            Middleware(MetricsMiddleware, metrics=state.metrics, clock=time.perf_counter),
            Middleware(
                Guard,
                metrics=state.metrics,
                max_in_flight=max_in_flight,
                max_body_bytes=max_body_bytes,
                max_header_bytes=max_header_bytes,
                max_query_bytes=max_query_bytes,
            ),
            Middleware(FastLane, index=index),
        ],
    )
    app.state.mystic = state
    return app


async def _not_found(request: Request, exc: Exception) -> Response:
    """A path no route serves: under ``/api/v1`` in Mystic's error envelope (naming the
    path), elsewhere Starlette's plain 404. (Every ``/api/v3`` path has a route: Binance's
    other public endpoints are forwarded.)"""
    path = request.url.path
    if not path.startswith("/api/v1/"):
        return PlainTextResponse("Not Found", status_code=404)
    shown = path if len(path) <= 80 else path[:77] + "..."
    return error_response(
        V1Error(404, "not_found", f"no such endpoint: {shown}; see /openapi.json or /docs")
    )


async def _warm(md: MarketData) -> None:
    """Load the exchange's listing before the first request needs it (off the start-up
    path: a slow exchange must not hold the port closed)."""
    try:
        await md.exchange_info()
    except MysticError as exc:
        log.warning("could not load the exchange's listing at start (%s); tried again on use", exc)
