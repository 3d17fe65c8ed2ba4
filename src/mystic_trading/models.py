"""Frozen domain values: symbols, intervals, tickers, candles and order books.

Times are UTC epoch milliseconds, as Binance sends them. Prices and quantities are
``decimal.Decimal`` built from the exchange's decimal strings, so "12345678.12345678" stays
exactly that (a binary float would turn it into 12345678.123456780612...). ARCHITECTURE.md
("Exact decimals") gives the cost of that choice.
"""

from __future__ import annotations

import enum
import numbers
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation

import msgspec

from mystic_trading.errors import InvalidInterval, InvalidRange, InvalidSymbol, MalformedPayload

__all__ = [
    "KNOWN_QUOTES",
    "MAX_TIMESTAMP_MS",
    "SECONDS_BELOW_MS",
    "Candle",
    "Interval",
    "OrderBook",
    "Symbol",
    "Ticker",
    "iso_from_ms",
    "parse_decimal",
    "symbol_text",
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
    def parse(cls, value: object) -> Interval:
        """Return the interval named ``value`` or raise :class:`InvalidInterval`.

        Only an ``Interval`` or the exact str of one is accepted: no case folding, no
        whitespace stripped, no other type (``None``, ``60``) converted.
        """
        if isinstance(value, Interval):
            return value
        member = cls._value2member_map_.get(value) if isinstance(value, str) else None
        if isinstance(member, Interval):
            return member
        accepted = ", ".join(i.value for i in cls)
        kind = "" if isinstance(value, str) else f" ({type(value).__name__}, not str)"
        raise InvalidInterval(
            f"invalid interval {_shown(value)}{kind}; accepted (case-sensitive): {accepted}",
            interval=str(value),
        )

    @property
    def ms(self) -> int | None:
        """Fixed length in milliseconds, or ``None`` for the calendar month."""
        return _FIXED_MS.get(self)

    def floor(self, ts: int) -> int:
        """Open time of the candle that contains ``ts``."""
        if self is Interval.MO1:
            return _month_start_ms(_month_index(ts))
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
            return _month_start_ms(_month_index(open_time) + n)
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


# Calendar months by integer arithmetic, not datetime: datetime.fromtimestamp raises OSError
# or OverflowError far from today (a start of 10**20 ms gave "[Errno 75] Value too large"),
# and calendar.timegm a ValueError past year 9999 (1M windows of a million months). These hold
# for every int. The algorithms are Howard Hinnant's "days_from_civil"/"civil_from_days"
# (https://howardhinnant.github.io/date_algorithms.html), in Python's floor division.
def _month_index(ts: int) -> int:
    """``year * 12 + month - 1`` of the UTC month that holds ``ts`` (epoch ms)."""
    z = ts // DAY_MS + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153  # months counted from March
    month = mp + 3 if mp < 10 else mp - 9
    year = yoe + era * 400 + (1 if month <= 2 else 0)
    return year * 12 + month - 1


def _month_start_ms(index: int) -> int:
    """Epoch ms of 00:00 UTC on the 1st of month ``index`` (``year * 12 + month - 1``)."""
    year, month0 = divmod(index, 12)
    year -= 1 if month0 < 2 else 0
    era = year // 400
    yoe = year - era * 400
    doy = (153 * ((month0 + 10) % 12) + 2) // 5  # the 1st, months counted from March
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return (era * 146_097 + doe - 719_468) * DAY_MS


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)

# Integers are epoch milliseconds. One below SECONDS_BELOW_MS would be before 1973-03-03
# 09:46:40 UTC, when no exchange traded crypto, but as epoch seconds it is 1970 to 5138: it is
# almost surely seconds (time.time(), pandas' .timestamp()), so it is refused, not read as 1970.
SECONDS_BELOW_MS = 100_000_000_000
# The latest time accepted, 2100-01-01 00:00:00 UTC: later ones are typos ("2204") or other
# units (epoch microseconds or nanoseconds); the bound also keeps window arithmetic small.
MAX_TIMESTAMP_MS = 4_102_444_800_000
_INT_TEXT = re.compile(r"[+-]?[0-9]+")
_BASIC_DATE = re.compile(r"(19|20)[0-9]{2}(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])")
_ACCEPTED_MOMENTS = (
    "accepted: epoch milliseconds as an int or a string of digits (0, or "
    f"{SECONDS_BELOW_MS} to {MAX_TIMESTAMP_MS}), a datetime or date, or an ISO-8601 string "
    "such as 2024-01-31 or 2024-01-31T12:00:00Z (UTC unless it has an offset), from "
    "1970-01-01 to 2100-01-01"
)


