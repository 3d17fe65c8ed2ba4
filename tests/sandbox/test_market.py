"""The synthetic market as an oracle: determinism, exact aggregation across intervals, and
tickers that agree with the candles."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from decimal import ROUND_FLOOR, Decimal

import httpx

from mystic_trading.models import Interval
from mystic_trading.sandbox import SYMBOLS, Market, SandboxServer
from sandbox.support import NOW, aggregate, as_numbers

DAY = 86_400_000


def test_same_seed_same_candles_different_seed_different() -> None:
    """Two markets of one seed print identical candles; another seed prints others."""
    a, b, c = Market(7), Market(7), Market(8)
    for interval in ("1s", "1m", "1h", "1d", "1w"):
        rows = a.klines("BTCUSDT", interval, limit=200, now=NOW)
        assert len(rows) == 200
        assert rows == b.klines("BTCUSDT", interval, limit=200, now=NOW)
        assert rows != c.klines("BTCUSDT", interval, limit=200, now=NOW)
    assert a.gaps == b.gaps != c.gaps


def test_same_seed_same_candles_in_another_process() -> None:
    """A fresh interpreter computes the very same rows from the same seed."""
    code = (
        "import json,sys; from mystic_trading.sandbox import Market; "
        f"print(json.dumps(Market(3).klines('ETHBTC', '1h', limit=300, now={NOW})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(out.stdout) == Market(3).klines("ETHBTC", "1h", limit=300, now=NOW)


def _check(market: Market, symbol: str, big: str, small: str, open_time: int) -> None:
    iv = Interval(big)
    rows = market.klines(symbol, big, start=open_time, limit=1, now=NOW)
    assert rows and rows[0][0] == open_time, (symbol, big, open_time)
    parts = market.klines(
        symbol, small, start=open_time, end=iv.close_time(open_time), limit=1000, now=NOW
    )
    assert parts and parts[-1][0] < iv.next_open(open_time)
    assert as_numbers(rows[0]) == aggregate(parts), (symbol, big, small, open_time)


def test_intervals_are_exact_aggregates_at_random_times() -> None:
    """1m of its 1s, 3m..1h of 1m, 1d of 1h, 3d/1w/1M of 1d: exact, at random closed times."""
    market = Market(0)
    rng = random.Random(20250621)
    pairs = [
        ("1m", "1s"), ("5m", "1m"), ("1h", "1m"), ("4h", "1h"), ("12h", "1h"), ("1d", "1h"),
        ("3d", "1d"), ("1w", "1d"), ("1M", "1d"),
    ]  # fmt: skip
    checked = 0
    for _ in range(6):
        spec = rng.choice([s for s in SYMBOLS if s.listed_ms < NOW - 400 * DAY])
        t = rng.randrange(spec.listed_ms + 40 * DAY, NOW - 40 * DAY)
        for big, small in pairs:
            iv = Interval(big)
            open_time = iv.floor(t)
            if market.in_gap(open_time) or any(
                g.start < iv.next_open(open_time) and g.end > open_time for g in market.gaps
            ):
                continue
            _check(market, spec.symbol, big, small, open_time)
            checked += 1
    assert checked >= 40


def test_higher_interval_over_a_gap_aggregates_existing_minutes() -> None:
    """A day and a month that contain downtime aggregate only the minutes that exist."""
    market = Market(0)
    gap = next(g for g in market.gaps if 1.6e12 < g.start < NOW)
    day = gap.start - gap.start % DAY
    _check(market, "BTCUSDT", "1d", "1h", day)
    _check(market, "BTCUSDT", "1M", "1d", Interval.MO1.floor(gap.start))
    minutes = market.klines("BTCUSDT", "1m", start=day, end=day + DAY - 1, limit=1000, now=NOW)
    minutes += market.klines(
        "BTCUSDT", "1m", start=day + 1000 * 60_000, end=day + DAY - 1, limit=1000, now=NOW
    )
    assert len(minutes) == 1440 - (gap.end - gap.start) // 60_000
    assert as_numbers(market.klines("BTCUSDT", "1d", start=day, limit=1, now=NOW)[0]) == aggregate(
        minutes
    )


def test_prices_are_exact_ticks_and_positive() -> None:
    """Prices are positive multiples of the tick with 8 decimals; low <= open, close <= high."""
    market = Market(0)
    for spec in SYMBOLS:
        if spec.listed_ms > NOW:
            continue
        for row in market.klines(spec.symbol, "1h", limit=200, now=NOW):
            o, h, lo, c = (int(x.replace(".", "")) for x in row[1:5])
            assert all(len(x.split(".")[1]) == 8 for x in row[1:6])
            assert 0 < lo <= min(o, c) <= max(o, c) <= h
            assert all(p % spec.tick == 0 for p in (o, h, lo, c))
            assert int(row[9].replace(".", "")) <= int(row[5].replace(".", ""))


async def test_24h_ticker_agrees_with_minute_candles(sandbox: SandboxServer) -> None:
    """ticker/24hr = the last 1440 minutes (the open one included); lastPrice = ticker price."""
    async with httpx.AsyncClient(base_url=sandbox.url) as c:
        stats = (await c.get("/api/v3/ticker/24hr", params={"symbol": "XRPUSDT"})).json()
        price = (await c.get("/api/v3/ticker/price", params={"symbol": "XRPUSDT"})).json()
        book = (await c.get("/api/v3/ticker/bookTicker", params={"symbol": "XRPUSDT"})).json()
        avg = (await c.get("/api/v3/avgPrice", params={"symbol": "XRPUSDT"})).json()
    minute = NOW - NOW % 60_000
    start = minute - 1439 * 60_000
    m = sandbox.market
    rows = m.klines("XRPUSDT", "1m", start=start, limit=1000, now=NOW)
    rows += m.klines("XRPUSDT", "1m", start=start + 1000 * 60_000, limit=1000, now=NOW)
    assert len(rows) == 1440 and rows[-1][0] == minute
    o, h, lo, _, vol, quote, *_, trades = aggregate(rows)
    assert stats["lastPrice"] == price["price"] == rows[-1][4] == book["bidPrice"]
    assert (stats["openPrice"], stats["highPrice"], stats["lowPrice"]) == tuple(
        f"{x:.8f}" for x in (o, h, lo)
    )
    assert (stats["volume"], stats["quoteVolume"], stats["count"]) == (
        f"{vol:.8f}",
        f"{quote:.8f}",
        trades,
    )
    assert (stats["openTime"], stats["closeTime"]) == (NOW - 86_400_000, NOW)
    assert stats["lastId"] - stats["firstId"] + 1 == trades
    assert avg["mins"] == 5 and avg["closeTime"] <= NOW
    five = aggregate(rows[-5:])
    assert Decimal(avg["price"]) == (five[5] / five[4]).quantize(Decimal("1e-8"), ROUND_FLOOR)
