"""Binance's REQUEST_WEIGHT limits: weights per endpoint, the usage header, 429 and 418 bans."""

from __future__ import annotations

import json

import httpx
import pytest

from mystic_trading.sandbox import ManualClock, SandboxServer
from sandbox.conftest import StartSandbox
from sandbox.support import NOW, fixture

SYMBOLS_21 = json.dumps(["BTCUSDT"] * 21)
SYMBOLS_101 = json.dumps(["ETHBTC"] * 101)

WEIGHTS = [
    ("ping", {}, 1),
    ("time", {}, 1),
    ("exchangeInfo", {}, 20),
    ("klines", {"symbol": "BTCUSDT", "interval": "1m"}, 2),
    ("avgPrice", {"symbol": "BTCUSDT"}, 2),
    ("depth", {"symbol": "BTCUSDT"}, 5),
    ("depth", {"symbol": "BTCUSDT", "limit": "100"}, 5),
    ("depth", {"symbol": "BTCUSDT", "limit": "101"}, 25),
    ("depth", {"symbol": "BTCUSDT", "limit": "500"}, 25),
    ("depth", {"symbol": "BTCUSDT", "limit": "501"}, 50),
    ("depth", {"symbol": "BTCUSDT", "limit": "1000"}, 50),
    ("depth", {"symbol": "BTCUSDT", "limit": "1001"}, 250),
    ("depth", {"symbol": "BTCUSDT", "limit": "5000"}, 250),
    ("ticker/24hr", {"symbol": "BTCUSDT"}, 2),
    ("ticker/24hr", {"symbols": '["BTCUSDT","ETHBTC"]'}, 2),
    ("ticker/24hr", {"symbols": SYMBOLS_21}, 40),
    ("ticker/24hr", {"symbols": SYMBOLS_101}, 80),
    ("ticker/24hr", {}, 80),
    ("ticker/price", {"symbol": "BTCUSDT"}, 2),
    ("ticker/price", {"symbols": '["BTCUSDT"]'}, 4),
    ("ticker/price", {}, 4),
    ("ticker/bookTicker", {"symbol": "BTCUSDT"}, 2),
    ("ticker/bookTicker", {"symbols": '["BTCUSDT","ETHBTC"]'}, 4),
    ("ticker/bookTicker", {}, 4),
]


@pytest.mark.parametrize(
    ("path", "params", "weight"),
    WEIGHTS,
    ids=[f"{p}-{w}-{i}" for i, (p, _, w) in enumerate(WEIGHTS)],
)
async def test_endpoint_weight_is_binances(
    sandbox: SandboxServer, path: str, params: dict[str, str], weight: int
) -> None:
    """Each endpoint and tier charges the weight of the current Binance docs."""
    async with httpx.AsyncClient(base_url=sandbox.url) as c:
        before = int((await c.get("/api/v3/ping")).headers["X-MBX-USED-WEIGHT-1M"])
        charged = sandbox.stats.total.weight
        r = await c.get(f"/api/v3/{path}", params=params)
    assert r.status_code == 200, r.text
    assert int(r.headers["X-MBX-USED-WEIGHT-1M"]) - before == weight
    assert sandbox.stats.total.weight - charged == weight


@pytest.mark.parametrize(
    ("window_s", "header"),
    [(60, "X-MBX-USED-WEIGHT-1M"), (2, "X-MBX-USED-WEIGHT-2S"), (3600, "X-MBX-USED-WEIGHT-1H"),
     (300, "X-MBX-USED-WEIGHT-5M"), (86400, "X-MBX-USED-WEIGHT-1D")],
)  # fmt: skip
async def test_usage_header_named_after_window(
    start_sandbox: StartSandbox, window_s: int, header: str
) -> None:
    """X-MBX-USED-WEIGHT-(intervalNum)(intervalLetter) is named after the window."""
    sb = await start_sandbox(clock=ManualClock(NOW), window_s=window_s)
    async with httpx.AsyncClient(base_url=sb.url) as c:
        ok = await c.get("/api/v3/time")
        bad = await c.get("/api/v3/klines", params={"symbol": "NOPE", "interval": "1m"})
    assert ok.headers[header] == "1"
    assert bad.status_code == 400 and bad.headers[header] == "3"  # errors are charged too
    assert ("X-MBX-USED-WEIGHT" in ok.headers) == (header == "X-MBX-USED-WEIGHT-1M")


async def test_window_resets_on_clock_aligned_boundary(start_sandbox: StartSandbox) -> None:
    """Windows are fixed and aligned to multiples of their length: usage restarts at the edge."""
    clock = ManualClock(10_000_000)  # a multiple of 10 s
    sb = await start_sandbox(clock=clock, window_s=10)
    async with httpx.AsyncClient(base_url=sb.url) as c:
        clock.advance(9_999)
        await c.get("/api/v3/exchangeInfo")
        before = await c.get("/api/v3/ping")
        clock.advance(1)
        after = await c.get("/api/v3/ping")
    assert before.headers["X-MBX-USED-WEIGHT-10S"] == "21"
    assert after.headers["X-MBX-USED-WEIGHT-10S"] == "1"


