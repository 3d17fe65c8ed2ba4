"""The exchange's own clock: skew and steps, the Date header, answers as old as their latency,
and an aggregation lag that keeps candles behind the clock."""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from mystic_trading.sandbox import ManualClock, Market, SandboxServer
from sandbox.conftest import StartSandbox
from sandbox.support import NOW

MIN = 60_000


def admin(sb: SandboxServer) -> dict[str, str]:
    return {"X-Sandbox-Token": sb.admin_token}


def date_ms(r: httpx.Response) -> int:
    """The answer's Date header as epoch ms (whole seconds)."""
    dates = r.headers.get_list("date")
    assert len(dates) == 1, dates  # the exchange's own Date, not also uvicorn's
    return int(parsedate_to_datetime(dates[0]).timestamp()) * 1000


async def server_time(c: httpx.AsyncClient) -> tuple[int, int]:
    r = await c.get("/api/v3/time")
    return r.json()["serverTime"], date_ms(r)


async def last_kline(c: httpx.AsyncClient, interval: str = "1m") -> list[Any]:
    r = await c.get("/api/v3/klines", params={"symbol": "BTCUSDT", "interval": interval})
    row: list[Any] = r.json()[-1]
    return row


async def test_skew_moves_server_time_date_and_open_candle(start_sandbox: StartSandbox) -> None:
    """With a configured skew, serverTime (time, exchangeInfo), Date and the open candle all
    follow the base clock plus the skew."""
    skewed = NOW + 90_000
    sb = await start_sandbox(clock=ManualClock(NOW), clock_skew_ms=90_000, weight_limit=10**9)
    async with httpx.AsyncClient(base_url=sb.url) as c:
        assert await server_time(c) == (skewed, skewed - skewed % 1000)
        info = (await c.get("/api/v3/exchangeInfo", params={"symbol": "BTCUSDT"})).json()
        row = await last_kline(c)
        price = (await c.get("/api/v3/ticker/price", params={"symbol": "BTCUSDT"})).json()
    assert info["serverTime"] == skewed == sb.clock_ms()
    assert row == Market(0).klines("BTCUSDT", "1m", limit=1, now=skewed)[0]
    assert row[0] == skewed - skewed % MIN and price["price"] == row[4]


async def test_clock_steps_either_way_and_data_never_goes_backwards(
    start_sandbox: StartSandbox,
) -> None:
    """A forward step moves the clock and the open candle on; a backward step moves serverTime
    and Date back, but every candle and price already shown stays as it was until the clock has
    caught up."""
    clock = ManualClock(NOW)
    sb = await start_sandbox(clock=clock, weight_limit=10**9)
    async with httpx.AsyncClient(base_url=sb.url) as c:
        first = await last_kline(c)
        r = await c.post(
            "/sandbox/admin/faults", json={"clock_skew_ms": 120_000}, headers=admin(sb)
        )
        assert r.status_code == 200 and r.json()["clock_skew_ms"] == 120_000
        ahead_time = await server_time(c)
        ahead = await c.get("/api/v3/klines", params={"symbol": "BTCUSDT", "interval": "1s"})
        ahead_price = (await c.get("/api/v3/ticker/price", params={"symbol": "BTCUSDT"})).json()
        sb.set_clock_skew(-60_000)  # a 3-minute step back
        back_time = await server_time(c)
        back = await c.get("/api/v3/klines", params={"symbol": "BTCUSDT", "interval": "1s"})
        back_price = (await c.get("/api/v3/ticker/price", params={"symbol": "BTCUSDT"})).json()
        clock.advance(181_000)  # the clock passes what was shown: data moves on
        later = await last_kline(c, "1s")
    assert ahead_time[0] == NOW + 120_000 and back_time[0] == NOW - 60_000
    assert back_time[1] < ahead_time[1]
    open_second = ahead.json()[-1]
    assert open_second[0] == (NOW + 120_000) // 1000 * 1000 and first[0] < open_second[0] - MIN
    assert back.json() == ahead.json() and back_price == ahead_price
    assert later[0] == open_second[0] + 1000
    assert sb.exchange.data_cutoff == NOW + 121_000


