"""A candle request becomes an absolute, interval-aligned window before any layer sees it.

"The last 100 1m candles" asked at 12:00:30 and at 12:00:50 is the same window
[11:01, 12:01), so both share one cache key; asked at 12:01:05 it is [11:02, 12:02). Keys made
of relative requests go stale (yfinance#791, notes/caching.md).

Windows are half-open, ``start <= open_time < end``, in UTC ms, and never reach past the
candle open at ``now`` nor before 1970-01-01.

The checks of a request's arguments live here too (``check_range``, ``check_limit``,
``check_depth``): they need no symbol and no clock, so a caller runs them before it spends
any request, and a bad argument is always a :class:`DataError` naming the value and what is
accepted.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from datetime import date, datetime

from mystic_trading.errors import DataError, InvalidRange
from mystic_trading.models import Interval, Symbol, iso_from_ms, to_ms

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_CANDLES_UNCONFIRMED",
    "MAX_DEPTH",
    "MAX_LIMIT",
    "Window",
    "candle_window",
    "check_depth",
    "check_limit",
    "check_range",
]

DEFAULT_LIMIT = 500  # Binance's own default for /klines
# Above this many candles a request must say it means it (`allow_large=True`): ten years of
# 1s candles is 315 million rows, about 300 GiB of memory and 315,000 upstream pages.
MAX_CANDLES_UNCONFIRMED = 1_000_000
# `limit` never needs more: a larger request gives start and end and allow_large=True. The
# bound keeps "the last 10**9 candles" from becoming 5 GB of pages (faults-e847b87, defect 4).
MAX_LIMIT = MAX_CANDLES_UNCONFIRMED
# Binance's /depth takes limit 1 to 5000 (rest-api.md, "Order book").
MAX_DEPTH = 5000


@dataclass(frozen=True, slots=True)
class Window:
    """An aligned candle window; ``count`` is how many candles can open in it."""

    symbol: Symbol
    interval: Interval
    start: int
    end: int

    @property
    def count(self) -> int:
        return self.interval.count_between(self.start, self.end)


Moment = int | datetime | date | str


def _whole(value: object) -> int | None:
    """``value`` as an int if it is a whole number (int, numpy.int64), else None.

    bool is refused (``True`` is not a count); so are floats, even 20.0, and strings.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        return None
    return int(value)


def _shown(value: object, width: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= width else f"{text[: width - 5]}...{text[-2:]}"


def check_limit(limit: object, name: str = "limit") -> int | None:
    """``limit`` as an int from 1 to ``MAX_LIMIT`` (1,000,000), None as None; else InvalidRange.

    Only whole numbers count: ``2.5``, ``5.0``, ``'5'`` and ``True`` are refused, never
    rounded or parsed.
    """
    if limit is None:
        return None
    n = _whole(limit)
    if n is None or n < 1:
        raise InvalidRange(
            f"{name} must be a whole number of candles from 1 to {MAX_LIMIT:,}, got {_shown(limit)}"
        )
    if n > MAX_LIMIT:
        raise InvalidRange(
            f"{name} {n:,} is more than {MAX_LIMIT:,} candles; for more, give start and end "
            "with allow_large=True (CLI: --start, --end and --yes)"
        )
    return n


def check_depth(depth: object) -> int:
    """``depth`` (order-book levels a side) as an int from 1 to 5000; else DataError.

    Only whole numbers count: ``2.5``, ``'20'`` and ``True`` are refused, never rounded or
    parsed.
    """
    n = _whole(depth)
    if n is None or not 1 <= n <= MAX_DEPTH:
        raise DataError(
            f"depth must be a whole number of levels a side from 1 to {MAX_DEPTH}, "
            f"got {_shown(depth)}"
        )
    return n


def _as_given(value: object, ms: int) -> str:
    """A moment as the caller wrote it, with its other form: ISO for ms, ms for the rest."""
    if isinstance(value, str) and not value.strip().lstrip("+-").isdigit():
        return f"{value.strip()} ({ms} ms)"
    if isinstance(value, date):  # datetime too
        return f"{value.isoformat()} ({ms} ms)"
    return f"{ms} ({iso_from_ms(ms)})"


def check_range(
    start: object, end: object, *, names: tuple[str, str] = ("start", "end")
) -> tuple[int | None, int | None]:
    """``start`` and ``end`` as epoch ms (each may be None), checked by :func:`to_ms`.

    ``end`` before ``start`` raises :class:`InvalidRange` showing both as they were given
    (``end 2024-03-01 (1709251200000 ms) is before start 2024-03-05 (...)``). ``names``
    are what messages call them (``("--since", "--until")`` for the CLI).
    """
    start_ms = None if start is None else to_ms(start, names[0])
    end_ms = None if end is None else to_ms(end, names[1])
    if start_ms is not None and end_ms is not None and end_ms < start_ms:
        raise InvalidRange(
            f"{names[1]} {_as_given(end, end_ms)} is before {names[0]} "
            f"{_as_given(start, start_ms)}",
            start=start_ms,
            end=end_ms,
        )
    return start_ms, end_ms


def candle_window(
    symbol: Symbol,
    interval: Interval,
    now: int,
    start: Moment | None = None,
    end: Moment | None = None,
    limit: int | None = None,
    *,
    allow_large: bool = False,
) -> Window:
    """Resolve ``start``/``end``/``limit`` against ``now``, much as Binance's /klines does.

    - none given: the last ``limit`` (default 500) candles, the open one included;
    - ``start``: every candle from ``start`` up to now, the first ``limit`` if given (Binance
      stops at 500; Mystic pages for you, and the size guard stops accidents);
    - ``end``: the last ``limit`` candles opening before ``end``;
    - both: every candle opening in [start, end), the first ``limit`` of them if given.

    A ``start`` after the open time of the candle open at ``now`` (a window wholly in the
    future) gives the empty window ``[start, start)``: nothing has opened there yet, so the
    answer is no candles, not an error. An ``end`` in the future is cut to now; a window
    never starts before 1970-01-01. ``start``/``end`` are read by :func:`to_ms` and
    ``limit`` by :func:`check_limit`; every refusal is an :class:`InvalidRange` raised here,
    before any request.
    """
    limit = check_limit(limit)
    given_start, given_end = check_range(start, end)
    horizon = interval.next_open(interval.floor(now))  # end of the candle open now
    start_ms = None if given_start is None else interval.ceil(given_start)
    end_ms = horizon if given_end is None else min(interval.ceil(given_end), horizon)
    if start_ms is None:
        # "The last N" may reach back before 1970, where no time is valid upstream (-1100).
        start_ms = max(interval.shift(end_ms, -(limit or DEFAULT_LIMIT)), interval.ceil(0))
    elif limit is not None:
        end_ms = min(end_ms, interval.shift(start_ms, limit))
    end_ms = max(end_ms, start_ms)  # a start past now: [start, start)
    window = Window(symbol, interval, start_ms, end_ms)
    if not allow_large and window.count > MAX_CANDLES_UNCONFIRMED:
        raise InvalidRange(
            f"{window.count:,} {interval.value} candles of {symbol} requested; more than "
            f"{MAX_CANDLES_UNCONFIRMED:,} needs allow_large=True (CLI: --yes), or ask for a "
            "shorter range or a longer interval",
            start=start_ms,
            end=end_ms,
        )
    return window
