"""Candle requests become absolute, aligned windows."""

from __future__ import annotations

import pytest

from mystic_trading.errors import InvalidRange
from mystic_trading.marketdata.window import DEFAULT_LIMIT, MAX_LIMIT, candle_window
from mystic_trading.models import MAX_TIMESTAMP_MS, Interval, Symbol

BTC = Symbol("BTC", "USDT")
M = 60_000
NOW = 1_700_000_010_000  # 30 s into a minute


def test_last_n_includes_the_open_candle_and_is_stable_within_the_minute() -> None:
    """'Last 100 1m' is the same window at :30 and :50 of a minute, and moves at the next."""
    a = candle_window(BTC, Interval.M1, NOW, limit=100)
    b = candle_window(BTC, Interval.M1, NOW + 20_000, limit=100)
    c = candle_window(BTC, Interval.M1, NOW + 40_000, limit=100)
    assert a == b
    assert a.count == 100
    assert a.start <= NOW < a.end  # the open candle is inside
    assert (c.start, c.end) == (a.start + M, a.end + M)


def test_default_limit_is_binances() -> None:
    """Nothing given: the last 500 candles."""
    assert candle_window(BTC, Interval.H1, NOW).count == DEFAULT_LIMIT


def test_start_only_runs_to_now_and_aligns_up() -> None:
    """A start inside a candle begins at the next open; the window ends with the open candle."""
    w = candle_window(BTC, Interval.M1, NOW, start=NOW - 10 * M - 1)
    assert w.start == Interval.M1.floor(NOW) - 9 * M
    assert w.end == Interval.M1.floor(NOW) + M


def test_start_and_limit_takes_the_first_candles() -> None:
    """start with limit gives the first `limit` candles from start."""
    w = candle_window(BTC, Interval.M1, NOW, start=NOW - 100 * M, limit=5)
    assert w.count == 5


def test_end_only_gives_the_last_candles_before_end() -> None:
    """end with limit gives the `limit` candles opening before end."""
    end = Interval.M1.floor(NOW) - 50 * M
    w = candle_window(BTC, Interval.M1, NOW, end=end, limit=10)
    assert (w.start, w.end) == (end - 10 * M, end)


def test_future_end_is_clipped_to_now() -> None:
    """No window reaches past the candle open now."""
    w = candle_window(BTC, Interval.H1, NOW, start=NOW - 3_600_000 * 5, end=NOW + 10**9)
    assert w.end == Interval.H1.floor(NOW) + 3_600_000


def test_end_before_start_is_rejected() -> None:
    """end before start raises InvalidRange with both values."""
    with pytest.raises(InvalidRange, match="before start") as info:
        candle_window(BTC, Interval.M1, NOW, start=NOW, end=NOW - M)
    assert (info.value.start, info.value.end) == (NOW, NOW - M)


@pytest.mark.parametrize("limit", [0, -5, True])
def test_bad_limit_is_rejected(limit: int) -> None:
    """A limit that is not a positive count raises InvalidRange."""
    with pytest.raises(InvalidRange, match="limit"):
        candle_window(BTC, Interval.M1, NOW, limit=limit)


def test_ten_years_of_seconds_needs_confirmation() -> None:
    """A huge range is refused unless allow_large=True, and the message says how."""
    ten_years = 10 * 365 * 86_400_000
    with pytest.raises(InvalidRange, match="allow_large=True"):
        candle_window(BTC, Interval.S1, NOW, start=NOW - ten_years)
    w = candle_window(BTC, Interval.S1, NOW, start=NOW - ten_years, allow_large=True)
    assert w.count > 300_000_000


def test_iso_strings_are_accepted() -> None:
    """Dates as ISO strings are read as UTC."""
    w = candle_window(BTC, Interval.D1, NOW, start="2023-11-01", end="2023-11-08")
    assert w.count == 7


def test_a_window_in_the_future_is_empty_at_its_start() -> None:
    """start 2030-01-01 (past the candle open now) gives [start, start): no candle, no error."""
    w = candle_window(BTC, Interval.H1, NOW, start="2030-01-01", end="2030-01-02")
    assert w.start == w.end == 1_893_456_000_000
    assert w.count == 0


def test_a_start_inside_the_open_candle_is_empty_too() -> None:
    """A start after the open candle's open time aligns up to the next open: nothing yet."""
    w = candle_window(BTC, Interval.M1, NOW, start=NOW)
    assert w.start == w.end == Interval.M1.floor(NOW) + M


@pytest.mark.parametrize("interval", [Interval.D1, Interval.W1, Interval.MO1])
def test_last_n_never_reaches_before_1970(interval: Interval) -> None:
    """'The last 1,000,000 1d candles' starts at the first open at or after 1970-01-01."""
    w = candle_window(BTC, interval, NOW, limit=MAX_LIMIT)
    assert w.start == interval.ceil(0) >= 0
    assert w.end == interval.next_open(interval.floor(NOW))


def test_far_future_month_window_raises_nothing() -> None:
    """A 1M window at 2100 or of a million months is plain arithmetic (once an OSError)."""
    w = candle_window(BTC, Interval.MO1, NOW, start=MAX_TIMESTAMP_MS)
    assert w.count == 0
    w = candle_window(BTC, Interval.MO1, NOW, start=0, limit=MAX_LIMIT)
    assert w.start == 0
    assert w.end == Interval.MO1.next_open(Interval.MO1.floor(NOW))


def test_limit_is_bounded_and_whole() -> None:
    """limit MAX_LIMIT is accepted; one more, a float or a string raises InvalidRange."""
    assert candle_window(BTC, Interval.M1, NOW, limit=MAX_LIMIT).count == MAX_LIMIT
    for bad in (MAX_LIMIT + 1, 2.5, "5"):
        with pytest.raises(InvalidRange, match="limit"):
            candle_window(BTC, Interval.M1, NOW, limit=bad)  # type: ignore[arg-type]


def test_end_before_start_message_shows_iso_as_given() -> None:
    """ISO input appears as typed, with its ms, in the end-before-start message."""
    with pytest.raises(InvalidRange) as info:
        candle_window(BTC, Interval.D1, NOW, start="2024-03-05", end="2024-03-01")
    assert str(info.value) == (
        "end 2024-03-01 (1709251200000 ms) is before start 2024-03-05 (1709596800000 ms)"
    )