async def test_429_when_budget_exceeded_with_retry_after(start_sandbox: StartSandbox) -> None:
    """A request past the budget gets 429, -1003 in the current wording, and Retry-After = whole
    seconds to the window's end; it is not charged; the next window serves again."""
    clock = ManualClock(NOW - NOW % 2_000 + 500)  # 2 s windows: this one ends in 1.5 s
    sb = await start_sandbox(clock=clock, weight_limit=10, window_s=2)
    async with httpx.AsyncClient(base_url=sb.url) as c:
        served = [
            await c.get("/api/v3/ticker/price", params={"symbol": "BTCUSDT"}) for _ in range(5)
        ]
        refused = await c.get("/api/v3/ping")
        clock.advance(1_500)
        next_window = await c.get("/api/v3/ping")
    assert [r.status_code for r in served] == [200] * 5
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "2"
    assert refused.headers["X-MBX-USED-WEIGHT-2S"] == "10"
    expected = fixture("errors/429_-1003_too_much_weight_current.json")
    expected["msg"] = expected["msg"].replace("6000", "10").replace("1 MINUTE", "2 SECOND")
    assert refused.json() == expected
    assert next_window.status_code == 200 and next_window.headers["X-MBX-USED-WEIGHT-2S"] == "1"
    assert sb.stats.total.http_429 == 1 and sb.stats.total.weight == 11


async def test_retry_after_is_at_least_one_second(start_sandbox: StartSandbox) -> None:
    """Retry-After is an integer of at least 1, even 1 ms before the window ends."""
    clock = ManualClock(1_000_001_999)
    sb = await start_sandbox(clock=clock, weight_limit=1, window_s=2)
    async with httpx.AsyncClient(base_url=sb.url) as c:
        await c.get("/api/v3/ping")
        refused = await c.get("/api/v3/ping")
    assert (refused.status_code, refused.headers["Retry-After"]) == (429, "1")


async def test_418_ban_escalates_and_ends(start_sandbox: StartSandbox) -> None:
    """Sending on after a 429 earns a 418 ban with Retry-After to its end; bans double for
    repeat offenders up to the cap; after a ban the client is served again."""
    clock = ManualClock(2_000_000_000)
    sb = await start_sandbox(
        clock=clock, weight_limit=2, window_s=2, ban_after=3, ban_base_s=5, ban_max_s=12
    )
    durations = []
    async with httpx.AsyncClient(base_url=sb.url) as c:
        for _ in range(3):
            statuses = [(await c.get("/api/v3/ping")).status_code for _ in range(5)]
            assert statuses == [200, 200, 429, 429, 429]
            ban = await c.get("/api/v3/ping")  # the third request after the 429
            assert ban.status_code == 418
            until = clock.now + int(ban.headers["Retry-After"]) * 1000
            expected = fixture("errors/418_-1003_ip_banned_current.json")
            expected["msg"] = expected["msg"].replace("1702275878212", str(until))
            assert ban.json() == expected
            durations.append(int(ban.headers["Retry-After"]))
            clock.advance(1_000)
            during = await c.get("/api/v3/time")
            assert during.status_code == 418
            assert int(during.headers["Retry-After"]) == durations[-1] - 1
            clock.now = until
            assert (await c.get("/api/v3/time")).status_code == 200  # ban over
            clock.now += 2_000 - clock.now % 2_000  # a fresh window for the next round
    assert durations == [5, 10, 12]
    assert sb.stats.total.http_418 == 6


async def test_well_behaved_client_is_never_banned(start_sandbox: StartSandbox) -> None:
    """A client that waits Retry-After after each 429 never meets a 418."""
    clock = ManualClock(3_000_000_000)
    sb = await start_sandbox(clock=clock, weight_limit=3, window_s=2, ban_after=2)
    statuses = []
    async with httpx.AsyncClient(base_url=sb.url) as c:
        for _ in range(30):
            r = await c.get("/api/v3/ping")
            statuses.append(r.status_code)
            if r.status_code == 429:
                clock.advance(int(r.headers["Retry-After"]) * 1000)
    assert 418 not in statuses and statuses.count(429) >= 5


async def test_budget_is_per_client_ip(start_sandbox: StartSandbox) -> None:
    """Each client IP has its own budget (X-Forwarded-For trusted to simulate two IPs)."""
    sb = await start_sandbox(clock=ManualClock(NOW), weight_limit=1, trust_forwarded_for=True)
    async with httpx.AsyncClient(base_url=sb.url) as c:
        a1 = await c.get("/api/v3/ping", headers={"X-Forwarded-For": "10.0.0.1"})
        a2 = await c.get("/api/v3/ping", headers={"X-Forwarded-For": "10.0.0.1"})
        b1 = await c.get("/api/v3/ping", headers={"X-Forwarded-For": "10.0.0.2"})
    assert (a1.status_code, a2.status_code, b1.status_code) == (200, 429, 200)
    by_ip = sb.stats.snapshot()["by_ip"]
    assert isinstance(by_ip, dict)
    assert by_ip["10.0.0.1"]["http_429"] == 1 and by_ip["10.0.0.2"]["ok"] == 1


async def test_budget_change_at_run_time(start_sandbox: StartSandbox) -> None:
    """Halving the budget mid-run takes effect at once and shows in exchangeInfo."""
    sb: SandboxServer = await start_sandbox(clock=ManualClock(NOW), weight_limit=40)
    async with httpx.AsyncClient(base_url=sb.url) as c:
        r = await c.post(
            "/sandbox/admin/faults",
            json={"weight_limit": 20},
            headers={"X-Sandbox-Token": sb.admin_token},
        )
        assert r.status_code == 200 and r.json()["weight_limit"] == 20
        info = await c.get("/api/v3/exchangeInfo")
        after = await c.get("/api/v3/ping")
    assert info.json()["rateLimits"][0]["limit"] == 20
    assert after.status_code == 429
