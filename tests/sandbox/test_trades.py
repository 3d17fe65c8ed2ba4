"""Trades at millisecond resolution: partial views of open candles, and the final-candle oracle."""

from __future__ import annotations

import itertools
import json
import os
import random
import subprocess
import sys
from decimal import Decimal

import httpx
import pytest

from mystic_trading.models import Interval
from mystic_trading.sandbox import SYMBOLS, ManualClock, Market
from sandbox.conftest import StartSandbox
from sandbox.support import NOW, aggregate, as_numbers

MIN = 60_000


def _active_seconds(market: Market, count: int, seed: int) -> list[tuple[str, int]]:
    """``count`` random (symbol, second) pairs before NOW whose 1s candle has trades."""
    rng = random.Random(seed)
    found: list[tuple[str, int]] = []
    while len(found) < count:
        spec = rng.choice([s for s in SYMBOLS if s.listed_ms < NOW])
        second = rng.randrange(spec.listed_ms, NOW) // 1000 * 1000
        final = market.candle(spec.symbol, "1s", second, second + 1000)
        if final is not None and final[6] > 1:
            found.append((spec.symbol, second))
    return found


def test_partial_second_views_are_valid_monotone_and_end_final() -> None:
    """Seen at every millisecond of its second, a 1s candle is a valid candle with a fixed open,
    volumes, quote volumes and trade count that only grow, and equals its final once over."""
    market = Market(0)
    for symbol, second in _active_seconds(market, 150, 1):
        final = market.candle(symbol, "1s", second, second + 1000)
        assert final is not None
        before = market.candle(symbol, "1s", second, second)
        assert before is not None
        for ms in range(1000):
            view = market.candle(symbol, "1s", second, second + ms)
            assert view is not None
            o, h, lo, c, vol, quote, count, taker, taker_quote = view
            assert 0 < lo <= min(o, c) <= max(o, c) <= h, (symbol, second, ms)
            assert 0 <= taker <= vol and taker_quote >= 0
            assert o == before[0] == final[0]
            assert vol >= before[4] and quote >= before[5] and count >= before[6]
            assert taker >= before[7] and taker_quote >= before[8]
            assert h <= final[1] and lo >= final[2]
            before = view
        assert before == final


def test_view_holds_exactly_the_trades_up_to_now() -> None:
    """A print (the trades of one millisecond) shows from its own timestamp on, never before;
    trade counts add up print by print to the 1s candle's."""
    market = Market(0)
    for symbol, second in _active_seconds(market, 60, 2):
        prints = market.prints(symbol, second)
        final = market.candle(symbol, "1s", second, second + 1000)
        assert final is not None and prints and prints[-1][1] == final
        times = [t for t, _ in prints]
        assert times == sorted(set(times)) and second <= times[0] and times[-1] < second + 1000
        counts = [view[6] for _, view in prints]
        assert all(a < b for a, b in itertools.pairwise(counts))
        for t, view in prints:
            assert market.candle(symbol, "1s", second, t) == view
            assert market.candle(symbol, "1s", second, t - 1) != view
            assert market.last_trade(symbol, t) == (view[3], t)


def test_ticker_and_open_candles_of_every_interval_move_with_each_print() -> None:
    """Between two prints nothing changes; at a print the price, the open 1m/1h/1d candles and
    the 24h ticker all take it in, and each open candle ends exactly as its final."""
    market = Market(0)
    symbol, second = next(
        (s, t) for s, t in _active_seconds(market, 40, 3) if len(market.prints(s, t)) >= 3
    )
    (t1, v1), (t2, v2) = market.prints(symbol, second)[1:3]
    for now in (t1, t2 - 1):
        assert market.price(symbol, now) == v1[3]
    assert market.price(symbol, t2) == v2[3]
    for interval in ("1m", "1h", "1d"):
        iv = Interval(interval)
        open_time = iv.floor(t2)
        at_1 = market.candle(symbol, iv, open_time, t2 - 1)
        at_2 = market.candle(symbol, iv, open_time, t2)
        assert at_1 is not None and at_2 is not None
        assert at_2[6] - at_1[6] == v2[6] - v1[6]  # exactly the print's trades were added
        assert at_2[4] - at_1[4] == v2[4] - v1[4]
        assert at_2[3] == v2[3]
        final = market.final_candle(symbol, iv, open_time)
        close = iv.close_time(open_time)
        assert final is not None
        assert market.klines(symbol, iv, start=open_time, limit=1, now=close)[0] == final
    stats_1, _ = market.rolling_24h(symbol, t2 - 1)
    stats_2, _ = market.rolling_24h(symbol, t2)
    assert stats_1 is not None and stats_2 is not None
    assert stats_2[6] - stats_1[6] == v2[6] - v1[6]


