"""Answers to bytes and back, for the shared Redis layer, exactly (decimals as strings).

JSON rather than pickle: a Redis shared by several hosts must not be able to run code in the
reader, and JSON stays readable with redis-cli. Candles are packed as rows, not objects,
which halves their size.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from mystic_trading.errors import MalformedPayload
from mystic_trading.marketdata.answer import Answer, Layer
from mystic_trading.models import Candle, Interval, OrderBook, Symbol, Ticker

__all__ = ["decode", "encode", "estimate_size"]

_TICKER_FIELDS = (
    "bid", "bid_qty", "ask", "ask_qty", "open", "high", "low", "volume", "quote_volume",
    "change_pct",
)  # fmt: skip


def _d(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _encode_value(value: Any) -> dict[str, Any]:
    if isinstance(value, Ticker):
        return {
            "k": "ticker",
            "s": str(value.symbol),
            "p": str(value.price),
            "t": value.time,
            "x": [_d(getattr(value, f)) for f in _TICKER_FIELDS],
        }
    if isinstance(value, OrderBook):
        return {
            "k": "book",
            "s": str(value.symbol),
            "u": value.last_update_id,
            "t": value.time,
            "b": [[str(p), str(q)] for p, q in value.bids],
            "a": [[str(p), str(q)] for p, q in value.asks],
        }
    if isinstance(value, list) and all(isinstance(c, Candle) for c in value):
        first = value[0] if value else None
        return {
            "k": "candles",
            "s": str(first.symbol) if first else "",
            "i": first.interval.value if first else "",
            "r": [
                [
                    c.open_time, str(c.open), str(c.high), str(c.low), str(c.close),
                    str(c.volume), c.close_time, str(c.quote_volume), c.trades,
                    str(c.taker_buy_volume), str(c.taker_buy_quote_volume), c.closed,
                ]
                for c in value
            ],
        }  # fmt: skip
    raise TypeError(f"cannot encode {type(value).__name__}")


def encode(answer: Answer[Any]) -> bytes:
    """Serialize an answer's value and fetch time (the layer is the reader's to set)."""
    body = _encode_value(answer.value)
    body["f"] = answer.fetched_at
    return json.dumps(body, separators=(",", ":")).encode()


def decode(raw: bytes | str, layer: Layer = Layer.REDIS) -> Answer[Any]:
    """The answer encoded in ``raw``, served from ``layer``; MalformedPayload if it is not one."""
    try:
        body = json.loads(raw)
        kind = body["k"]
        fetched_at = int(body["f"])
        value: Any
        if kind == "ticker":
            extra = [None if v is None else Decimal(v) for v in body["x"]]
            value = Ticker(
                Symbol.parse(body["s"]),
                Decimal(body["p"]),
                int(body["t"]),
                *extra,
            )
        elif kind == "book":
            value = OrderBook(
                Symbol.parse(body["s"]),
                int(body["u"]),
                tuple((Decimal(p), Decimal(q)) for p, q in body["b"]),
                tuple((Decimal(p), Decimal(q)) for p, q in body["a"]),
                int(body["t"]),
            )
        elif kind == "candles":
            symbol = Symbol.parse(body["s"]) if body["s"] else None
            interval = Interval.parse(body["i"]) if body["i"] else None
            value = [
                Candle(
                    symbol, interval, r[0], Decimal(r[1]), Decimal(r[2]), Decimal(r[3]),  # type: ignore[arg-type]
                    Decimal(r[4]), Decimal(r[5]), r[6], Decimal(r[7]), r[8], Decimal(r[9]),
                    Decimal(r[10]), bool(r[11]),
                )
                for r in body["r"]
            ]  # fmt: skip
        else:
            raise ValueError(f"unknown kind {kind!r}")
    except (ValueError, KeyError, TypeError, IndexError, ArithmeticError) as exc:
        raise MalformedPayload(f"cached entry cannot be decoded: {exc}", provider="redis") from exc
    return Answer(value, layer, fetched_at)


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
