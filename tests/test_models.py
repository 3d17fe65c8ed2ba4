"""Domain values: intervals and their alignment, symbols, exact decimals."""

from __future__ import annotations

import calendar
import random
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from mystic_trading.errors import InvalidInterval, InvalidRange, InvalidSymbol, MalformedPayload
from mystic_trading.models import Interval, Symbol, parse_decimal, to_ms


def ms(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp() * 1000)  # type: ignore[misc]


def test_interval_set_is_binances() -> None:
    """The interval set is exactly Binance's sixteen, case-sensitive."""
    assert [i.value for i in Interval] == [
        "1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h",
        "1d", "3d", "1w", "1M",
    ]  # fmt: skip
    assert Interval.parse("1M") is Interval.MO1
    assert Interval.parse("1m") is Interval.M1


@pytest.mark.parametrize("bad", ["1H", "2m", "", "1y", "60"])
def test_unknown_interval_is_rejected_with_its_name(bad: str) -> None:
    """An unknown interval raises InvalidInterval naming it and listing the accepted ones."""
    with pytest.raises(InvalidInterval, match="accepted") as info:
        Interval.parse(bad)
    assert info.value.interval == bad
    assert isinstance(info.value, ValueError)


def test_binance_kline_close_time_is_next_open_minus_one() -> None:
    """Close time follows Binance: 1634943780000 -> 1634943839999 for 1m (real capture)."""
    assert Interval.M1.close_time(1634943780000) == 1634943839999
    assert Interval.M1.floor(1634943780000 + 59_999) == 1634943780000


@pytest.mark.parametrize(
    ("ts", "expected"),
    [
        (ms(2024, 2, 29, 13, 5), ms(2024, 2, 1)),  # leap day
        (ms(2023, 12, 31, 23, 59, 59), ms(2023, 12, 1)),
        (ms(2024, 1, 1), ms(2024, 1, 1)),
        (ms(2100, 3, 1), ms(2100, 3, 1)),
    ],
)
def test_month_floor_is_the_first_of_the_calendar_month(ts: int, expected: int) -> None:
    """1M candles open on the 1st at 00:00 UTC, whatever the month's length."""
    assert Interval.MO1.floor(ts) == expected


@pytest.mark.parametrize(
    ("open_time", "next_open"),
    [
        (ms(2024, 1, 1), ms(2024, 2, 1)),  # 31 days
        (ms(2024, 2, 1), ms(2024, 3, 1)),  # 29 days, leap year
        (ms(2023, 2, 1), ms(2023, 3, 1)),  # 28 days
        (ms(2100, 2, 1), ms(2100, 3, 1)),  # 28 days: 2100 is not a leap year
        (ms(2000, 2, 1), ms(2000, 3, 1)),  # 29 days: 2000 is
        (ms(2024, 4, 1), ms(2024, 5, 1)),  # 30 days
        (ms(2024, 12, 1), ms(2025, 1, 1)),  # year rollover
    ],
)
def test_month_lengths_and_leap_years(open_time: int, next_open: int) -> None:
    """The next monthly open is the next calendar 1st, so month lengths vary 28 to 31 days."""
    assert Interval.MO1.next_open(open_time) == next_open
    assert Interval.MO1.close_time(open_time) == next_open - 1
    assert Interval.MO1.shift(next_open, -1) == open_time


def test_month_has_no_fixed_length() -> None:
    """Only 1M has no fixed length; every other interval has one."""
    assert Interval.MO1.ms is None
    assert all(i.ms for i in Interval if i is not Interval.MO1)


@pytest.mark.parametrize(
    "ts",
    [ms(2024, 1, 1), ms(2024, 1, 7, 23, 59), ms(2024, 3, 3, 12), ms(1970, 1, 8), ms(2020, 1, 1)],
)
def test_weeks_open_on_monday(ts: int) -> None:
    """1w candles open on Monday 00:00 UTC and contain the timestamp."""
    start = Interval.W1.floor(ts)
    opened = datetime.fromtimestamp(start / 1000, tz=UTC)
    assert opened.weekday() == 0
    assert (opened.hour, opened.minute, opened.second) == (0, 0, 0)
    assert start <= ts < Interval.W1.next_open(start)


def test_week_floor_on_a_known_date() -> None:
    """Wednesday 2024-01-03 belongs to the week that opened Monday 2024-01-01."""
    assert Interval.W1.floor(ms(2024, 1, 3, 8)) == ms(2024, 1, 1)
    assert Interval.W1.floor(ms(2023, 12, 31, 23, 59)) == ms(2023, 12, 25)


@pytest.mark.parametrize("interval", [i for i in Interval if i.ms is not None])
def test_fixed_intervals_floor_contains_and_aligns(interval: Interval) -> None:
    """For random times, floor <= t < next open, and floor is idempotent."""
    rng = random.Random(interval.value)
    for _ in range(200):
        t = rng.randrange(ms(2017, 1, 1), ms(2030, 1, 1))
        start = interval.floor(t)
        assert start <= t < interval.next_open(start)
        assert interval.floor(start) == start
        assert interval.ceil(start) == start
        assert interval.ceil(start + 1) == interval.next_open(start)


def test_count_and_open_times_agree() -> None:
    """count_between and open_times describe the same half-open window."""
    for interval in (Interval.M1, Interval.H4, Interval.W1, Interval.MO1):
        start, end = ms(2023, 11, 15, 7, 3), ms(2024, 3, 2)
        times = interval.open_times(start, end)
        assert len(times) == interval.count_between(start, end)
        assert all(start <= t < end for t in times)
        assert interval.open_times(end, start) == []
    assert Interval.M1.count_between(ms(2024, 1, 1), ms(2024, 1, 1, 1)) == 60
    assert Interval.MO1.count_between(ms(2024, 1, 1), ms(2025, 1, 1)) == 12


