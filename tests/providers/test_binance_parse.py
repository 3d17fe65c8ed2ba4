"""Binance payloads parse exactly; anything malformed is refused, naming the endpoint."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from mystic_trading.errors import (
    Banned,
    InvalidInterval,
    MalformedPayload,
    RateLimited,
    UnknownSymbol,
    UpstreamRejected,
    UpstreamUnavailable,
)
from mystic_trading.models import Interval, Symbol
from mystic_trading.providers.binance_parse import (
    error_from_response,
    parse_book_ticker,
    parse_depth,
    parse_exchange_info,
    parse_klines,
    parse_ticker_24hr,
    parse_ticker_price,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "binance"
BTC = Symbol("BTC", "USDT")


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def test_exchange_info_2025_capture() -> None:
    """The 2025 capture gives 6000 weight per minute, its header name and ETHBTC's filters."""
    info = parse_exchange_info(load("exchangeInfo_2025-06_ETHBTC.json"))
    rule = info.request_weight
    assert rule is not None
    assert (rule.limit, rule.window_s, rule.header) == (6000, 60, "X-MBX-USED-WEIGHT-1M")
    eth = info.symbols["ETHBTC"]
    assert eth.symbol == Symbol("ETH", "BTC")
    assert eth.tick_size == Decimal("0.00001000")
    assert eth.status == "TRADING"


def test_exchange_info_2021_capture_has_the_old_limit() -> None:
    """The 2021 capture's REQUEST_WEIGHT was 1200 per minute; both symbols are read."""
    info = parse_exchange_info(load("exchangeInfo_2021_BTCUSDT_ETHUSDT.json"))
    assert info.request_weight is not None and info.request_weight.limit == 1200
    assert set(info.symbols) == {"BTCUSDT", "ETHUSDT"}


def test_klines_12_field_rows_are_exact() -> None:
    """Every decimal string of a real kline row survives exactly."""
    rows = load("klines_BTCUSDT_1m_2021.json")
    candles = parse_klines(rows, BTC, Interval.M1, now_ms=rows[-1][6] + 1)
    assert len(candles) == len(rows)
    for candle, row in zip(candles, rows, strict=True):
        assert candle.open_time == row[0] and candle.close_time == row[6]
        assert [str(v) for v in (candle.open, candle.high, candle.low, candle.close)] == row[1:5]
        assert str(candle.volume) == row[5] and str(candle.quote_volume) == row[7]
        assert candle.trades == row[8]
        assert str(candle.taker_buy_volume) == row[9]
        assert str(candle.taker_buy_quote_volume) == row[10]
        assert candle.closed


def test_last_row_reaching_now_is_the_open_candle() -> None:
    """In the 2025 capture, the row whose close time is after serverTime is not closed."""
    rows = load("klines_ETHBTC_1m_2025-06-21_last_candle_open.json")
    now = load("time_2025-06-21.json")["serverTime"]
    candles = parse_klines(rows, Symbol("ETH", "BTC"), Interval.M1, now_ms=now)
    assert [c.closed for c in candles] == [True] * (len(rows) - 1) + [False]
    assert candles[0].volume == 0 and candles[0].trades == 0  # a quiet minute, still a row


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda r: r[0].__setitem__(1, 0.0163), "decimal strings"),
        (lambda r: r[0].__setitem__(0, "1499040000000"), "open time"),
        (lambda r: r[0].pop(), "12-field"),
        (lambda r: r[0].__setitem__(8, "308"), "trade count"),
        (lambda r: r.append(list(r[0])), "increasing open-time"),
        (lambda r: r[0].__setitem__(0, 1499040000001), "aligned"),
        (lambda r: r.__setitem__(0, {"open": 1}), "12-field"),
    ],
)
def test_malformed_kline_rows_are_refused(mutate: Any, needle: str) -> None:
    """A wrong type, a short row, disorder or misalignment raises MalformedPayload."""
    rows = load("klines_docs_example.json")
    mutate(rows)
    with pytest.raises(MalformedPayload, match=needle) as info:
        parse_klines(rows, BTC, Interval.D1 if needle != "aligned" else Interval.M1, now_ms=0)
    assert info.value.endpoint == "klines"


def test_klines_not_a_list_is_refused() -> None:
    """An object where rows were expected is malformed."""
    with pytest.raises(MalformedPayload, match="array"):
        parse_klines({"code": 0}, BTC, Interval.M1, now_ms=0)


def test_ticker_24hr_real_capture() -> None:
    """The real 24hr capture maps to a ticker with exact stats."""
    (ticker,) = parse_ticker_24hr(load("ticker_24hr_single.json"))
    assert ticker.symbol == BTC
    assert ticker.price == Decimal("60755.18000000")
    assert ticker.bid == Decimal("60755.18000000") and ticker.ask == Decimal("60755.19000000")
    assert ticker.change_pct == Decimal("-3.003")
    assert ticker.quote_volume == Decimal("3289695271.67717710")
    assert ticker.time == 1634944401452


def test_ticker_lists_parse_every_entry() -> None:
    """List forms of the price, 24hr and book tickers give one ticker per entry."""
    assert len(parse_ticker_price(load("ticker_price_list_docs.json"), now_ms=1)) == 2
    assert len(parse_ticker_24hr(load("ticker_24hr_list_docs.json"))) >= 1
    books = parse_book_ticker(load("bookTicker_list_docs.json"), now_ms=1)
    assert all(t.bid is not None and t.ask is not None for t in books)


