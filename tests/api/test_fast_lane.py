"""The fast lane (api/_state.py ``FastLane``): a GET or HEAD of an indexed route is answered
without the router, exactly as the router would answer it; everything else takes the full
path. The app is the service's own (``create_app``) with routers of the test's, in process."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from mystic_trading.api import create_app
from mystic_trading.api._state import ApiState
from mystic_trading.config import Settings


class Boom(RuntimeError):
    pass


async def echo(request: Request) -> Response:
    route = request.scope.get("route")
    return JSONResponse(
        {
            "method": request.method,
            "params": dict(request.path_params),
            "route": getattr(route, "path", None),
            # The router marks the scopes it handles; the fast lane does not pass there.
            "routed": "router" in request.scope,
        }
    )


async def fails(request: Request) -> Response:
    raise Boom("an endpoint's own bug")


def routes(state: ApiState) -> Sequence[BaseRoute]:
    return [
        Route("/t/plain", echo, methods=["GET", "POST"]),
        Route("/t/item/{name}", echo),
        Route("/t/fails", fails),
    ]


@pytest.fixture
def client(tmp_path: Path) -> httpx.AsyncClient:
    settings = Settings(
        store={"url": f"sqlite+aiosqlite:///{tmp_path / 'mystic.db'}"},
        provider={"base_url": "http://127.0.0.1:9"},
        monitor={"enabled": False},
    )
    app = create_app(settings, routers=[routes])
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1")


async def test_a_get_of_an_indexed_route_is_answered_in_the_lane_as_the_router_would(
    client: httpx.AsyncClient,
) -> None:
    async with client:
        plain = await client.get("/t/plain")
        item = await client.get("/t/item/BTCUSDT")
        head = await client.head("/t/item/BTCUSDT")
    assert plain.json() == {"method": "GET", "params": {}, "route": "/t/plain", "routed": False}
    assert item.json() == {
        "method": "GET",
        "params": {"name": "BTCUSDT"},
        "route": "/t/item/{name}",
        "routed": False,
    }
    assert head.status_code == 200


async def test_anything_else_takes_the_full_path(client: httpx.AsyncClient) -> None:
    async with client:
        posted = await client.post("/t/plain")
        wrong_method = await client.delete("/t/plain")
        unknown = await client.get("/t/nothing/here")
    assert posted.json() == {"method": "POST", "params": {}, "route": "/t/plain", "routed": True}
    assert wrong_method.status_code == 405
    assert unknown.status_code == 404


async def test_an_endpoint_that_raises_in_the_lane_is_a_500_counted_under_its_route(
    client: httpx.AsyncClient,
) -> None:
    async with client:
        failed = await client.get("/t/fails")
        served = await client.get("/t/item/ETHUSDT")
    assert failed.status_code == 500
    assert served.status_code == 200
    state: ApiState = client._transport.app.state.mystic  # type: ignore[attr-defined]
    text = state.metrics.render().decode()
    assert 'mystic_http_requests_total{route="/t/fails",status_class="5xx"} 1.0' in text
    assert 'mystic_http_requests_total{route="/t/item/{name}",status_class="2xx"} 1.0' in text