async def test_date_header_on_every_api_answer(start_sandbox: StartSandbox) -> None:
    """ok, 400, 404, 429 and injected 5xx answers all carry one Date from the skewed clock."""
    clock = ManualClock(NOW)
    sb = await start_sandbox(clock=clock, clock_skew_ms=-7_500, weight_limit=3)
    expected = (NOW - 7_500) // 1000 * 1000
    async with httpx.AsyncClient(base_url=sb.url) as c:
        answers = [
            await c.get("/api/v3/ping"),
            await c.get("/api/v3/klines", params={"symbol": "NOPE", "interval": "1m"}),
            await c.get("/api/v3/nothing-here"),
            await c.get("/api/v3/ping"),
        ]
        sb.set_error_rate(1.0)
        answers.append(await c.get("/api/v3/ping"))
    assert [r.status_code for r in answers][:4] == [200, 400, 404, 429]
    assert answers[-1].status_code >= 500
    assert {date_ms(r) for r in answers} == {expected}
    assert answers[0].headers["date"] == "Sat, 21 Jun 2025 03:58:43 GMT"


async def test_date_and_server_time_come_from_one_clock_reading() -> None:
    """On the real clock, serverTime lies inside the second its own answer's Date names."""
    async with SandboxServer() as sb, httpx.AsyncClient(base_url=sb.url) as c:
        for _ in range(20):
            stamp, date = await server_time(c)
            assert date <= stamp < date + 1000


async def test_answer_is_computed_before_the_latency(start_sandbox: StartSandbox) -> None:
    """With 300 ms of latency an answer arrives at least 300 ms older than its serverTime and
    Date say: the clock was read and the answer made before the delay, not after."""
    sb = await start_sandbox(latency_ms=300, weight_limit=10**9)
    async with httpx.AsyncClient(base_url=sb.url) as c:
        for path in ("/api/v3/time", "/api/v3/exchangeInfo?symbol=BTCUSDT"):
            r = await c.get(path, timeout=10)
            arrived = time.time_ns() // 1_000_000
            # Both clocks are this machine's wall clock; only a lower bound is asserted.
            assert arrived - r.json()["serverTime"] >= 300
            assert arrived - date_ms(r) >= 300


async def test_aggregation_lag_hides_the_last_trades(start_sandbox: StartSandbox) -> None:
    """With a lag L, candles and tickers show the trades up to now - L while serverTime and Date
    say now; a candle past its close by the clock is still incomplete until L has passed."""
    market = Market(0)
    lag = 1_500
    # A minute whose last 1.5 s hold trades: its candle changes after its close time.
    minute = next(
        m
        for m in range(NOW - NOW % MIN - 100 * MIN, NOW, MIN)
        if any(market.prints("BTCUSDT", m + MIN - s * 1000) for s in (1, 2))
    )
    now = minute + MIN + 200  # the clock is 200 ms into the next minute
    clock = ManualClock(now)
    sb = await start_sandbox(clock=clock, aggregation_lag_ms=lag, weight_limit=10**9)
    async with httpx.AsyncClient(base_url=sb.url) as c:
        stamp, date = await server_time(c)
        row = await last_kline(c)
        price = (await c.get("/api/v3/ticker/price", params={"symbol": "BTCUSDT"})).json()
        stats = (await c.get("/api/v3/ticker/24hr", params={"symbol": "BTCUSDT"})).json()
        clock.advance(lag)
        done = await c.get(
            "/api/v3/klines", params={"symbol": "BTCUSDT", "interval": "1m", "startTime": minute}
        )
    assert (stamp, date) == (now, now - now % 1000)
    assert row[0] == minute and row[6] < stamp  # closed by the clock ...
    assert row == market.klines("BTCUSDT", "1m", limit=1, now=now - lag)[0]
    assert row != sb.final_candle("BTCUSDT", "1m", minute)  # ... but not yet final
    assert price["price"] == row[4] and stats["closeTime"] == now - lag
    assert done.json()[0] == sb.final_candle("BTCUSDT", "1m", minute)


async def test_lag_raised_at_run_time_holds_data_still(start_sandbox: StartSandbox) -> None:
    """Raising the lag never takes shown trades back: data holds still while the clock runs on,
    and moves again once the clock is the lag past what was shown."""
    clock = ManualClock(NOW)
    sb = await start_sandbox(clock=clock, weight_limit=10**9)
    async with httpx.AsyncClient(base_url=sb.url) as c:
        shown = await last_kline(c, "1s")
        r = await c.post(
            "/sandbox/admin/faults", json={"aggregation_lag_ms": 5_000}, headers=admin(sb)
        )
        assert r.json()["aggregation_lag_ms"] == 5_000
        clock.advance(4_000)
        held = await last_kline(c, "1s")
        held_time, _ = await server_time(c)
        clock.advance(2_000)
        moved = await last_kline(c, "1s")
    assert held == shown and held_time == NOW + 4_000
    assert moved[0] == (NOW + 1_000) // 1000 * 1000
