"""Binance spot REST payloads to Mystic's values, exactly, or a MalformedPayload.

Every function takes the decoded JSON and the endpoint it came from, checks each field's type
(prices and quantities are decimal strings, times and counts are integers), and raises
:class:`MalformedPayload` naming the endpoint and the field at the first thing that is off, so
nothing of a bad answer is used or stored. Formats: rest-api.md at binance-spot-api-docs
a5e0bc3 (see ../shared/exchange-payloads/binance/RATE_LIMITS.md), checked against the real
captures in tests/fixtures/binance/.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from mystic_trading.errors import (
    Banned,
    InvalidInterval,
    MalformedPayload,
    RateLimited,
    UnknownSymbol,
    UpstreamError,
    UpstreamRejected,
    UpstreamUnavailable,
)
from mystic_trading.models import (
    Candle,
    Interval,
    OrderBook,
    PriceLevel,
    Symbol,
    Ticker,
    iso_from_ms,
    parse_decimal,
)

__all__ = [
    "PROVIDER",
    "ExchangeInfo",
    "RateLimitRule",
    "SymbolInfo",
    "error_from_response",
    "parse_book_ticker",
    "parse_depth",
    "parse_exchange_info",
    "parse_klines",
    "parse_ticker_24hr",
    "parse_ticker_price",
]

PROVIDER = "binance"
_KLINE_FIELDS = 12
_INTERVAL_SECONDS = {"SECOND": 1, "MINUTE": 60, "HOUR": 3600, "DAY": 86400}


@dataclass(frozen=True, slots=True)
class RateLimitRule:
    """One entry of exchangeInfo ``rateLimits``: ``limit`` per ``window_s`` seconds."""

    kind: str
    window_s: int
    limit: int
    header: str  # the usage header Binance sends for it, e.g. X-MBX-USED-WEIGHT-1M


@dataclass(frozen=True, slots=True)
class SymbolInfo:
    """A listed symbol with the filters a client needs to read its prices."""

    symbol: Symbol
    status: str
    tick_size: Decimal | None
    step_size: Decimal | None


@dataclass(frozen=True, slots=True)
class ExchangeInfo:
    server_time: int
    rate_limits: tuple[RateLimitRule, ...]
    symbols: Mapping[str, SymbolInfo]  # by exchange form, "BTCUSDT"

    @property
    def request_weight(self) -> RateLimitRule | None:
        """The shortest REQUEST_WEIGHT rule (Binance has one: 6000 per minute)."""
        rules = [r for r in self.rate_limits if r.kind == "REQUEST_WEIGHT"]
        return min(rules, key=lambda r: r.window_s) if rules else None


def _bad(endpoint: str, what: str, value: object) -> MalformedPayload:
    shown = repr(value)
    if len(shown) > 120:
        shown = shown[:117] + "..."
    return MalformedPayload(
        f"malformed {endpoint} payload from {PROVIDER}: {what}, got {shown}",
        provider=PROVIDER,
        endpoint=endpoint,
    )


def _obj(data: object, endpoint: str, what: str = "expected a JSON object") -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise _bad(endpoint, what, data)
    return data


def _int(obj: Mapping[str, Any], key: str, endpoint: str) -> int:
    value = obj.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise _bad(endpoint, f"field {key!r} must be an integer", value)
    return value


def _str(obj: Mapping[str, Any], key: str, endpoint: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise _bad(endpoint, f"field {key!r} must be a non-empty string", value)
    return value


def _dec(obj: Mapping[str, Any], key: str, endpoint: str) -> Decimal:
    if key not in obj:
        raise _bad(endpoint, f"field {key!r} is missing", None)
    try:
        return parse_decimal(obj[key], key)
    except MalformedPayload:
        raise _bad(endpoint, f"field {key!r} must be a decimal string", obj[key]) from None


def _symbol(obj: Mapping[str, Any], endpoint: str, resolve: Mapping[str, Symbol]) -> Symbol:
    raw = _str(obj, "symbol", endpoint)
    found = resolve.get(raw)
    if found is not None:
        return found
    try:
        return Symbol.parse(raw)
    except ValueError:
        raise _bad(endpoint, "field 'symbol' is not a known symbol", raw) from None


def parse_exchange_info(data: object) -> ExchangeInfo:
    """``GET /api/v3/exchangeInfo``: server time, rate limits and symbols with filters."""
    endpoint = "exchangeInfo"
    obj = _obj(data, endpoint)
    rules = []
    raw_limits = obj.get("rateLimits")
    if not isinstance(raw_limits, list):
        raise _bad(endpoint, "field 'rateLimits' must be a list", raw_limits)
    for entry in raw_limits:
        item = _obj(entry, endpoint, "rateLimits entries must be objects")
        interval = _str(item, "interval", endpoint)
        if interval not in _INTERVAL_SECONDS:
            raise _bad(endpoint, "rateLimits interval must be SECOND/MINUTE/HOUR/DAY", interval)
        num = _int(item, "intervalNum", endpoint)
        kind = _str(item, "rateLimitType", endpoint)
        header = f"X-MBX-USED-WEIGHT-{num}{interval[0]}" if kind == "REQUEST_WEIGHT" else ""
        rules.append(
            RateLimitRule(
                kind=kind,
                window_s=num * _INTERVAL_SECONDS[interval],
                limit=_int(item, "limit", endpoint),
                header=header,
            )
        )
    raw_symbols = obj.get("symbols")
    if not isinstance(raw_symbols, list):
        raise _bad(endpoint, "field 'symbols' must be a list", raw_symbols)
    symbols: dict[str, SymbolInfo] = {}
    for entry in raw_symbols:
        item = _obj(entry, endpoint, "symbols entries must be objects")
        name = _str(item, "symbol", endpoint)
        base = _str(item, "baseAsset", endpoint)
        quote = _str(item, "quoteAsset", endpoint)
        filters = item.get("filters", [])
        if not isinstance(filters, list):
            raise _bad(endpoint, f"filters of {name} must be a list", filters)
        by_type = {f.get("filterType"): f for f in filters if isinstance(f, Mapping)}
        price_filter = by_type.get("PRICE_FILTER")
        lot_size = by_type.get("LOT_SIZE")
        symbols[name] = SymbolInfo(
            symbol=Symbol(base, quote),
            status=_str(item, "status", endpoint),
            tick_size=_dec(price_filter, "tickSize", endpoint) if price_filter else None,
            step_size=_dec(lot_size, "stepSize", endpoint) if lot_size else None,
        )
    return ExchangeInfo(
        server_time=_int(obj, "serverTime", endpoint),
        rate_limits=tuple(rules),
        symbols=symbols,
    )


def _objects(data: object, endpoint: str) -> list[Mapping[str, Any]]:
    """A ticker endpoint's answer as a list of objects: one symbol gives an object, several a
    list (rest-api.md, "Symbol price ticker")."""
    return [_obj(entry, endpoint) for entry in (data if isinstance(data, list) else [data])]


def parse_ticker_price(
    data: object, now_ms: int, resolve: Mapping[str, Symbol] | None = None
) -> list[Ticker]:
    """``GET /api/v3/ticker/price`` (one object or a list) to tickers stamped ``now_ms``."""
    endpoint = "ticker/price"
    return [
        Ticker(
            symbol=_symbol(obj, endpoint, resolve or {}),
            price=_dec(obj, "price", endpoint),
            time=now_ms,
        )
        for obj in _objects(data, endpoint)
    ]


def parse_ticker_24hr(data: object, resolve: Mapping[str, Symbol] | None = None) -> list[Ticker]:
    """``GET /api/v3/ticker/24hr`` (FULL form, one object or a list) to tickers with stats."""
    endpoint = "ticker/24hr"
    out = []
    for obj in _objects(data, endpoint):
        out.append(
            Ticker(
                symbol=_symbol(obj, endpoint, resolve or {}),
                price=_dec(obj, "lastPrice", endpoint),
                time=_int(obj, "closeTime", endpoint),
                bid=_dec(obj, "bidPrice", endpoint),
                bid_qty=_dec(obj, "bidQty", endpoint),
                ask=_dec(obj, "askPrice", endpoint),
                ask_qty=_dec(obj, "askQty", endpoint),
                open=_dec(obj, "openPrice", endpoint),
                high=_dec(obj, "highPrice", endpoint),
                low=_dec(obj, "lowPrice", endpoint),
                volume=_dec(obj, "volume", endpoint),
                quote_volume=_dec(obj, "quoteVolume", endpoint),
                change_pct=_dec(obj, "priceChangePercent", endpoint),
            )
        )
    return out


def parse_book_ticker(
    data: object, now_ms: int, resolve: Mapping[str, Symbol] | None = None
) -> list[Ticker]:
    """``GET /api/v3/ticker/bookTicker``: best bid and ask; price is their midpoint."""
    endpoint = "ticker/bookTicker"
    out = []
    for obj in _objects(data, endpoint):
        bid, ask = _dec(obj, "bidPrice", endpoint), _dec(obj, "askPrice", endpoint)
        out.append(
            Ticker(
                symbol=_symbol(obj, endpoint, resolve or {}),
                price=(bid + ask) / 2,
                time=now_ms,
                bid=bid,
                bid_qty=_dec(obj, "bidQty", endpoint),
                ask=ask,
                ask_qty=_dec(obj, "askQty", endpoint),
            )
        )
    return out


def _levels(raw: object, side: str, endpoint: str) -> tuple[PriceLevel, ...]:
    if not isinstance(raw, list):
        raise _bad(endpoint, f"field {side!r} must be a list", raw)
    out = []
    for level in raw:
        if not isinstance(level, list) or len(level) < 2:
            raise _bad(endpoint, f"{side} levels must be [price, qty] pairs", level)
        try:
            out.append((parse_decimal(level[0], side), parse_decimal(level[1], side)))
        except MalformedPayload:
            raise _bad(endpoint, f"{side} levels must hold decimal strings", level) from None
    return tuple(out)


def parse_depth(data: object, symbol: Symbol, now_ms: int) -> OrderBook:
    """``GET /api/v3/depth``: bids best first, asks best first."""
    endpoint = "depth"
    obj = _obj(data, endpoint)
    return OrderBook(
        symbol=symbol,
        last_update_id=_int(obj, "lastUpdateId", endpoint),
        bids=_levels(obj.get("bids"), "bids", endpoint),
        asks=_levels(obj.get("asks"), "asks", endpoint),
        time=now_ms,
    )


def parse_klines(data: object, symbol: Symbol, interval: Interval, now_ms: int) -> list[Candle]:
    """``GET /api/v3/klines``: 12-field rows to candles, in open-time order.

    A row whose close time has not passed at ``now_ms`` (the exchange's clock) is the open
    candle: its ``closed`` is False. REST rows carry no such flag (RATE_LIMITS.md, section 6).

    This is the hottest decoder (a backfill parses millions of rows), so the common row, eight
    decimal strings and three integers, takes one fast path: exact type checks, ``Decimal``
    called directly, ``Candle`` built positionally (3.4 us a row became 1.9 us on a 1,000-row
    page, when Candle was still a dataclass). Any other row takes the checked path, which
    accepts what ``parse_decimal`` accepts and names the fault.
    """
    endpoint = "klines"
    if not isinstance(data, list):
        raise _bad(endpoint, "expected a JSON array of rows", data)
    out: list[Candle] = []
    append = out.append
    make = Candle
    dec = Decimal
    # Epoch-aligned intervals check alignment by a modulo; weeks (Mondays) and months floor.
    fixed = None if interval in (Interval.W1, Interval.MO1) else interval.ms
    previous = -1
    for row in data:
        if type(row) is not list or len(row) < _KLINE_FIELDS:
            raise _bad(endpoint, f"each row must be a {_KLINE_FIELDS}-field array", row)
        open_time, o, h, lo, c, vol, close_time, qvol, trades, tb, tq = row[:11]
        if type(open_time) is not int or type(close_time) is not int or type(trades) is not int:
            _check_kline_ints(endpoint, row)
        if open_time <= previous:
            raise _bad(endpoint, "rows must be in increasing open-time order", row)
        if (open_time % fixed if fixed else interval.floor(open_time) - open_time) != 0:
            raise _bad(endpoint, f"row open time is not aligned to {interval.value}", row)
        previous = open_time
        values: tuple[Decimal, ...]
        try:
            if (
                type(o) is str
                and type(h) is str
                and type(lo) is str
                and type(c) is str
                and type(vol) is str
                and type(qvol) is str
                and type(tb) is str
                and type(tq) is str
            ):
                values = (dec(o), dec(h), dec(lo), dec(c), dec(vol), dec(qvol), dec(tb), dec(tq))
                for v in values:
                    if not v.is_finite():
                        raise MalformedPayload("not finite")
            else:
                values = tuple(parse_decimal(x, "kline") for x in (o, h, lo, c, vol, qvol, tb, tq))
        except (MalformedPayload, InvalidOperation):
            raise _bad(endpoint, "row prices and volumes must be decimal strings", row) from None
        d_o, d_h, d_lo, d_c, d_vol, d_qvol, d_tb, d_tq = values
        append(
            make(symbol, interval, open_time, d_o, d_h, d_lo, d_c, d_vol, close_time, d_qvol,
                 trades, d_tb, d_tq, close_time < now_ms)
        )  # fmt: skip
    return out


def _check_kline_ints(endpoint: str, row: list[Any]) -> None:
    for name, value in (("open time", row[0]), ("close time", row[6])):
        if not isinstance(value, int) or isinstance(value, bool):
            raise _bad(endpoint, f"row {name} must be an integer", row)
    if not isinstance(row[8], int) or isinstance(row[8], bool):
        raise _bad(endpoint, "row trade count must be an integer", row)


_BANNED_UNTIL = re.compile(r"banned until (\d{10,16})")


def error_from_response(
    status: int,
    body: bytes,
    headers: Mapping[str, str],
    endpoint: str,
    *,
    symbol: str = "",
    interval: str = "",
    now_ms: int,
) -> UpstreamError | UnknownSymbol | InvalidInterval:
    """The Mystic error for a non-2xx answer, from its status, ``{code, msg}`` body and headers.

    -1121 becomes UnknownSymbol and -1120 InvalidInterval (the caller's mistake); 429 is
    RateLimited with Retry-After; 418 is Banned until the time in the message, else now plus
    Retry-After; 5xx is UpstreamUnavailable; any other 4xx is UpstreamRejected.
    """
    code: int | None = None
    msg = body[:200].decode("utf-8", "replace").strip()
    try:
        decoded = json.loads(body)
        if isinstance(decoded, Mapping):
            raw_code = decoded.get("code")
            code = raw_code if isinstance(raw_code, int) else None
            msg = str(decoded.get("msg", msg))
    except ValueError:
        pass
    retry_after = _retry_after(headers)
    where = f"{PROVIDER} {endpoint}"
    if status == 418:
        match = _BANNED_UNTIL.search(msg)
        until = int(match.group(1)) if match else now_ms + int((retry_after or 120) * 1000)
        return Banned(
            f"{where}: IP banned until {iso_from_ms(until)} ({msg})",
            provider=PROVIDER,
            endpoint=endpoint,
            until=until,
        )
    if status == 429:
        return RateLimited(
            f"{where}: rate limited, retry after {retry_after or 1:g}s ({msg})",
            provider=PROVIDER,
            endpoint=endpoint,
            retry_after=retry_after if retry_after is not None else 1.0,
        )
    if status >= 500:
        return UpstreamUnavailable(
            f"{where}: HTTP {status} ({msg})", provider=PROVIDER, endpoint=endpoint, status=status
        )
    if code == -1121:
        return UnknownSymbol(f"unknown symbol {symbol!r} on {PROVIDER}", symbol=symbol)
    if code == -1120:
        return InvalidInterval(f"invalid interval {interval!r} on {PROVIDER}", interval=interval)
    return UpstreamRejected(
        f"{where}: HTTP {status} code {code} ({msg})",
        provider=PROVIDER,
        endpoint=endpoint,
        status=status,
        code=code,
    )


def _retry_after(headers: Mapping[str, str]) -> float | None:
    raw = headers.get("retry-after") or headers.get("Retry-After")
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if value >= 0 else None