def iso_from_ms(ms: int) -> str:
    """Epoch ms as ISO-8601 UTC that :func:`to_ms` reads back: ``2024-01-31T12:00:00Z``."""
    text = (_EPOCH + ms * _ONE_MS).isoformat(timespec="milliseconds")
    return text.replace(".000+00:00", "Z").replace("+00:00", "Z")


def utc_text(ms: int) -> str:
    """Epoch ms as people read it in logs and tables: ``2026-12-02 07:30:05 UTC``."""
    return (_EPOCH + ms * _ONE_MS).strftime("%Y-%m-%d %H:%M:%S UTC")


def _shown(value: object, width: int = 60) -> str:
    """``repr(value)``, cut short: a 10 kB argument should not become a 10 kB message."""
    text = value.isoformat() if isinstance(value, date) else repr(value)
    return text if len(text) <= width else f"{text[: width - 5]}...{text[-2:]}"


def _refused(what: str, value: object, reason: str) -> InvalidRange:
    return InvalidRange(f"{what} {_shown(value)} {reason}; {_ACCEPTED_MOMENTS}")


def to_ms(value: object, what: str = "timestamp") -> int:
    """UTC epoch milliseconds from an int (ms), a datetime, a date or an ISO-8601 string.

    - An int, or a str of ASCII digits, is epoch milliseconds, from 0 to ``MAX_TIMESTAMP_MS``
      (2100-01-01). One from 1 to ``SECONDS_BELOW_MS - 1`` (100,000,000,000, which is
      1973-03-03 as ms but 1970 to 5138 as seconds) looks like epoch seconds and is refused,
      naming the milliseconds to use: it is never converted silently.
    - A datetime or an ISO-8601 string without an offset is UTC; a date is its 00:00 UTC.
      Either must fall from 1970-01-01 to 2100-01-01.
    - Floats are refused, integral or not: a float time is most often seconds
      (``time.time()``) or has lost precision. So are bools, None and every other type.

    Anything refused raises :class:`InvalidRange` naming ``what`` (``"start"``,
    ``"--since"``), the value and what is accepted.
    """
    if isinstance(value, bool) or value is None:
        raise _refused(what, value, "is not a timestamp")
    if isinstance(value, float):
        raise _refused(what, value, "is a float (for time.time() seconds: int(t * 1000))")
    if isinstance(value, numbers.Integral):  # int, numpy.int64 (numpy.bool_ is not Integral)
        return _epoch_ms(int(value), what, value)
    if isinstance(value, str):
        text = value.strip()
        if _INT_TEXT.fullmatch(text):
            sign = -1 if text.startswith("-") else 1
            digits = text.lstrip("+-").lstrip("0") or "0"
            # int() refuses over 4,300 digits (a ValueError); any such number is out of range.
            number = int(digits) if len(digits) <= 20 else MAX_TIMESTAMP_MS + 1
            return _epoch_ms(sign * number, what, value)
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise _refused(what, value, "is not a timestamp") from None
    elif isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    else:
        raise _refused(what, value, f"is not a timestamp (a {type(value).__name__})")
    if moment.utcoffset() is None:  # naive: read as UTC
        moment = moment.replace(tzinfo=UTC)
    # Exact: timedelta // timedelta is an int, where timestamp() * 1000 goes through a float.
    ms = (moment - _EPOCH) // _ONE_MS
    if not 0 <= ms <= MAX_TIMESTAMP_MS:
        span = "before 1970-01-01" if ms < 0 else "after 2100-01-01"
        raise _refused(what, value, f"is {span}T00:00:00Z")
    return ms