@pytest.mark.parametrize("text", ["BTC/USDT", "btc/usdt", "BTCUSDT", "btc-usdt", " BTC_USDT "])
def test_symbol_forms_map_to_one_canonical_symbol(text: str) -> None:
    """Every accepted spelling gives BTC/USDT, whose exchange form is BTCUSDT."""
    symbol = Symbol.parse(text)
    assert symbol == Symbol("BTC", "USDT")
    assert str(symbol) == "BTC/USDT"
    assert symbol.exchange == "BTCUSDT"


def test_glued_symbol_takes_the_longest_known_quote() -> None:
    """ETHBTC splits on BTC, and FDUSD is preferred to USD."""
    assert Symbol.parse("ETHBTC") == Symbol("ETH", "BTC")
    assert Symbol.parse("BTCFDUSD") == Symbol("BTC", "FDUSD")


@pytest.mark.parametrize("bad", ["", "BTC//USDT", "BTC/", "/USDT", "USDT", "NOQUOTEHERE", "BT C"])
def test_invalid_symbol_is_rejected_with_its_text(bad: str) -> None:
    """Text that is not a symbol raises InvalidSymbol carrying the text."""
    with pytest.raises(InvalidSymbol) as info:
        Symbol.parse(bad)
    assert info.value.symbol == bad


def test_decimal_keeps_the_exchanges_exact_value() -> None:
    """A price string survives exactly; a float would not."""
    value = parse_decimal("12345678.12345678", "price")
    assert str(value) == "12345678.12345678"
    assert Decimal(float("12345678.12345678")) != value


@pytest.mark.parametrize("bad", [1.5, None, "abc", "NaN", "Infinity", True, [], ""])
def test_decimal_refuses_what_is_not_an_exact_decimal(bad: object) -> None:
    """Floats, NaN, infinities and non-numbers are a MalformedPayload naming the field."""
    with pytest.raises(MalformedPayload, match="price"):
        parse_decimal(bad, "price")


def test_to_ms_reads_ints_datetimes_and_iso_strings() -> None:
    """Timestamps are UTC milliseconds; naive values are read as UTC."""
    assert to_ms(ms(2024, 1, 1)) == ms(2024, 1, 1)
    assert to_ms(str(ms(2024, 1, 1))) == ms(2024, 1, 1)
    assert to_ms(0) == 0
    assert to_ms("2024-01-01") == ms(2024, 1, 1)
    assert to_ms("2024-01-01T01:00:00+01:00") == ms(2024, 1, 1)
    assert to_ms(datetime(2024, 1, 1)) == ms(2024, 1, 1)
    with pytest.raises(InvalidRange, match="not a timestamp"):
        to_ms("yesterday")


def test_to_ms_refuses_epoch_seconds_with_the_ms_to_use() -> None:
    """An int from 1 to 99,999,999,999 looks like epoch seconds and is refused, never converted."""
    with pytest.raises(InvalidRange, match="looks like epoch seconds") as info:
        to_ms(1_704_067_200, "start")
    assert "give 1704067200000" in str(info.value)
    assert str(info.value).startswith("start 1704067200 ")


def test_to_ms_is_exact_to_the_millisecond() -> None:
    """A datetime's milliseconds are kept exactly (no float rounding), sub-ms dropped."""
    moment = datetime(2024, 1, 1, 0, 0, 0, 1_999, tzinfo=UTC)
    assert to_ms(moment) == ms(2024, 1, 1) + 1


@pytest.mark.parametrize("ts", [-(10**20), -1, 0, 10**17, 10**20, 2**63, 4_102_444_800_000 * 10**6])
@pytest.mark.parametrize("interval", list(Interval))
def test_interval_arithmetic_holds_for_any_int(interval: Interval, ts: int) -> None:
    """floor, shift and ceil raise nothing for any int: no datetime, so no OSError or ValueError."""
    start = interval.floor(ts)
    assert start <= ts < interval.next_open(start)
    assert interval.shift(start, -1_000_000) < start < interval.shift(start, 1_000_000)


def test_month_arithmetic_matches_the_calendar() -> None:
    """1M opens agree with calendar.timegm for every month of years 1 to 9999."""
    for year in range(1, 10_000, 7):
        for month in range(1, 13):
            first = calendar.timegm((year, month, 1, 0, 0, 0)) * 1000
            assert Interval.MO1.floor(first) == first
            assert Interval.MO1.floor(first + 86_399_999) == first
            assert Interval.MO1.floor(first - 1) == Interval.MO1.shift(first, -1)
    far = Interval.MO1.shift(ms(2024, 1, 1), 1_000_000)  # year 85357, past datetime's range
    assert Interval.MO1.shift(far, -1_000_000) == ms(2024, 1, 1)
    assert Interval.MO1.shift(ms(2024, 3, 1), -12 * 2000) == ms(24, 3, 1)


@pytest.mark.parametrize("bad", [None, 60, ["1h"], b"1h"])
def test_interval_of_another_type_is_invalid_interval(bad: object) -> None:
    """None, numbers and bytes raise InvalidInterval saying a str is needed, not TypeError."""
    with pytest.raises(InvalidInterval, match="not str"):
        Interval.parse(bad)


@pytest.mark.parametrize("bad", [None, 123, "BTC\n/USDT", "ß/USDT", "ＢＴＣ/USDT", "BTC/USDT\n/X"])
def test_symbol_refuses_other_types_and_non_ascii(bad: object) -> None:
    """Not a str, a control character or a non-ASCII letter: InvalidSymbol, never SS/USDT."""
    with pytest.raises(InvalidSymbol, match="invalid symbol"):
        Symbol.parse(bad)