def test_price_and_book_ticker_single() -> None:
    """Single price and book tickers keep exact values; a book's price is the midpoint."""
    (price,) = parse_ticker_price(load("ticker_price_single.json"), now_ms=7)
    assert (price.price, price.time) == (Decimal("60740.00000000"), 7)
    (book,) = parse_book_ticker(load("bookTicker_single.json"), now_ms=7)
    assert book.price == (Decimal("60741.67") + Decimal("60741.68")) / 2


def test_depth_real_capture() -> None:
    """The depth capture keeps order: bids descending, asks ascending, exact levels."""
    book = parse_depth(load("depth_limit10.json"), BTC, now_ms=5)
    assert book.last_update_id == 14527958487
    assert len(book.bids) == len(book.asks) == 10
    assert book.best_bid == (Decimal("60650.00000000"), Decimal("0.00213000"))
    assert [p for p, _ in book.bids] == sorted((p for p, _ in book.bids), reverse=True)
    assert [p for p, _ in book.asks] == sorted(p for p, _ in book.asks)


@pytest.mark.parametrize(
    ("payload", "needle"),
    [
        ({"lastUpdateId": "1", "bids": [], "asks": []}, "lastUpdateId"),
        ({"lastUpdateId": 1, "bids": [["1.0"]], "asks": []}, "pairs"),
        ({"lastUpdateId": 1, "bids": [[1.0, "2"]], "asks": []}, "decimal"),
        ({"lastUpdateId": 1, "bids": [], "asks": None}, "asks"),
        ([], "object"),
    ],
)
def test_malformed_depth_is_refused(payload: object, needle: str) -> None:
    """Wrong types in a depth answer raise MalformedPayload naming the field."""
    with pytest.raises(MalformedPayload, match=needle):
        parse_depth(payload, BTC, now_ms=0)


@pytest.mark.parametrize(
    ("payload", "needle"),
    [
        ({"symbol": "BTCUSDT"}, "'price' is missing"),
        ({"symbol": "BTCUSDT", "price": 60740.0}, "decimal string"),
        ({"symbol": "", "price": "1"}, "'symbol'"),
        ("<html>502 Bad Gateway</html>", "object"),
    ],
)
def test_malformed_ticker_is_refused(payload: object, needle: str) -> None:
    """A missing or float price, an empty symbol or a non-object is malformed."""
    with pytest.raises(MalformedPayload, match=needle) as info:
        parse_ticker_price(payload, now_ms=0)
    assert info.value.endpoint == "ticker/price"


def test_exchange_info_missing_rate_limits_is_refused() -> None:
    """exchangeInfo without rateLimits is malformed."""
    data = load("exchangeInfo_2025-06_ETHBTC.json")
    del data["rateLimits"]
    with pytest.raises(MalformedPayload, match="rateLimits"):
        parse_exchange_info(data)


def body(name: str) -> bytes:
    return (FIXTURES / "errors" / name).read_bytes()


def test_invalid_symbol_maps_to_unknown_symbol() -> None:
    """-1121 is UnknownSymbol carrying the symbol asked for."""
    err = error_from_response(
        400, body("400_-1121_invalid_symbol.json"), {}, "klines", symbol="FOO/BAR", now_ms=0
    )
    assert isinstance(err, UnknownSymbol) and err.symbol == "FOO/BAR"


def test_invalid_interval_maps_to_invalid_interval() -> None:
    """-1120 is InvalidInterval."""
    err = error_from_response(
        400, body("400_-1120_invalid_interval.json"), {}, "klines", interval="7m", now_ms=0
    )
    assert isinstance(err, InvalidInterval) and err.interval == "7m"


def test_429_carries_retry_after() -> None:
    """A 429 is RateLimited with the Retry-After seconds."""
    err = error_from_response(
        429,
        body("429_-1003_too_much_weight_current.json"),
        {"retry-after": "17"},
        "depth",
        now_ms=0,
    )
    assert isinstance(err, RateLimited) and err.retry_after == 17


def test_418_ban_end_is_read_from_the_message() -> None:
    """A 418 is Banned until the epoch-ms time in Binance's message."""
    err = error_from_response(
        418, body("418_-1003_ip_banned_current.json"), {"retry-after": "60"}, "klines", now_ms=0
    )
    assert isinstance(err, Banned) and err.until == 1702275878212


def test_418_without_time_uses_retry_after() -> None:
    """A 418 whose message has no time is banned until now plus Retry-After."""
    err = error_from_response(418, b"<html>teapot</html>", {"Retry-After": "120"}, "x", now_ms=1000)
    assert isinstance(err, Banned) and err.until == 121_000


def test_5xx_and_other_4xx() -> None:
    """5xx is UpstreamUnavailable; another 4xx is UpstreamRejected with its code."""
    assert isinstance(error_from_response(503, b"", {}, "x", now_ms=0), UpstreamUnavailable)
    err = error_from_response(
        400, body("400_-1102_mandatory_param_symbol.json"), {}, "klines", now_ms=0
    )
    assert isinstance(err, UpstreamRejected) and err.code == -1102 and err.status == 400