def test_price_holds_until_the_time_price_until_names() -> None:
    """price_until gives the price and a time before which it cannot change: the price is the
    same at every millisecond up to it, and that time is the next print or second."""
    market = Market(0)
    for symbol, second in _active_seconds(market, 30, 6):
        now = second
        while now < second + 2000:
            price, until = market.price_until(symbol, now)
            assert now < until <= now - now % 1000 + 1000
            assert {market.price(symbol, t) for t in range(now, until)} == {price}
            prints = {t for t, _ in market.prints(symbol, until - until % 1000)}
            assert until % 1000 == 0 or until in prints
            now = until


def test_open_minute_is_its_closed_seconds_and_the_open_second_so_far() -> None:
    """The open 1m candle at a millisecond is the aggregate of the 1s rows up to it, the last of
    them partial, for a spread of milliseconds across a minute."""
    market = Market(0)
    minute = NOW - NOW % MIN
    for now in range(minute, minute + MIN, 997):
        row = market.klines("BTCUSDT", "1m", limit=1, now=now)[0]
        seconds = market.klines("BTCUSDT", "1s", start=minute, end=now, limit=1000, now=now)
        assert len(seconds) == (now - minute) // 1000 + 1
        assert as_numbers(row) == aggregate(seconds)


def test_final_candle_is_what_klines_serve_once_closed() -> None:
    """final_candle equals the row served after the close, at every interval; None before the
    listing and inside downtime; a time that is not a candle open is refused."""
    market = Market(0)
    for interval in ("1s", "1m", "5m", "1h", "1d", "3d", "1w", "1M"):
        iv = Interval(interval)
        open_time = iv.shift(iv.floor(NOW), -3)
        served = market.klines("ETHUSDT", iv, start=open_time, limit=1, now=NOW)[0]
        assert market.final_candle("ETHUSDT", iv, open_time) == served, interval
    gap = next(g for g in market.gaps if g.start < NOW)
    assert market.final_candle("BTCUSDT", "1m", gap.start) is None
    listed = market.listing_ms("NEWUSDT")
    assert market.final_candle("NEWUSDT", "1h", listed - 3_600_000) is None
    with pytest.raises(ValueError, match="open time"):
        market.final_candle("BTCUSDT", "1m", NOW)


def test_final_candle_of_the_open_candle_is_its_future() -> None:
    """For the candle still open, final_candle is what it will be: more than what is seen now,
    and exactly what klines serve once the clock has passed its close."""
    market = Market(0)
    minute = NOW - NOW % MIN
    seen = market.klines("BTCUSDT", "1m", limit=1, now=NOW)[0]
    final = market.final_candle("BTCUSDT", "1m", minute)
    assert final is not None and final != seen
    assert market.klines("BTCUSDT", "1m", start=minute, limit=1, now=minute + MIN)[0] == final


def test_trades_are_the_same_in_another_process() -> None:
    """Prints come from the seed alone: a fresh interpreter with another hash seed prints the
    same; another market seed prints others."""
    market = Market(4)
    picks = _active_seconds(market, 5, 4)
    code = (
        "import json; from mystic_trading.sandbox import Market; m = Market(4); "
        f"print(json.dumps([m.prints(s, t) for s, t in {picks!r}]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env={**os.environ, "PYTHONHASHSEED": "12345"},
    )
    here = [[[t, list(v)] for t, v in market.prints(s, t)] for s, t in picks]
    assert json.loads(out.stdout) == here
    other = Market(5)
    assert [other.prints(s, t) for s, t in picks] != [market.prints(s, t) for s, t in picks]


async def test_http_open_candle_follows_the_clock_to_the_millisecond(
    start_sandbox: StartSandbox,
) -> None:
    """Over HTTP, one millisecond before a print the open 1s and 1m candles and the ticker do
    not show it; at the print they do; the final 1s row equals the oracle."""
    market = Market(0)
    symbol, second = next(
        (s, t) for s, t in _active_seconds(market, 40, 5) if len(market.prints(s, t)) >= 2
    )
    t, view = market.prints(symbol, second)[1]
    clock = ManualClock(t - 1)
    sb = await start_sandbox(clock=clock, weight_limit=10**9)
    params = {"symbol": symbol, "interval": "1s", "startTime": second, "limit": 1}
    async with httpx.AsyncClient(base_url=sb.url) as c:
        before = (await c.get("/api/v3/klines", params=params)).json()[0]
        minute_before = (
            await c.get("/api/v3/klines", params={"symbol": symbol, "interval": "1m", "limit": 1})
        ).json()[0]
        clock.advance(1)
        at = (await c.get("/api/v3/klines", params=params)).json()[0]
        price = (await c.get("/api/v3/ticker/price", params={"symbol": symbol})).json()
        minute_at = (
            await c.get("/api/v3/klines", params={"symbol": symbol, "interval": "1m", "limit": 1})
        ).json()[0]
        clock.advance(1000)
        final = (await c.get("/api/v3/klines", params=params)).json()[0]
    assert at == market.klines(symbol, "1s", start=second, limit=1, now=t)[0] != before
    assert (at[8], Decimal(at[4])) == (view[6], Decimal(view[3]).scaleb(-8))
    assert price["price"] == at[4]
    assert minute_at[8] - minute_before[8] == at[8] - before[8]
    assert final == sb.final_candle(symbol, "1s", second)
