"""Bad input is never misread: every one is a DataError naming the value, before any request.

The table of faults-e847b87 section 6, at the API level. The checks are pure functions
(``to_ms``, ``Symbol.parse``, ``Interval.parse``, ``check_limit``, ``check_depth``,
``candle_window``) that run before any request; the last tests pass the same values through
MarketData on a real sandbox and count the klines requests that reached it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mystic_trading.errors import (
    DataError,
    InvalidInterval,
    InvalidRange,
    InvalidSymbol,
)
from mystic_trading.marketdata.facade import MarketData
from mystic_trading.marketdata.window import (
    MAX_DEPTH,
    MAX_LIMIT,
    candle_window,
    check_depth,
    check_limit,
    check_range,
)
from mystic_trading.models import (
    MAX_TIMESTAMP_MS,
    SECONDS_BELOW_MS,
    Interval,
    Symbol,
    symbol_text,
    to_ms,
)
from mystic_trading.sandbox import SandboxServer

BTC = Symbol("BTC", "USDT")
NOW = 1_750_478_331_191  # 2025-06-21, mid-minute
JAN_2024 = 1_704_067_200_000


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    """SQLite only: these tests are about arguments, not about the store."""
    return f"sqlite+aiosqlite:///{tmp_path / 'mystic.db'}"


# -- timestamps --------------------------------------------------------------------------------

BAD_MOMENTS: list[tuple[object, str]] = [
    (True, "is not a timestamp"),
    (None, "is not a timestamp"),
    (-1, "is negative"),
    (-(10**12), "is negative"),
    ("-1", "is negative"),
    (1, "looks like epoch seconds"),
    (1_704_067_200, "give 1704067200000"),
    ("1704067200", "give 1704067200000"),
    (SECONDS_BELOW_MS - 1, "looks like epoch seconds"),
    ("20240131", "if it is the date 2024-01-31, write 2024-01-31"),
    (MAX_TIMESTAMP_MS + 1, "after 2100-01-01"),
    (10**20, "microseconds or nanoseconds"),
    (1_704_067_200_000_000, "microseconds or nanoseconds"),
    ("1" * 5000, "after 2100-01-01"),
    (1.5, "is a float"),
    (1_704_067_200_000.0, "is a float"),
    (float("nan"), "is a float"),
    (np.float64(1_704_067_200_000), "is a float"),
    ("yesterday", "is not a timestamp"),
    ("", "is not a timestamp"),
    ("１７０４０６７２０００００", "is not a timestamp"),  # fullwidth digits
    ("2204-01-01", "after 2100-01-01"),
    ("1969-12-31", "before 1970-01-01"),
    (datetime(1969, 12, 31, tzinfo=UTC), "before 1970-01-01"),
    (date(2100, 1, 2), "after 2100-01-01"),
    (Decimal(JAN_2024), "a Decimal"),
    ([JAN_2024], "a list"),
]


@pytest.mark.parametrize(("value", "needle"), BAD_MOMENTS)
def test_bad_timestamps_are_invalid_range_naming_the_value(value: object, needle: str) -> None:
    """Every bad timestamp raises InvalidRange naming the argument, the value and the fault."""
    with pytest.raises(InvalidRange, match="start") as info:
        to_ms(value, "start")
    assert needle in str(info.value)
    assert len(str(info.value)) < 600  # a 5,000-digit value is cut short, not echoed whole


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, 0),
        (SECONDS_BELOW_MS, SECONDS_BELOW_MS),
        (JAN_2024, JAN_2024),
        (np.int64(JAN_2024), JAN_2024),
        ("1704067200000", JAN_2024),
        (" 1704067200000\n", JAN_2024),
        ("2024-01-01", JAN_2024),
        ("2024-01-01T05:30:00+05:30", JAN_2024),
        ("2024-01-01T00:00:00Z", JAN_2024),
        (datetime(2024, 1, 1), JAN_2024),
        (date(2024, 1, 1), JAN_2024),
        (datetime(2024, 1, 1, 0, 0, 0, 999, tzinfo=UTC), JAN_2024),  # sub-ms is dropped
        (MAX_TIMESTAMP_MS, MAX_TIMESTAMP_MS),
        ("2100-01-01", MAX_TIMESTAMP_MS),
    ],
)
def test_good_timestamps_are_epoch_ms(value: object, expected: int) -> None:
    """Ints and digit strings are ms; datetimes, dates and ISO strings are UTC unless offset."""
    assert to_ms(value) == expected


def test_epoch_seconds_are_refused_not_converted() -> None:
    """An int below 100,000,000,000 is refused, and the message gives the ms to use instead."""
    with pytest.raises(InvalidRange) as info:
        to_ms(1_704_067_200)
    message = str(info.value)
    assert "looks like epoch seconds" in message
    assert "for 2024-01-01T00:00:00Z give 1704067200000" in message
    assert to_ms(1_704_067_200_000) == JAN_2024


# -- limit and depth ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "limit", [0, -1, True, False, 2.5, 5.0, "5", 10**9, MAX_LIMIT + 1, np.float64(5), [5]]
)
def test_bad_limit_is_invalid_range_naming_the_value(limit: object) -> None:
    """limit must be a whole number from 1 to 1,000,000: not a bool, a float or a string."""
    with pytest.raises(InvalidRange, match="limit") as info:
        check_limit(limit)
    assert "1,000,000" in str(info.value)


@pytest.mark.parametrize(("limit", "expected"), [(None, None), (1, 1), (np.int64(5), 5)])
def test_good_limit_passes(limit: object, expected: int | None) -> None:
    """None means no limit; whole numbers from 1 to MAX_LIMIT come back as ints."""
    assert check_limit(limit) == expected
    assert check_limit(MAX_LIMIT) == MAX_LIMIT


@pytest.mark.parametrize("depth", [0, -1, MAX_DEPTH + 1, True, 2.5, 20.0, "20", None, b"20"])
def test_bad_depth_is_a_data_error_naming_value_and_range(depth: object) -> None:
    """depth must be a whole number from 1 to 5000; the message names the value and the range."""
    with pytest.raises(DataError, match="from 1 to 5000") as info:
        check_depth(depth)
    assert repr(depth) in str(info.value)


@pytest.mark.parametrize("depth", [1, 20, MAX_DEPTH, np.int64(100)])
def test_good_depth_passes(depth: object) -> None:
    """Whole numbers from 1 to 5000 come back as ints."""
    assert check_depth(depth) == int(depth)  # type: ignore[call-overload]


# -- symbols and intervals ---------------------------------------------------------------------

BAD_SYMBOLS: list[tuple[object, str]] = [
    (None, "not NoneType"),
    (123, "not int"),
    (b"BTCUSDT", "not bytes"),
    (Decimal(1), "not Decimal"),
    ("", "empty"),
    ("   ", "empty"),
    ("BTC\n/USDT", "'\\n' (U+000A)"),
    ("BTC/USDT\x00", "'\\x00' (U+0000)"),
    ("ß/USDT", "'ß' (U+00DF)"),  # upper() would make it SS/USDT
    ("ﬀ/USDT", "U+FB00"),  # upper() would make it FF/USDT
    ("BTС/USDT", "U+0421"),  # Cyrillic Es
    ("ＢＴＣ/ＵＳＤＴ", "U+FF22"),  # fullwidth
    ("比特币/USDT", "U+6BD4"),
    ("🚀/USDT", "U+1F680"),
    ("BTC USDT", "' ' (U+0020)"),
    ("BTC/USDT/X", "more than one separator"),
    ("BTC//USDT", "more than one separator"),
    ("BTC/", "empty or longer than 12"),
    ("x" * 10_000, "10,000 characters"),
    ("'; DROP TABLE candles;--", "not an ASCII letter"),
    ("BTC", "does not split"),
]


@pytest.mark.parametrize(("text", "needle"), BAD_SYMBOLS)
def test_bad_symbols_are_invalid_symbol_naming_the_fault(text: object, needle: str) -> None:
    """Other types, control and non-ASCII characters and bad shapes raise InvalidSymbol."""
    with pytest.raises(InvalidSymbol) as info:
        Symbol.parse(text)
    assert needle in str(info.value)
    assert "expected BASE/QUOTE" in str(info.value)
    assert len(str(info.value)) < 600


@pytest.mark.parametrize("text", [" btc/usdt ", "  BTCUSDT", "Btc_Usdt"])
def test_case_and_surrounding_whitespace_are_still_accepted(text: str) -> None:
    """Lower case and leading or trailing whitespace still read as BTC/USDT."""
    assert Symbol.parse(text) == BTC


def test_symbol_text_leaves_the_split_to_the_listing() -> None:
    """symbol_text checks characters and shape only: a glued name with any quote passes."""
    assert symbol_text(" btcpln ") == "BTCPLN"
    with pytest.raises(InvalidSymbol):
        symbol_text("BTC\nPLN")


@pytest.mark.parametrize("value", [None, 60, 1.0, b"1h", ["1h"], "1h ", " 1h", "1H", "60m", ""])
def test_bad_intervals_are_invalid_interval(value: object) -> None:
    """Only an Interval or its exact name is accepted: no other type, case or whitespace."""
    with pytest.raises(InvalidInterval, match="accepted") as info:
        Interval.parse(value)
    assert info.value.interval == str(value)


# -- windows -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        ({"start": 1_704_067_200}, "start 1704067200 looks like epoch seconds"),
        ({"end": -1}, "end -1 is negative"),
        ({"start": -(10**12), "end": -1}, "start -1000000000000 is negative"),
        ({"start": 10**20}, "start 100000000000000000000 is after 2100"),
        ({"start": 1.5}, "start 1.5 is a float"),
        ({"start": "2024-02-01", "end": "2024-01-01"}, "end 2024-01-01 (1704067200000 ms)"),
        ({"limit": 2.5}, "limit must be a whole number"),
        ({"limit": "5"}, "got '5'"),
        ({"limit": 10**9}, "more than 1,000,000"),
    ],
)
@pytest.mark.parametrize("interval", [Interval.D1, Interval.MO1])
def test_candle_window_refuses_bad_arguments(
    interval: Interval, args: dict[str, Any], needle: str
) -> None:
    """candle_window raises InvalidRange for every bad start, end or limit, for 1d and 1M."""
    with pytest.raises(InvalidRange) as info:
        candle_window(BTC, interval, NOW, **args)
    assert needle in str(info.value)


@pytest.mark.parametrize("interval", list(Interval))
def test_a_window_in_the_future_is_empty(interval: Interval) -> None:
    """A start after the candle open now gives [start, start): no candles, and no error."""
    for start in ("2030-01-01", MAX_TIMESTAMP_MS):
        w = candle_window(BTC, interval, NOW, start=start, end=MAX_TIMESTAMP_MS)
        assert w.start == w.end == interval.ceil(to_ms(start))
        assert w.count == 0
        w = candle_window(BTC, interval, NOW, start=start, limit=5)
        assert (w.start, w.count) == (w.end, 0)


def test_end_before_start_shows_the_values_as_given() -> None:
    """The message shows ISO input as ISO and ms input as ms, each with its other form."""
    with pytest.raises(InvalidRange) as info:
        check_range("2024-03-05", 1_709_251_200_000)
    assert str(info.value) == (
        "end 1709251200000 (2024-03-01T00:00:00Z) is before start 2024-03-05 (1709596800000 ms)"
    )
    assert (info.value.start, info.value.end) == (1_709_596_800_000, 1_709_251_200_000)


# -- through MarketData, on a real sandbox -----------------------------------------------------

BAD_CANDLE_CALLS: list[dict[str, Any]] = [
    {"interval": "1h", "start": 1_704_067_200},
    {"interval": "1d", "start": -1},
    {"interval": "1d", "start": -(10**12), "end": -1},
    {"interval": "1d", "start": 10**20},
    {"interval": "1M", "start": 10**20},
    {"interval": "1d", "start": 1.5},
    {"interval": "1d", "limit": 2.5},
    {"interval": "1d", "limit": "5"},
    {"interval": "1d", "limit": 0},
    {"interval": "1m", "limit": 10**9, "allow_large": True},
    {"interval": None},
    {"interval": "1H"},
]


@pytest.mark.parametrize("call", BAD_CANDLE_CALLS)
async def test_bad_candle_arguments_send_no_klines_request(
    md: MarketData, exchange: SandboxServer, call: dict[str, Any]
) -> None:
    """md.candles raises a DataError for each bad argument, and no klines request is sent."""
    with pytest.raises(DataError):
        await md.candles("BTCUSDT", **call)
    assert exchange.stats.endpoint("klines").requests == 0


@pytest.mark.parametrize("since", [1_704_067_200, -1, 10**20, 1.5, "yesterday"])
async def test_bad_backfill_start_sends_no_klines_request(
    md: MarketData, exchange: SandboxServer, since: object
) -> None:
    """md.backfill raises InvalidRange for a bad start, and no klines request is sent."""
    with pytest.raises(InvalidRange):
        await md.backfill("BTCUSDT", "1d", since)  # type: ignore[arg-type]
    assert exchange.stats.endpoint("klines").requests == 0


def requests_total(exchange: SandboxServer) -> int:
    return int(exchange.stats.snapshot()["total"]["requests"])


@pytest.mark.parametrize("call", BAD_CANDLE_CALLS[:10])
async def test_bad_candle_arguments_send_nothing_at_all(
    md: MarketData, exchange: SandboxServer, call: dict[str, Any]
) -> None:
    """Bad times and limits are refused before exchangeInfo or the clock is fetched."""
    sent = requests_total(exchange)  # the venue probe when MarketData opened
    with pytest.raises(DataError):
        await md.candles("BTCUSDT", **call)
    assert requests_total(exchange) == sent


@pytest.mark.parametrize("depth", [0, 5001, -1, True, 2.5, "20", None])
async def test_bad_depth_sends_no_request_and_serves_no_other_snapshot(
    md: MarketData, exchange: SandboxServer, depth: object
) -> None:
    """depth 2.5 was sent upstream and answered with a stored 5,000-level book (faults 6);
    now every bad depth is a DataError before any request."""
    await md.order_book("BTCUSDT", 5000)
    sent = requests_total(exchange)
    with pytest.raises(DataError, match="depth"):
        await md.order_book("BTCUSDT", depth)  # type: ignore[arg-type]
    assert requests_total(exchange) == sent


@pytest.mark.parametrize(
    "name",
    [None, 123, ["BTCUSDT"], "BTC\n/USDT", "BTCUSDT\n", "\tBTCUSDT", "ß/USDT", "ＢＴＣ/USDT"],
)
async def test_bad_symbols_never_raise_a_foreign_exception(
    md: MarketData, exchange: SandboxServer, name: object
) -> None:
    """None, 123, a list, control and non-ASCII characters are InvalidSymbol from ticker,
    candles and order_book (AttributeError and TypeError escaped before), with no request."""
    sent = requests_total(exchange)
    for call in (
        md.ticker(name),  # type: ignore[arg-type]
        md.candles(name, "1m", limit=5),  # type: ignore[arg-type]
        md.order_book(name, 20),  # type: ignore[arg-type]
    ):
        with pytest.raises(InvalidSymbol):
            await call
    assert requests_total(exchange) == sent


async def test_a_window_in_the_future_answers_no_candle(md: MarketData) -> None:
    """A window wholly in the future is empty, never today's open candle (new-user D2)."""
    for interval in ("1h", "1d", "1M"):
        answer = await md.candles("BTCUSDT", interval, start="2030-01-01", end="2030-01-02")
        assert answer.value == []


async def test_a_backfill_from_the_future_is_refused(md: MarketData) -> None:
    """A backfill whose start is in the future says so instead of "already complete"."""
    with pytest.raises(InvalidRange, match="future"):
        await md.backfill("BTCUSDT", "1h", "2099-01-01")


@pytest.mark.parametrize("chunk_pages", [0, -1, 1.5, "2", True, 10**6])
async def test_bad_backfill_chunk_pages_is_refused(
    md: MarketData, exchange: SandboxServer, chunk_pages: object
) -> None:
    """chunk_pages 0 or negative looped forever, '2' raised MemoryError: now a DataError."""
    with pytest.raises(DataError, match="chunk_pages"):
        await md.backfill("BTCUSDT", "1d", "2024-01-01", chunk_pages=chunk_pages)  # type: ignore[arg-type]
    assert exchange.stats.endpoint("klines").requests == 0


@pytest.mark.parametrize("symbols", [None, 7, "BTCUSDT"])
async def test_tickers_wants_a_list(md: MarketData, symbols: object) -> None:
    """tickers(None) raised TypeError; anything but a list of symbols is InvalidSymbol."""
    with pytest.raises(InvalidSymbol, match="list of symbols"):
        await md.tickers(symbols)  # type: ignore[arg-type]
