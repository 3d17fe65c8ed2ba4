"""A candle request becomes an absolute, interval-aligned window before any layer sees it.

"The last 100 1m candles" asked at 12:00:30 and at 12:00:50 is the same window
[11:01, 12:01), so both share one cache key; asked at 12:01:05 it is [11:02, 12:02). Keys made
of relative requests go stale (yfinance#791, notes/caching.md).

Windows are half-open, ``start <= open_time < end``, in UTC ms, and never reach past the
candle open at ``now``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from mystic_trading.errors import InvalidRange
from mystic_trading.models import Interval, Symbol, to_ms

__all__ = ["DEFAULT_LIMIT", "MAX_CANDLES_UNCONFIRMED", "Window", "candle_window"]

DEFAULT_LIMIT = 500  # Binance's own default for /klines
# Above this many candles a request must say it means it (`allow_large=True`): ten years of
# 1s candles is 315 million rows, about 300 GiB of memory and 315,000 upstream pages.
MAX_CANDLES_UNCONFIRMED = 1_000_000


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


Moment = int | datetime | str


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
    """
    if limit is not None and (isinstance(limit, bool) or limit <= 0):
        raise InvalidRange(f"limit must be a positive number of candles, got {limit!r}")
    horizon = interval.next_open(interval.floor(now))  # end of the candle open now
    start_ms = None if start is None else interval.ceil(to_ms(start))
    end_ms = horizon if end is None else min(interval.ceil(to_ms(end)), horizon)
    if start is not None and end is not None and to_ms(end) < to_ms(start):
        raise InvalidRange(
            f"end {to_ms(end)} is before start {to_ms(start)}", start=to_ms(start), end=to_ms(end)
        )
    if start_ms is None:
        start_ms = interval.shift(end_ms, -(limit or DEFAULT_LIMIT))
    elif limit is not None:
        end_ms = min(end_ms, interval.shift(start_ms, limit))
    end_ms = max(end_ms, start_ms)
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
