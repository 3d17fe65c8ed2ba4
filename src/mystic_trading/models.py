"""Frozen domain values: symbols, intervals, tickers, candles and order books.

Times are UTC epoch milliseconds, as Binance sends them. Prices and quantities are
``decimal.Decimal`` built from the exchange's decimal strings, so "12345678.12345678" stays
exactly that (a binary float would turn it into 12345678.123456780612...). ARCHITECTURE.md
("Exact decimals") gives the cost of that choice.
"""

from __future__ import annotations

import calendar
import enum
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

import msgspec

from mystic_trading.errors import InvalidInterval, InvalidRange, InvalidSymbol, MalformedPayload

__all__ = [
    "KNOWN_QUOTES",
    "Candle",
    "Interval",
    "OrderBook",
    "Symbol",
    "Ticker",
    "parse_decimal",
    "to_ms",
]

SECOND_MS = 1_000
MINUTE_MS = 60 * SECOND_MS
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
WEEK_MS = 7 * DAY_MS
# 1970-01-01 was a Thursday; Binance weeks open on Monday 00:00 UTC, so weeks are counted
# from Monday 1970-01-05.
_FIRST_MONDAY_MS = 4 * DAY_MS


class Interval(enum.StrEnum):
    """A Binance kline interval (rest-api.md, "Kline/Candlestick data"; case-sensitive).

    Every interval but ``1w`` and ``1M`` opens on multiples of its length since the Unix
    epoch. ``1w`` opens on Mondays 00:00 UTC; ``1M`` on the 1st of each calendar month, so it
    has no fixed length and ``ms`` is ``None`` for it.
    """

    S1 = "1s"
    M1 = "1m"
    M3 = "3m"
    M5 = "5m"
    M15 = "15m"
    M30 = "30m"
    H1 = "1h"
    H2 = "2h"
    H4 = "4h"
    H6 = "6h"
    H8 = "8h"
    H12 = "12h"
    D1 = "1d"
    D3 = "3d"
    W1 = "1w"
    MO1 = "1M"

    @classmethod
    def parse(cls, value: str | Interval) -> Interval:
        """Return the interval named ``value`` or raise :class:`InvalidInterval`."""
        if isinstance(value, Interval):
            return value
        try:
            return cls(value)
        except ValueError:
            accepted = ", ".join(i.value for i in cls)
            raise InvalidInterval(
                f"invalid interval {value!r}; accepted (case-sensitive): {accepted}",
                interval=str(value),
            ) from None

    @property
    def ms(self) -> int | None:
        """Fixed length in milliseconds, or ``None`` for the calendar month."""
        return _FIXED_MS.get(self)

    def floor(self, ts: int) -> int:
        """Open time of the candle that contains ``ts``."""
        if self is Interval.MO1:
            dt = datetime.fromtimestamp(ts // 1000, tz=UTC)
            return _month_start_ms(dt.year, dt.month)
        if self is Interval.W1:
            return ts - (ts - _FIRST_MONDAY_MS) % WEEK_MS
        step = _FIXED_MS[self]
        return ts - ts % step

    def ceil(self, ts: int) -> int:
        """The first open time at or after ``ts``."""
        start = self.floor(ts)
        return start if start == ts else self.next_open(start)

    def next_open(self, open_time: int) -> int:
        """Open time of the candle after the one that opens at ``open_time``."""
        return self.shift(open_time, 1)

    def close_time(self, open_time: int) -> int:
        """Binance's close time: the next open time less one millisecond."""
        return self.next_open(open_time) - 1

    def shift(self, open_time: int, n: int) -> int:
        """Open time ``n`` candles after (or before, for negative ``n``) ``open_time``."""
        if self is Interval.MO1:
            dt = datetime.fromtimestamp(open_time // 1000, tz=UTC)
            months = dt.year * 12 + (dt.month - 1) + n
            return _month_start_ms(months // 12, months % 12 + 1)
        return open_time + n * _FIXED_MS[self]

    def count_between(self, start: int, end: int) -> int:
        """How many candles open in the half-open window [start, end)."""
        first = self.ceil(start)
        if first >= end:
            return 0
        if self is Interval.MO1:
            n = 0
            t = first
            while t < end:
                n += 1
                t = self.next_open(t)
            return n
        step = _FIXED_MS[self]
        return (end - first - 1) // step + 1

    def open_times(self, start: int, end: int) -> list[int]:
        """Every open time in [start, end), in order."""
        out: list[int] = []
        t = self.ceil(start)
        while t < end:
            out.append(t)
            t = self.next_open(t)
        return out


_FIXED_MS: dict[Interval, int] = {
    Interval.S1: SECOND_MS,
    Interval.M1: MINUTE_MS,
    Interval.M3: 3 * MINUTE_MS,
    Interval.M5: 5 * MINUTE_MS,
    Interval.M15: 15 * MINUTE_MS,
    Interval.M30: 30 * MINUTE_MS,
    Interval.H1: HOUR_MS,
    Interval.H2: 2 * HOUR_MS,
    Interval.H4: 4 * HOUR_MS,
    Interval.H6: 6 * HOUR_MS,
    Interval.H8: 8 * HOUR_MS,
    Interval.H12: 12 * HOUR_MS,
    Interval.D1: DAY_MS,
    Interval.D3: 3 * DAY_MS,
    Interval.W1: WEEK_MS,
}


def _month_start_ms(year: int, month: int) -> int:
    return calendar.timegm((year, month, 1, 0, 0, 0)) * 1000


def to_ms(value: int | datetime | str) -> int:
    """UTC epoch milliseconds from an int (ms), an aware datetime or an ISO-8601 string.

    A naive datetime or a string without an offset is read as UTC.
    """
    if isinstance(value, bool):
        raise InvalidRange(f"not a timestamp: {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidRange(
                f"not a timestamp: {value!r}; use epoch milliseconds or ISO-8601 "
                "such as 2024-01-31 or 2024-01-31T12:00:00Z"
            ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp() * 1000)


_ASSET = re.compile(r"^[A-Z0-9]{1,12}$")

# Quote assets tried, longest first, when a symbol arrives in the exchange's glued form
# ("BTCUSDT"). A provider that knows the exchange's listing resolves exactly instead.
KNOWN_QUOTES: tuple[str, ...] = tuple(
    sorted(
        (
            "USDT", "USDC", "FDUSD", "TUSD", "BUSD", "DAI", "BTC", "ETH", "BNB", "EUR",
            "TRY", "BRL", "GBP", "JPY", "AUD", "USD", "XRP", "DOGE", "SOL", "TRX",
        ),
        key=len,
        reverse=True,
    )
)  # fmt: skip


@dataclass(frozen=True, slots=True, order=True)
class Symbol:
    """A trading pair in canonical ``BASE/QUOTE`` form; ``exchange`` is Binance's ``BASEQUOTE``."""

    base: str
    quote: str

    @classmethod
    def parse(cls, text: str | Symbol, quotes: tuple[str, ...] = KNOWN_QUOTES) -> Symbol:
        """Read ``BTC/USDT``, ``btc-usdt`` or ``BTCUSDT``; raise :class:`InvalidSymbol`."""
        if isinstance(text, Symbol):
            return text
        raw = text.strip().upper() if isinstance(text, str) else ""
        for sep in ("/", "-", "_"):
            if sep in raw:
                base, _, quote = raw.partition(sep)
                if _ASSET.match(base) and _ASSET.match(quote):
                    return cls(base, quote)
                break
        else:
            for quote in quotes:
                if raw.endswith(quote) and len(raw) > len(quote):
                    base = raw[: -len(quote)]
                    if _ASSET.match(base):
                        return cls(base, quote)
        raise InvalidSymbol(
            f"invalid symbol {text!r}: expected BASE/QUOTE such as BTC/USDT, or the exchange "
            f"form such as BTCUSDT with a known quote asset ({', '.join(sorted(quotes))})",
            symbol=str(text),
        )

    @property
    def exchange(self) -> str:
        """Binance's form, ``BTCUSDT``."""
        return self.base + self.quote

    def __str__(self) -> str:
        return f"{self.base}/{self.quote}"


def parse_decimal(value: object, what: str) -> Decimal:
    """An exact Decimal from the exchange's decimal string; MalformedPayload otherwise.

    Floats are refused: a JSON float has already lost the exchange's exact value.
    """
    if isinstance(value, str):
        try:
            result = Decimal(value)
        except InvalidOperation:
            pass
        else:
            if result.is_finite():
                return result
    elif isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    raise MalformedPayload(f"{what}: expected a decimal string, got {value!r}")


PriceLevel = tuple[Decimal, Decimal]


@dataclass(frozen=True, slots=True)
class Ticker:
    """The latest price of a symbol; the 24-hour and book fields are set when known."""

    symbol: Symbol
    price: Decimal
    time: int
    bid: Decimal | None = None
    bid_qty: Decimal | None = None
    ask: Decimal | None = None
    ask_qty: Decimal | None = None
    open: Decimal | None = None
    high: Decimal | None = None
    low: Decimal | None = None
    volume: Decimal | None = None
    quote_volume: Decimal | None = None
    change_pct: Decimal | None = None


class Candle(msgspec.Struct, frozen=True, gc=False):
    """One kline. ``closed`` is False for the candle still open when it was fetched.

    A ``msgspec.Struct`` rather than a dataclass for one reason: ``gc=False``. A process that
    caches candles holds hundreds of thousands of them, and every one a dataclass would be
    tracked by the cyclic garbage collector, whose full collections then walk them all: in
    bench/marketdata.py's Zipf run that was 13 pauses of up to 0.6 s in 20 s, a quarter of
    the process's time. A candle refers only to a symbol, an interval, ints and Decimals, so
    it can never be part of a reference cycle and needs no tracking. Equality, hashing and
    immutability are as a frozen dataclass's; ``msgspec.structs.replace`` replaces fields.
    """

    symbol: Symbol
    interval: Interval
    open_time: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    close_time: int
    quote_volume: Decimal
    trades: int
    taker_buy_volume: Decimal
    taker_buy_quote_volume: Decimal
    closed: bool


@dataclass(frozen=True, slots=True)
class OrderBook:
    """A depth snapshot: bids best (highest) first, asks best (lowest) first."""

    symbol: Symbol
    last_update_id: int
    bids: tuple[PriceLevel, ...]
    asks: tuple[PriceLevel, ...]
    time: int = field(default=0)

    @property
    def best_bid(self) -> PriceLevel | None:
        return self.bids[0] if self.bids else None

    @property
    def best_ask(self) -> PriceLevel | None:
        return self.asks[0] if self.asks else None
