"""A ban from the exchange, the in-flight bound, metrics and the bind checks."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import httpx
import typer
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from mystic_trading.cli.serve_cmd import serve
from mystic_trading.sandbox import SandboxServer

from .conftest import Served, make_settings, serving


async def earn_ban(exchange: SandboxServer) -> None:
    """Another client behind this IP spends the budget and earns a 418 for everyone."""
    exchange.set_budget(weight_limit=1)
    async with httpx.AsyncClient(base_url=exchange.url) as direct:
        for _ in range(3):
            await direct.get("/api/v3/ping")
    assert exchange.stats.total.http_418 >= 1


async def test_during_a_ban_cached_answers_are_stale_and_others_429(served: Served) -> None:
    """Held answers are served marked stale; one nobody holds is 429 with Retry-After and
    -1003; never a 5xx."""
    async with served.client() as c:
        params = {"symbol": "BTCUSDT"}
        assert (await c.get("/api/v3/ticker/price", params=params)).status_code == 200
        assert (await c.get("/api/v3/ticker/24hr", params=params)).status_code == 200
        await earn_ban(served.exchange)
        served.clock.advance(30)  # past freshness and stale-while-revalidate
        statuses = []
        for path in ("/api/v3/ticker/price", "/api/v3/ticker/24hr"):
            held = await c.get(path, params=params)
            statuses.append(held.status_code)
            assert held.status_code == 200, held.text
            assert held.headers["x-mystic-stale"] == "true"
            assert held.headers["x-mystic-layer"] == "memory"
        for path in ("/api/v3/ticker/price", "/api/v3/depth", "/api/v3/avgPrice"):
            none = await c.get(path, params={"symbol": "ETHUSDT"})
            statuses.append(none.status_code)
            assert none.status_code == 429, none.text
            assert int(none.headers["retry-after"]) > 0
            assert none.json()["code"] == -1003
    assert all(s < 500 for s in statuses)


async def test_beyond_max_in_flight_is_503_with_retry_after(
    exchange: SandboxServer, tmp_path: Path
) -> None:
    """With one request in flight and max_in_flight=1, the next is shed at once."""
    async with serving(exchange, tmp_path, max_in_flight=1) as running, running.client() as c:
        assert (await c.get("/readyz")).status_code == 200
        exchange.set_latency(1500)
        slow = asyncio.ensure_future(c.get("/api/v3/depth", params={"symbol": "BTCUSDT"}))
        for _ in range(200):  # until the slow one is in flight (/metrics is not bounded)
            if "mystic_http_in_flight 1.0" in (await c.get("/metrics")).text:
                break
            await asyncio.sleep(0.01)
        shed = await c.get("/api/v3/ping")
        exchange.set_latency(0)
        assert (await slow).status_code == 200
        metrics = await c.get("/metrics")
    assert shed.status_code == 503
    assert shed.headers["retry-after"] == "1"
    assert shed.json()["code"] == -1008
    assert "mystic_http_shed_total 1.0" in metrics.text


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


async def test_metrics_parse_and_count_what_was_sent(served: Served) -> None:
    """/metrics parses; its request count is what was sent, its upstream count the
    sandbox's."""
    exchange = served.exchange
    async with served.client() as c:
        assert (await c.get("/readyz")).status_code == 200
        before = samples((await c.get("/metrics")).text)
        sandbox_before = exchange.stats.total.requests
        for symbol in ("BTCUSDT", "ETHUSDT", "BTCUSDT", "BNBUSDT"):
            await c.get("/api/v3/ticker/price", params={"symbol": symbol})
        await c.get("/api/v3/ticker/24hr", params={"symbol": "ETHUSDT"})
        await c.get("/api/v3/ticker/price", params={"symbol": "NOPE"})
        after = samples((await c.get("/metrics")).text)
    route = ("route", "/api/v3/ticker/price")
    key_ok = ("mystic_http_requests_total", (route, ("status_class", "2xx")))
    key_bad = ("mystic_http_requests_total", (route, ("status_class", "4xx")))
    assert after[key_ok] - before.get(key_ok, 0) == 4
    assert after[key_bad] - before.get(key_bad, 0) == 1
    memory = ("mystic_http_answers_total", (("layer", "memory"), route, ("stale", "false")))
    assert after[memory] == 1
    upstream = ("mystic_upstream_requests_total", ())
    assert after[upstream] - before[upstream] == exchange.stats.total.requests - sandbox_before
    assert after[upstream] > before[upstream]
    hist = ("mystic_http_request_duration_seconds_count", (route,))
    assert after[hist] - before.get(hist, 0) == 5


class _State:
    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self.config_file = None


def run_serve(settings: Any, *args: str) -> Any:
    app = typer.Typer()

    @app.callback()
    def root(ctx: typer.Context) -> None:
        ctx.obj = _State(settings)

    app.command("serve")(serve)
    return CliRunner().invoke(app, ["serve", *args])


def test_serve_refuses_unsafe_or_impossible_binds(exchange: SandboxServer, tmp_path: Path) -> None:
    """A non-loopback bind without a token, workers without Redis and a busy port are one
    clear line each, exit 2."""
    settings = make_settings(exchange, tmp_path)
    result = run_serve(settings, "--host", "0.0.0.0")
    assert result.exit_code == 2
    assert "api.admin_token" in result.output and "0.0.0.0" in result.output
    result = run_serve(settings, "--workers", "2")
    assert result.exit_code == 2
    assert "redis_url" in result.output
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = run_serve(settings, "--port", str(port))
    assert result.exit_code == 2
    assert f"port {port} on 127.0.0.1 is already in use" in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
