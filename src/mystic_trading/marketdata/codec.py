"""Answers to bytes and back, for the shared Redis layer, exactly (decimals as strings).

JSON rather than pickle: a Redis shared by several hosts must not be able to run code in the
reader, and JSON stays readable with redis-cli. Encoded and decoded by msgspec (typed, in C;
review M3), candles packed as rows, not objects, which halves their size.

A large candle window is coded a slice of rows at a time (``encode_async``,
``decode_async``), handing the event loop back between slices: a window of thousands of
candles never holds up the other requests of the process for more than a few milliseconds
(the stdlib ``json.dumps`` of tens of MB ran on the loop in one go, review M3).

The format is versioned (``"v"``, :data:`WIRE_VERSION`): an entry of another version, an
older Mystic's included (stdlib JSON, no ``"v"``), fails to decode and is a miss, never a
misread value. Change ``WIRE_VERSION`` with any change of the wire structs below.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Literal

import msgspec

from mystic_trading.errors import MalformedPayload
from mystic_trading.marketdata.answer import Answer, Layer, Part
from mystic_trading.models import Candle, Interval, OrderBook, Symbol, Ticker

__all__ = [
    "ROWS_PER_SLICE",
    "WIRE_VERSION",
    "decode",
    "decode_async",
    "encode",
    "encode_async",
    "encoded_size_floor",
    "estimate_size",
]

# 1: stdlib json, no version field (before issue 11). 2: msgspec, "v": 2.
WIRE_VERSION: Literal[2] = 2
# Candle rows coded between two returns to the event loop: a few ms of decoding (Decimal
# parsing dominates) and under 1 ms of encoding on the 2-core VM.
ROWS_PER_SLICE = 500

_TICKER_FIELDS = (
    "bid", "bid_qty", "ask", "ask_qty", "open", "high", "low", "volume", "quote_volume",
    "change_pct",
)  # fmt: skip

# open_time, open, high, low, close, volume, close_time, quote_volume, trades,
# taker_buy_volume, taker_buy_quote_volume, closed: Candle's fields after symbol and interval.
_Row = tuple[
    int, Decimal, Decimal, Decimal, Decimal, Decimal, int, Decimal, int, Decimal, Decimal, bool
]


class _Ticker(msgspec.Struct, tag="ticker", tag_field="k", frozen=True):
    v: Literal[2]
    f: int  # fetched_at
    s: str
    p: Decimal
    t: int
    x: tuple[Decimal | None, ...]


class _Book(msgspec.Struct, tag="book", tag_field="k", frozen=True):
    v: Literal[2]
    f: int
    s: str
    u: int
    t: int
    b: list[tuple[Decimal, Decimal]]
    a: list[tuple[Decimal, Decimal]]


class _Candles(msgspec.Struct, tag="candles", tag_field="k", frozen=True):
    v: Literal[2]
    f: int
    s: str  # "" for no candles
    i: str
    # Answer.parts as [start, end, layer] (added within version 2: an entry without it reads
    # as having none, and an older reader ignores it).
    p: list[tuple[int, int, Layer]] = []
    r: list[msgspec.Raw] = []  # rows, each decoded later (by the slice: decode_async); last


_encoder = msgspec.json.Encoder()  # Decimal as a string, exactly (msgspec's default)
_decoder: msgspec.json.Decoder[_Ticker | _Book | _Candles] = msgspec.json.Decoder(
    _Ticker | _Book | _Candles
)
_rows_decoder = msgspec.json.Decoder(list[_Row])
_NO_ROWS = b'"r":[]}'


def _is_candles(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(c, Candle) for c in value)


def _rows(candles: Sequence[Candle]) -> bytes:
    """The rows of ``candles``, comma-separated, without the enclosing brackets."""
    rows = [
        (
            c.open_time, c.open, c.high, c.low, c.close, c.volume, c.close_time,
            c.quote_volume, c.trades, c.taker_buy_volume, c.taker_buy_quote_volume, c.closed,
        )
        for c in candles
    ]  # fmt: skip
    return _encoder.encode(rows)[1:-1]


def _head(answer: Answer[Any]) -> bytes:
    """The encoded answer, with the rows of a candle window left empty."""
    value, f = answer.value, answer.fetched_at
    wire: _Ticker | _Book | _Candles
    if isinstance(value, Ticker):
        extra = tuple(getattr(value, name) for name in _TICKER_FIELDS)
        wire = _Ticker(WIRE_VERSION, f, str(value.symbol), value.price, value.time, extra)
    elif isinstance(value, OrderBook):
        wire = _Book(
            WIRE_VERSION, f, str(value.symbol), value.last_update_id, value.time,
            list(value.bids), list(value.asks),
        )  # fmt: skip
    elif _is_candles(value):
        first = value[0] if value else None
        symbol = str(first.symbol) if first else ""
        interval = first.interval.value if first else ""
        wire = _Candles(
            WIRE_VERSION, f, symbol, interval, [(p.start, p.end, p.layer) for p in answer.parts], []
        )
    else:
        raise TypeError(f"cannot encode {type(value).__name__}")
    return _encoder.encode(wire)


def _with_rows(head: bytes, parts: list[bytes]) -> bytes:
    assert head.endswith(_NO_ROWS)  # "r" is the last field of _Candles
    return head[: -len(_NO_ROWS)] + b'"r":[' + b",".join(p for p in parts if p) + b"]}"


def encode(answer: Answer[Any]) -> bytes:
    """Serialize an answer's value and fetch time (the layer is the reader's to set)."""
    head = _head(answer)
    if not head.endswith(_NO_ROWS) or not answer.value:
        return head
    return _with_rows(head, [_rows(answer.value)])


async def encode_async(answer: Answer[Any]) -> bytes:
    """:func:`encode`, returning to the event loop after each ``ROWS_PER_SLICE`` candles."""
    value = answer.value
    if not isinstance(value, list) or len(value) <= ROWS_PER_SLICE:
        return encode(answer)
    head = _head(answer)
    parts = []
    for k in range(0, len(value), ROWS_PER_SLICE):
        await asyncio.sleep(0)
        parts.append(_rows(value[k : k + ROWS_PER_SLICE]))
    return _with_rows(head, parts)


def _malformed(exc: Exception) -> MalformedPayload:
    return MalformedPayload(f"cached entry cannot be decoded: {exc}", provider="redis")


# msgspec.ValidationError is a DecodeError; a bad symbol or interval a DataError (a ValueError).
_DECODE_ERRORS = (msgspec.DecodeError, ValueError, TypeError, ArithmeticError)


def _envelope(raw: bytes | str) -> _Ticker | _Book | _Candles:
    try:
        return _decoder.decode(raw)
    except _DECODE_ERRORS as exc:
        raise _malformed(exc) from exc


def _candles(body: _Candles, rows: Sequence[msgspec.Raw]) -> list[Candle]:
    symbol = Symbol.parse(body.s) if body.s else None
    interval = Interval.parse(body.i) if body.i else None
    decoded = _rows_decoder.decode(b"[" + b",".join(rows) + b"]")
    return [Candle(symbol, interval, *r) for r in decoded]  # type: ignore[arg-type]


def _answer(body: _Ticker | _Book | _Candles, candles: list[Candle], layer: Layer) -> Answer[Any]:
    value: Any
    if isinstance(body, _Ticker):
        value = Ticker(Symbol.parse(body.s), body.p, body.t, *body.x)
    elif isinstance(body, _Book):
        value = OrderBook(Symbol.parse(body.s), body.u, tuple(body.b), tuple(body.a), body.t)
    else:
        return Answer(candles, layer, body.f, parts=tuple(Part(*p) for p in body.p))
    return Answer(value, layer, body.f)


def decode(raw: bytes | str, layer: Layer = Layer.REDIS) -> Answer[Any]:
    """The answer encoded in ``raw``, served from ``layer``; MalformedPayload if it is not one
    (garbage, or an entry of another wire version)."""
    body = _envelope(raw)
    try:
        candles = _candles(body, body.r) if isinstance(body, _Candles) else []
        return _answer(body, candles, layer)
    except _DECODE_ERRORS as exc:
        raise _malformed(exc) from exc


async def decode_async(raw: bytes | str, layer: Layer = Layer.REDIS) -> Answer[Any]:
    """:func:`decode`, returning to the event loop after each ``ROWS_PER_SLICE`` candles."""
    body = _envelope(raw)
    if not isinstance(body, _Candles) or len(body.r) <= ROWS_PER_SLICE:
        return decode(raw, layer)
    candles: list[Candle] = []
    try:
        for k in range(0, len(body.r), ROWS_PER_SLICE):
            await asyncio.sleep(0)
            candles.extend(_candles(body, body.r[k : k + ROWS_PER_SLICE]))
        return _answer(body, candles, layer)
    except _DECODE_ERRORS as exc:
        raise _malformed(exc) from exc


# The fewest bytes one candle row takes encoded: twelve fields, nine of them quoted decimals
# of at least one digit, two 13-digit times, brackets and commas (a real row is ~170 bytes).
_ROW_MIN_BYTES = 70


def encoded_size_floor(value: Any) -> int:
    """A lower bound of ``encode``'s size for ``value``, known without encoding it: a value
    whose floor is over a size cap is refused before any work (``RedisLayer.set``)."""
    if isinstance(value, list):
        return _ROW_MIN_BYTES * len(value)
    if isinstance(value, OrderBook):
        return 10 * (len(value.bids) + len(value.asks))
    return 0


# Rough per-object sizes in bytes (sys.getsizeof of the slotted object plus its Decimals):
# what the memory bound counts. Measured on CPython 3.11; proportional is what matters.
_TICKER_BYTES = 600
_CANDLE_BYTES = 1_150
_LEVEL_BYTES = 280
_BASE_BYTES = 200


def estimate_size(value: Any) -> int:
    """Approximate bytes held by a cached value, for the memory cache's byte bound."""
    if isinstance(value, Ticker):
        return _TICKER_BYTES
    if isinstance(value, OrderBook):
        return _BASE_BYTES + _LEVEL_BYTES * (len(value.bids) + len(value.asks))
    if isinstance(value, list):
        return _BASE_BYTES + _CANDLE_BYTES * len(value)
    return _BASE_BYTES
