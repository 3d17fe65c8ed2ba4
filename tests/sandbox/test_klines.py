"""Klines over HTTP: Binance's ordering rules, limits, the open candle, listing and gaps."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from mystic_trading.models import Interval
from mystic_trading.sandbox import ManualClock, Market, SandboxServer
from sandbox.conftest import StartSandbox
from sandbox.support import NOW, aggregate, as_numbers

MIN = 60_000


async def klines(client: httpx.AsyncClient, **params: Any) -> list[list[Any]]:
    r = await client.get("/api/v3/klines", params=params)
    assert r.status_code == 200, r.text
    rows: list[list[Any]] = r.json()
    return rows


def test_no_gap_near_now() -> None:
    """Precondition of the ordering tests: no downtime in the two days before NOW (seed 0)."""
    assert not any(g.end > NOW - 2 * 86_400_000 and g.start <= NOW for g in Market(0).gaps)


async def test_no_bounds_gives_most_recent_ending_with_open_candle(
    client: httpx.AsyncClient,
) -> None:
    """Without startTime/endTime: the most recent `limit` candles, the last one still open."""
    rows = await klines(client, symbol="BTCUSDT", interval="1m", limit=7)
    assert len(rows) == 7
    assert [r[0] for r in rows] == [NOW - NOW % MIN - (6 - i) * MIN for i in range(7)]
    assert rows[-1][0] <= NOW < rows[-1][6]
    assert all(r[6] == r[0] + MIN - 1 for r in rows)


async def test_start_gives_oldest_from_start(client: httpx.AsyncClient) -> None:
    """With startTime: the oldest candles opening at or after startTime."""
    start = NOW - 100 * MIN + 1234
    rows = await klines(client, symbol="BTCUSDT", interval="1m", startTime=start, limit=5)
    first = start - start % MIN + MIN
    assert [r[0] for r in rows] == [first + i * MIN for i in range(5)]


async def test_end_only_gives_most_recent_up_to_end(client: httpx.AsyncClient) -> None:
    """With endTime only: the most recent candles opening at or before endTime."""
    end = NOW - 50 * MIN + 5
    rows = await klines(client, symbol="BTCUSDT", interval="1m", endTime=end, limit=4)
    last = end - end % MIN
    assert [r[0] for r in rows] == [last - (3 - i) * MIN for i in range(4)]


async def test_both_bounds_start_from_start_not_past_end(client: httpx.AsyncClient) -> None:
    """With both: from startTime, never past endTime, at most `limit`."""
    start, end = NOW - 30 * MIN, NOW - 20 * MIN
    rows = await klines(client, symbol="ETHBTC", interval="1m", startTime=start, endTime=end)
    first = start - start % MIN + MIN  # start is mid-minute: the next minute is the first
    assert [r[0] for r in rows] == [first + i * MIN for i in range(10)]
    short = await klines(
        client, symbol="ETHBTC", interval="1m", startTime=start, endTime=end, limit=3
    )
    assert short == rows[:3]


@pytest.mark.parametrize(("limit", "expected"), [(None, 500), ("1000", 1000), ("5000", 1000)])
async def test_limit_default_and_maximum(
    client: httpx.AsyncClient, limit: str | None, expected: int
) -> None:
    """limit defaults to 500 and is clamped to the maximum 1000."""
    params = {"symbol": "BTCUSDT", "interval": "1m"}
    if limit is not None:
        params["limit"] = limit
    assert len(await klines(client, **params)) == expected


async def test_start_after_end_gives_empty(client: httpx.AsyncClient) -> None:
    """startTime > endTime selects nothing: [] (like "from start, not past end")."""
    assert (
        await klines(client, symbol="BTCUSDT", interval="1m", startTime=NOW, endTime=NOW - 1) == []
    )


async def test_future_start_gives_empty(client: httpx.AsyncClient) -> None:
    """A startTime after now selects no candle: none has opened yet."""
    assert await klines(client, symbol="BTCUSDT", interval="1h", startTime=NOW + 3_600_000) == []


async def test_microsecond_timestamps_equal_milliseconds(client: httpx.AsyncClient) -> None:
    """startTime/endTime in microseconds select what the same instant in ms selects."""
    ms = await klines(client, symbol="BTCUSDT", interval="5m", startTime=NOW - 3_600_000)
    us = await klines(client, symbol="BTCUSDT", interval="5m", startTime=(NOW - 3_600_000) * 1000)
    assert ms == us and len(ms) == 12


async def test_http_rows_equal_market_oracle(
    client: httpx.AsyncClient, sandbox: SandboxServer
) -> None:
    """The endpoint serves exactly Market.klines for the same arguments."""
    for interval in ("1s", "1m", "15m", "4h", "1d", "3d", "1w", "1M"):
        http = await klines(client, symbol="SOLUSDT", interval=interval, limit=50)
        oracle = sandbox.market.klines("SOLUSDT", interval, limit=50, now=NOW)
        assert http == oracle and len(http) == 50, interval


async def test_open_candle_is_partial_and_matches_ticker(start_sandbox: StartSandbox) -> None:
    """The open candle aggregates the seconds so far, its close is the ticker price, and it
    grows into the closed candle once its minute has passed."""
    clock = ManualClock(NOW)
    sb = await start_sandbox(clock=clock, weight_limit=10**9)
    async with httpx.AsyncClient(base_url=sb.url) as c:
        open_row = (await klines(c, symbol="BTCUSDT", interval="1m", limit=1))[0]
        minute = open_row[0]
        seconds = await klines(
            c, symbol="BTCUSDT", interval="1s", startTime=minute, endTime=NOW, limit=1000
        )
        assert len(seconds) == (NOW - minute) // 1000 + 1
        assert as_numbers(open_row) == aggregate(seconds)
        price = (await c.get("/api/v3/ticker/price", params={"symbol": "BTCUSDT"})).json()
        assert price["price"] == open_row[4]
        clock.advance(MIN)
        closed = (await klines(c, symbol="BTCUSDT", interval="1m", startTime=minute, limit=1))[0]
        all_seconds = await klines(c, symbol="BTCUSDT", interval="1s", startTime=minute, limit=60)
    assert closed[6] < clock.now
    assert as_numbers(closed) == aggregate(all_seconds)
    assert float(closed[5]) >= float(open_row[5])
    assert closed != open_row  # 31 more seconds of BTCUSDT trading changed the candle


async def test_open_higher_candle_is_aggregate_so_far(client: httpx.AsyncClient) -> None:
    """The open 1h candle is the aggregate of its 1m candles so far, the open one included."""
    hour = (await klines(client, symbol="ETHUSDT", interval="1h", limit=1))[0]
    minutes = await klines(client, symbol="ETHUSDT", interval="1m", startTime=hour[0])
    assert len(minutes) == (NOW - hour[0]) // MIN + 1
    assert as_numbers(hour) == aggregate(minutes)


async def test_not_yet_listed_symbol_is_invalid(client: httpx.AsyncClient) -> None:
    """Before its listing date a symbol does not exist: -1121."""
    r = await client.get("/api/v3/klines", params={"symbol": "NEWUSDT", "interval": "1m"})
    assert (r.status_code, r.json()["code"]) == (400, -1121)


async def test_no_candles_before_listing(start_sandbox: StartSandbox) -> None:
    """After listing, a range before the listing is [], and the first candle opens at it."""
    listed = Market(0).listing_ms("NEWUSDT")
    sb = await start_sandbox(clock=ManualClock(listed + 3 * 86_400_000))
    async with httpx.AsyncClient(base_url=sb.url) as c:
        before = await klines(c, symbol="NEWUSDT", interval="1m", startTime=0, endTime=listed - 1)
        first_1m = await klines(c, symbol="NEWUSDT", interval="1m", startTime=0, limit=1)
        first_1d = await klines(c, symbol="NEWUSDT", interval="1d", startTime=0)
        hours = await klines(c, symbol="NEWUSDT", interval="1h", startTime=0, limit=24)
    assert before == []
    assert first_1m[0][0] == listed
    day = listed - listed % 86_400_000
    assert [r[0] for r in first_1d] == [day + i * 86_400_000 for i in range(4)]
    # the listing day's candle holds only the minutes since the listing (10:00 UTC)
    same_day = [h for h in hours if h[0] < day + 86_400_000]
    assert same_day[0][0] == listed and as_numbers(first_1d[0]) == aggregate(same_day)


async def test_gap_has_no_candles_and_higher_intervals_skip_it(
    client: httpx.AsyncClient, sandbox: SandboxServer
) -> None:
    """In downtime no 1m candle exists; an hour holds only its existing minutes; an hour fully
    inside the gap is absent."""
    gap = next(
        g
        for g in sandbox.market.gaps
        if g.end - g.start >= 2 * 3_600_000 and 1.6e12 < g.start < NOW
    )
    rows = await klines(
        client, symbol="BTCUSDT", interval="1m", startTime=gap.start - 5 * MIN, limit=10
    )
    times = [r[0] for r in rows]
    assert times == [gap.start - (5 - i) * MIN for i in range(5)] + [
        gap.end + i * MIN for i in range(5)
    ]
    h0 = gap.start - gap.start % 3_600_000
    hours = await klines(
        client, symbol="BTCUSDT", interval="1h", startTime=h0, endTime=gap.end + 3_600_000
    )
    hour_times = [h[0] for h in hours]
    assert h0 + 3_600_000 not in hour_times  # wholly inside the gap
    if gap.start > h0:
        minutes = await klines(
            client, symbol="BTCUSDT", interval="1m", startTime=h0, endTime=gap.start
        )
        assert as_numbers(hours[0]) == aggregate(minutes[: (gap.start - h0) // MIN])
    for other in ("ETHBTC", "XRPUSDT"):  # the same downtime for every symbol
        inside = await klines(
            client, symbol=other, interval="1m", startTime=gap.start, endTime=gap.end - 1
        )
        assert inside == []


async def test_quiet_minutes_have_zero_volume_and_flat_price(client: httpx.AsyncClient) -> None:
    """Minutes without trades exist, with O=H=L=C=previous close and zero volumes."""
    rows = await klines(client, symbol="BNBETH", interval="1m", limit=1000)
    quiet = [i for i, r in enumerate(rows) if r[8] == 0 and i > 0]
    assert len(quiet) > 50
    for i in quiet:
        r, prev = rows[i], rows[i - 1]
        assert r[1] == r[2] == r[3] == r[4] == prev[4]
        assert r[5] == r[7] == r[9] == r[10] == "0.00000000"


@pytest.mark.parametrize("interval", [i.value for i in Interval])
async def test_every_interval_is_served_aligned(client: httpx.AsyncClient, interval: str) -> None:
    """Every Binance interval answers; rows are ascending and aligned to the interval."""
    rows = await klines(client, symbol="BTCUSDT", interval=interval, limit=20)
    iv = Interval(interval)
    assert len(rows) == 20
    assert all(iv.floor(r[0]) == r[0] and r[6] == iv.close_time(r[0]) for r in rows)
    assert [r[0] for r in rows] == sorted({r[0] for r in rows})