def _epoch_ms(ms: int, what: str, value: object) -> int:
    """Check an integer given as epoch milliseconds (see :func:`to_ms`)."""
    if ms < 0:
        raise _refused(what, value, "is negative: epoch milliseconds start at 0 (1970-01-01)")
    if 0 < ms < SECONDS_BELOW_MS:
        if ms * 1000 <= MAX_TIMESTAMP_MS:
            advice = f"for {iso_from_ms(ms * 1000)} give {ms * 1000}"
        else:
            advice = "even as seconds it is after 2100-01-01"
        text = value.strip() if isinstance(value, str) else ""
        if _BASIC_DATE.fullmatch(text):  # 20240131: an ISO date in the basic format?
            day = f"{text[:4]}-{text[4:6]}-{text[6:]}"
            advice += f"; if it is the date {day}, write {day}"
        raise InvalidRange(
            f"{what} {_shown(value)} looks like epoch seconds, not milliseconds: integers are "
            f"epoch ms, and 1 to {SECONDS_BELOW_MS - 1} (before 1973-03-03 as ms) is refused "
            f"as a likely mistake; {advice}"
        )
    if ms > MAX_TIMESTAMP_MS:
        raise _refused(
            what,
            value,
            "is after 2100-01-01T00:00:00Z (in epoch microseconds or nanoseconds? divide by "
            "1,000 or 1,000,000)",
        )
    return ms


# A symbol's text: ASCII letters and digits, with at most one separator between base and
# quote. Checked before upper-casing, which would turn "ß" into "SS", and matched whole
# (fullmatch): "$" also matches before a trailing newline, so "BTC\n/USDT" passed.
_SEPARATORS = "/-_"
_ASSET = re.compile(r"[A-Z0-9]{1,12}")
_SYMBOL_TEXT = re.compile(r"[A-Za-z0-9]{1,12}[/_-][A-Za-z0-9]{1,12}|[A-Za-z0-9]{2,24}")
_SYMBOL_FORMS = (
    "expected BASE/QUOTE such as BTC/USDT (also btc/usdt, BTC-USDT or BTC_USDT), or the "
    "exchange form such as BTCUSDT; assets are 1 to 12 ASCII letters or digits"
)


def symbol_text(value: object) -> str:
    """The text of a symbol, stripped and upper-cased, or :class:`InvalidSymbol`.

    Accepted: a str of 1 to 12 ASCII letters or digits, a separator (``/``, ``-`` or ``_``)
    and 1 to 12 more; or 2 to 24 of them glued (the exchange form, ``BTCUSDT``). Leading and
    trailing spaces are dropped; other whitespace (a newline, a tab) is a control character
    and refused. Refused, naming the fault: other types (``None``, ``123``), control
    characters, non-ASCII letters or digits (``ß``, Cyrillic, fullwidth, CJK, emoji), spaces
    inside, and more than one separator. Whether a glued form splits into
    base and quote is left to :meth:`Symbol.parse` or the exchange's listing.
    """
    if not isinstance(value, str):
        raise InvalidSymbol(
            f"invalid symbol {_shown(value)}: a symbol is a str, not {type(value).__name__}; "
            + _SYMBOL_FORMS,
            symbol=str(value),
        )
    text = value.strip(" ")  # spaces only: a newline or tab is refused, not dropped
    if _SYMBOL_TEXT.fullmatch(text):
        return text.upper()
    bad = next((c for c in text if not (c.isascii() and (c.isalnum() or c in _SEPARATORS))), "")
    if bad:
        reason = f"{bad!r} (U+{ord(bad):04X}) is not an ASCII letter, digit or separator"
    elif not text:
        reason = "it is empty"
    elif (separators := sum(text.count(sep) for sep in _SEPARATORS)) > 1:
        reason = "it has more than one separator"
    elif separators:
        reason = "its base or quote is empty or longer than 12 characters"
    else:
        size = f"{len(text):,} character" + ("" if len(text) == 1 else "s")
        reason = f"it has {size}, where the exchange form has 2 to 24"
    raise InvalidSymbol(f"invalid symbol {_shown(value)}: {reason}; {_SYMBOL_FORMS}", symbol=value)


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
    def parse(cls, text: object, quotes: tuple[str, ...] = KNOWN_QUOTES) -> Symbol:
        """Read ``BTC/USDT``, ``btc-usdt`` or ``BTCUSDT``; raise :class:`InvalidSymbol`.

        The text must pass :func:`symbol_text`; a glued form is split at the longest quote
        asset of ``quotes`` it ends with.
        """
        if isinstance(text, Symbol):
            return text
        raw = symbol_text(text)
        for sep in _SEPARATORS:
            if sep in raw:
                base, _, quote = raw.partition(sep)
                return cls(base, quote)
        for quote in quotes:
            if raw.endswith(quote) and _ASSET.fullmatch(raw[: -len(quote)]):
                return cls(raw[: -len(quote)], quote)
        raise InvalidSymbol(
            f"invalid symbol {_shown(text)}: it does not split into a base and a known quote "
            f"asset ({', '.join(sorted(quotes))}); {_SYMBOL_FORMS}",
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
