"""Fault injection: latency, a share of 5xx, outages (refused connections or 503), over the
token-protected admin endpoint and in process."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from mystic_trading.sandbox import ManualClock, SandboxConfig, SandboxServer
from sandbox.conftest import StartSandbox
from sandbox.support import NOW


def admin(sb: SandboxServer) -> dict[str, str]:
    return {"X-Sandbox-Token": sb.admin_token}


async def test_latency_delays_answers(start_sandbox: StartSandbox) -> None:
    """With added latency a client with a shorter timeout times out; without, it is served."""
    sb = await start_sandbox(clock=ManualClock(NOW))
    async with httpx.AsyncClient(base_url=sb.url) as c:
        r = await c.post("/sandbox/admin/faults", json={"latency_ms": 3000}, headers=admin(sb))
        assert r.json()["latency_ms"] == 3000
        with pytest.raises(httpx.ReadTimeout):
            await c.get("/api/v3/ping", timeout=0.2)
        await c.post("/sandbox/admin/faults", json={"latency_ms": 0}, headers=admin(sb))
        assert (await c.get("/api/v3/ping", timeout=5)).status_code == 200


async def test_error_share_injects_5xx_with_binance_bodies(start_sandbox: StartSandbox) -> None:
    """error_rate 1 answers every API request 503/500 with -1008/-1001 bodies, uncharged and
    counted; a partial rate hits a matching share."""
    sb = await start_sandbox(clock=ManualClock(NOW), error_rate=1.0)
    async with httpx.AsyncClient(base_url=sb.url) as c:
        answers = [await c.get("/api/v3/ping") for _ in range(4)]
        assert {r.status_code for r in answers} == {500, 503}
        for r in answers:
            assert r.json()["code"] == (-1008 if r.status_code == 503 else -1001)
        assert sb.stats.total.injected_5xx == 4 and sb.stats.total.weight == 0
        sb.set_error_rate(0.25)
        statuses = [(await c.get("/api/v3/ping")).status_code for _ in range(200)]
    failed = sum(s >= 500 for s in statuses)
    assert 20 <= failed <= 80
    assert statuses.count(200) == 200 - failed


async def test_outage_refuses_connections_then_recovers(start_sandbox: StartSandbox) -> None:
    """A "refuse" outage closes the listener (connect refused) and reopens the same port."""
    sb = await start_sandbox(clock=ManualClock(NOW))
    port = sb.port
    async with httpx.AsyncClient(base_url=sb.url) as c:
        r = await c.post(
            "/sandbox/admin/faults",
            json={"outage_s": 0.6, "outage_mode": "refuse"},
            headers=admin(sb),
        )
        assert r.status_code == 200
    refused = False
    for _ in range(100):
        try:
            async with httpx.AsyncClient(base_url=sb.url) as c:
                await c.get("/api/v3/ping", timeout=1)
        except httpx.ConnectError:
            refused = True
            break
        except (httpx.ReadError, httpx.RemoteProtocolError):
            pass  # accepted just as the listener closed: cut, not yet refused
        await asyncio.sleep(0.02)
    assert refused
    back = None
    for _ in range(300):
        try:
            async with httpx.AsyncClient(base_url=sb.url) as c:
                back = await c.get("/api/v3/ping", timeout=1)
            break
        except (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError):
            await asyncio.sleep(0.02)
    assert back is not None and back.status_code == 200
    assert sb.port == port


async def test_outage_503_answers_503_then_recovers(start_sandbox: StartSandbox) -> None:
    """A "503" outage answers every API request 503 until it ends."""
    sb = await start_sandbox(clock=ManualClock(NOW))
    async with httpx.AsyncClient(base_url=sb.url) as c:
        sb.start_outage(0.3, "503")
        down = await c.get("/api/v3/ping")
        assert down.status_code == 503 and down.json()["code"] == -1008
        statuses = []
        for _ in range(300):
            statuses.append((await c.get("/api/v3/ping")).status_code)
            if statuses[-1] == 200:
                break
            await asyncio.sleep(0.01)
    assert statuses[-1] == 200
    assert sb.stats.total.injected_5xx >= 1


@pytest.mark.parametrize(
    "headers", [{}, {"X-Sandbox-Token": "wrong-token-value"}, {"X-Sandbox-Token": ""}]
)
async def test_admin_refuses_missing_or_wrong_token(
    start_sandbox: StartSandbox, headers: dict[str, str]
) -> None:
    """The admin endpoints answer 401 without the right token and change nothing."""
    sb = await start_sandbox(clock=ManualClock(NOW))
    async with httpx.AsyncClient(base_url=sb.url) as c:
        r = await c.post("/sandbox/admin/faults", json={"error_rate": 1.0}, headers=headers)
        reset = await c.post("/sandbox/admin/reset", headers=headers)
        ok = await c.get("/api/v3/ping")
    assert (r.status_code, reset.status_code) == (401, 401)
    assert ok.status_code == 200
    assert sb.faults.settings.error_rate == 0.0


async def test_admin_token_from_config_and_generated(start_sandbox: StartSandbox) -> None:
    """A configured token is used as given; without one a fresh random token is generated."""
    given = await start_sandbox(admin_token="a-long-enough-token")
    generated = await start_sandbox()
    other = await start_sandbox()
    assert given.admin_token == "a-long-enough-token"
    assert len(generated.admin_token) >= 20 and generated.admin_token != other.admin_token


async def test_admin_refuses_non_loopback_client(sandbox: SandboxServer) -> None:
    """A client from a non-loopback address gets 403 even with the right token."""
    transport = httpx.ASGITransport(app=sandbox.app, client=("10.1.2.3", 4321))
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as c:
        r = await c.post("/sandbox/admin/reset", headers={"X-Sandbox-Token": sandbox.admin_token})
        stats = await c.get("/sandbox/stats")
    assert (r.status_code, stats.status_code) == (403, 403)


async def test_admin_rejects_bad_settings(start_sandbox: StartSandbox) -> None:
    """Unknown keys or out-of-range values answer 400."""
    sb = await start_sandbox()
    async with httpx.AsyncClient(base_url=sb.url) as c:
        for body in ({"nonsense": 1}, {"error_rate": 2}, {"outage_s": 1, "outage_mode": "x"}, [1]):
            r = await c.post("/sandbox/admin/faults", json=body, headers=admin(sb))
            assert r.status_code == 400, body


async def test_stats_and_reset(start_sandbox: StartSandbox) -> None:
    """GET /sandbox/stats counts requests, weight and outcomes per endpoint and IP; reset zeroes
    counters and limiter state."""
    sb = await start_sandbox(clock=ManualClock(NOW), weight_limit=5)
    async with httpx.AsyncClient(base_url=sb.url) as c:
        await c.get("/api/v3/ticker/price", params={"symbol": "BTCUSDT"})
        await c.get("/api/v3/ticker/price", params={"symbol": "NOPE"})
        await c.get("/api/v3/ticker/price", params={"symbol": "BTCUSDT"})
        stats = (await c.get("/sandbox/stats")).json()
        assert stats["by_endpoint"]["ticker/price"] == {
            "requests": 3, "weight": 4, "ok": 1, "http_400": 1, "http_429": 1, "http_418": 0,
            "injected_5xx": 0,
        }  # fmt: skip
        assert stats["by_ip"]["127.0.0.1"]["requests"] == 3
        assert stats["total"] == stats["by_endpoint"]["ticker/price"]
        assert (await c.post("/sandbox/admin/reset", headers=admin(sb))).status_code == 200
        assert (await c.get("/sandbox/stats")).json()["total"]["requests"] == 0
        again = await c.get("/api/v3/ticker/price", params={"symbol": "BTCUSDT"})
    assert again.status_code == 200 and again.headers["X-MBX-USED-WEIGHT-1M"] == "2"


async def test_admin_sets_and_reports_clock_settings(start_sandbox: StartSandbox) -> None:
    """clock_skew_ms and aggregation_lag_ms are accepted over the admin API (whole ms, as JSON
    numbers), reported by GET, and reset puts them back to the config."""
    clock = ManualClock(NOW)
    sb = await start_sandbox(clock=clock, clock_skew_ms=100)
    async with httpx.AsyncClient(base_url=sb.url) as c:
        r = await c.post(
            "/sandbox/admin/faults",
            json={"clock_skew_ms": -2500.0, "aggregation_lag_ms": 750},
            headers=admin(sb),
        )
        assert r.status_code == 200, r.text
        shown = (await c.get("/sandbox/admin/faults", headers=admin(sb))).json()
        stamp = (await c.get("/api/v3/time")).json()["serverTime"]
        await c.post("/sandbox/admin/reset", headers=admin(sb))
        after = (await c.get("/api/v3/time")).json()["serverTime"]
    assert (shown["clock_skew_ms"], shown["aggregation_lag_ms"]) == (-2500, 750)
    assert stamp == NOW - 2500 and after == NOW + 100
    assert (sb.exchange.clock_skew_ms, sb.exchange.aggregation_lag_ms) == (100, 0)


@pytest.mark.parametrize(
    ("key", "value"),
    [("clock_skew_ms", "1000"), ("clock_skew_ms", 1.5), ("clock_skew_ms", True),
     ("clock_skew_ms", None), ("clock_skew_ms", 10**13), ("aggregation_lag_ms", -1),
     ("aggregation_lag_ms", 10**9), ("aggregation_lag_ms", [5])],
)  # fmt: skip
async def test_admin_rejects_bad_clock_settings(
    start_sandbox: StartSandbox, key: str, value: object
) -> None:
    """A bad clock setting answers 400 naming the key, and nothing in the body is applied."""
    sb = await start_sandbox(clock=ManualClock(NOW))
    async with httpx.AsyncClient(base_url=sb.url) as c:
        r = await c.post(
            "/sandbox/admin/faults", json={"latency_ms": 50, key: value}, headers=admin(sb)
        )
        stamp = (await c.get("/api/v3/time")).json()["serverTime"]
    assert r.status_code == 400 and key in r.json()["error"]
    assert sb.faults.settings.latency_ms == 0.0
    assert stamp == NOW and sb.exchange.aggregation_lag_ms == 0
    with pytest.raises(ValueError, match=key):
        (sb.set_clock_skew if key == "clock_skew_ms" else sb.set_aggregation_lag)(value)  # type: ignore[arg-type]


async def test_reset_during_a_refuse_outage_reopens_the_listener_at_once() -> None:
    """A reset ends a 60 s refuse outage now: the port accepts connections again well
    before the outage would have ended."""
    server = SandboxServer(SandboxConfig(port=0)).start()
    try:
        server.start_outage(60, "refuse")
        for _ in range(100):  # the listener closes
            try:
                _, w = await asyncio.open_connection("127.0.0.1", server.port)
            except OSError:
                break
            w.close()
            await asyncio.sleep(0.02)
        server.reset()
        for _ in range(250):  # 5 s at most, far below the 60 s outage
            try:
                _, w = await asyncio.open_connection("127.0.0.1", server.port)
            except OSError:
                await asyncio.sleep(0.02)
                continue
            w.close()
            await w.wait_closed()
            return
        raise AssertionError("the listener stayed closed after reset")
    finally:
        server.stop()
