"""Mystic's values as Binance's exact JSON, and Binance's error envelope.

Shapes and field order follow the real captures in tests/fixtures/binance/ (rest-api.md at
binance-spot-api-docs a5e0bc3): prices and quantities are decimal strings, times and counts
integers. A Decimal is written with ``format(d, "f")``, never ``str(d)``: ``str`` turns the
exchange's "0.00000001" into "1E-8", which no Binance client parses as a price. A Decimal
built from the exchange's string keeps its trailing zeros, so "60755.18000000" goes out as
it came in.

``RawResponse`` sends bytes already made with headers already encoded, for the hot paths:
Starlette's ``Response`` lowercases and encodes a dict of header strings on every answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal

import msgspec
from starlette.responses import Response

from mystic_trading.models import Candle, OrderBook, Ticker

__all__ = [
    "JSON_HEADER",
    "RawResponse",
    "book_ticker",
    "depth",
    "dumps",
    "error_body",
    "klines",
    "ticker_price",
]

_encoder = msgspec.json.Encoder()
dumps = _encoder.encode


JSON_HEADER = (b"content-type", b"application/json")


class RawResponse(Response):
    """``body`` with ``raw_headers`` as sent: lower-case names and values as bytes, in order,
    ``content-length`` and ``content-type`` among them (nothing is added)."""

    def __init__(  # a Response of its own making: none of Response's arguments apply
        self, body: bytes, raw_headers: list[tuple[bytes, bytes]], status_code: int = 200
    ) -> None:
        self.status_code = status_code
        self.background = None
        self.body = body
        self.raw_headers = raw_headers


def _d(value: Decimal | None) -> str:
    return "0" if value is None else format(value, "f")


def error_body(code: int, msg: str) -> bytes:
    """Binance's ``{"code": -1121, "msg": "Invalid symbol."}``, compact as it sends it."""
    return dumps({"code": code, "msg": msg})


def ticker_price(ticker: Ticker) -> dict[str, str]:
    """One ``/ticker/price`` entry: ``{"symbol", "price"}``."""
    return {"symbol": ticker.symbol.exchange, "price": _d(ticker.price)}


def book_ticker(ticker: Ticker) -> dict[str, str]:
    """One ``/ticker/bookTicker`` entry (bookTicker_single.json's keys and order)."""
    return {
        "symbol": ticker.symbol.exchange,
        "bidPrice": _d(ticker.bid),
        "bidQty": _d(ticker.bid_qty),
        "askPrice": _d(ticker.ask),
        "askQty": _d(ticker.ask_qty),
    }


def klines(candles: Iterable[Candle]) -> bytes:
    """``/klines`` rows: 12 fields, the last ("unused field, ignore") always "0"."""
    return dumps(
        [
            [
                c.open_time,
                _d(c.open),
                _d(c.high),
                _d(c.low),
                _d(c.close),
                _d(c.volume),
                c.close_time,
                _d(c.quote_volume),
                c.trades,
                _d(c.taker_buy_volume),
                _d(c.taker_buy_quote_volume),
                "0",
            ]
            for c in candles
        ]
    )


def _levels(levels: Sequence[tuple[Decimal, Decimal]], limit: int) -> list[list[str]]:
    return [[_d(price), _d(qty)] for price, qty in levels[:limit]]


def depth(book: OrderBook, limit: int) -> bytes:
    """``/depth``: ``{"lastUpdateId", "bids", "asks"}``, ``limit`` levels a side at most."""
    return dumps(
        {
            "lastUpdateId": book.last_update_id,
            "bids": _levels(book.bids, limit),
            "asks": _levels(book.asks, limit),
        }
    )
