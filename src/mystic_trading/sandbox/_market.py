"""``Market``: the deterministic synthetic exchange, usable directly as a test oracle.

``Market(seed).klines("BTCUSDT", "1h", start, end, limit, now)`` returns exactly the rows the
HTTP endpoint serves for the same arguments. Nothing of the past is stored: each symbol-day is
generated on demand and memoised in bounded LRU caches (minute blocks, per-day groups, daily
summaries), so a warm cache serves 1000 daily or weekly candles in milliseconds.

The market resolves time to the millisecond: each 1s candle is made of trades at millisecond
offsets inside its second (``_trades.py``), and the candle that contains ``now`` (of any
interval) is the aggregate of exactly the trades with ``timestamp <= now``; the ticker price is
its close. Once ``now`` has passed a candle's close time it is final, and a final candle never
changes (:meth:`Market.final_candle` is that truth, for tests to compare against).

``now`` here is always the time of the data, the sandbox's *cutoff*: the exchange's clock minus
its aggregation lag (``SandboxExchange.read_clock``).
"""

from __future__ import annotations

import hashlib
import json
import threading
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from mystic_trading.errors import UnknownSymbol
from mystic_trading.models import Interval
from mystic_trading.sandbox._catalog import (
    DAY_MS,
    MINUTE_MS,
    SYMBOLS,
    Gap,
    SymbolSpec,
    format_units,
    gap_schedule,
)
from mystic_trading.sandbox._generator import (
    MINUTES_PER_DAY,
    Agg,
    MinuteBlock,
    generate_day,
    merge,
    merge_all,
    split_minute,
)
from mystic_trading.sandbox._trades import MinuteTape, SecondTape, minute_tape, split_second

__all__ = ["TAPE_VERSION", "KlineRow", "Market"]

# Part of every venue id: bump it whenever a seed would print other candles or trades than
# before, so data stored from an older sandbox is never taken for this one's.
TAPE_VERSION = 2

K = TypeVar("K")
V = TypeVar("V")

# One kline exactly as Binance sends it: 12 fields (rest-api.md "Kline/Candlestick data").
KlineRow = list[Any]

_GROUP_MINUTES: dict[Interval, int] = {
    Interval.M1: 1,
    Interval.M3: 3,
    Interval.M5: 5,
    Interval.M15: 15,
    Interval.M30: 30,
    Interval.H1: 60,
    Interval.H2: 120,
    Interval.H4: 240,
    Interval.H6: 360,
    Interval.H8: 480,
    Interval.H12: 720,
    Interval.D1: 1440,
}


class _Lru(Generic[K, V]):
    """A bounded least-recently-used memo, safe to share between the server thread and a test
    that uses the same Market as its oracle."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._data: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.RLock()

    def get(self, key: K, make: Callable[[], V]) -> V:
        with self._lock:
            try:
                value = self._data[key]
            except KeyError:
                value = make()
                self._data[key] = value
                if len(self._data) > self._size:
                    self._data.popitem(last=False)
                return value
            self._data.move_to_end(key)
            return value

    def __len__(self) -> int:
        return len(self._data)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


def to_row(open_time: int, close_time: int, a: Agg) -> KlineRow:
    """The 12-field Binance kline row of an aggregate."""
    return [
        open_time,
        format_units(a[0]),
        format_units(a[1]),
        format_units(a[2]),
        format_units(a[3]),
        format_units(a[4]),
        close_time,
        format_units(a[5]),
        a[6],
        format_units(a[7]),
        format_units(a[8]),
        "0",
    ]


class Market:
    """A seeded synthetic market: same seed, same candles, in every process."""

    def __init__(
        self,
        seed: int = 0,
        *,
        symbols: tuple[SymbolSpec, ...] = SYMBOLS,
        gaps: tuple[Gap, ...] | None = None,
        cache_days: int = 512,
    ) -> None:
        self.seed = seed
        self._specs = symbols
        self._index = {s.symbol: i for i, s in enumerate(symbols)}
        self._gaps = gap_schedule(seed) if gaps is None else tuple(sorted(gaps))
        self._blocks: _Lru[tuple[int, int], MinuteBlock] = _Lru(cache_days)
        self._groups: _Lru[tuple[int, int, int], list[Agg | None]] = _Lru(cache_days * 4)
        self._days: _Lru[tuple[int, int], Agg | None] = _Lru(200_000)
        self._seconds: _Lru[tuple[int, int], MinuteTape | None] = _Lru(4096)
        self._tapes: _Lru[tuple[int, int], SecondTape] = _Lru(4096)
        self.venue = f"sandbox-s{seed}-{self._fingerprint()[:8]}"

    def _fingerprint(self) -> str:
        """sha256 of everything that decides what this market prints (not of ports, limits or
        clocks): the tape version, the seed, the symbols and the downtime."""
        spec = [
            TAPE_VERSION,
            self.seed,
            [
                [s.symbol, s.base, s.quote, s.listed_ms, repr(s.price), s.tick, s.step,
                 repr(s.minute_volume), repr(s.quiet_share), s.trades_per_minute]
                for s in self._specs
            ],
            [[g.start, g.end] for g in self._gaps],
        ]  # fmt: skip
        return hashlib.sha256(json.dumps(spec, separators=(",", ":")).encode()).hexdigest()

    # -- listing ------------------------------------------------------------------------

    @property
    def symbols(self) -> tuple[SymbolSpec, ...]:
        """Every symbol the market will ever list, listed or not yet at a given time."""
        return self._specs

    @property
    def gaps(self) -> tuple[Gap, ...]:
        """Exchange downtimes (all symbols), in order; no candle opens inside one."""
        return self._gaps

    def spec(self, symbol: str) -> SymbolSpec:
        """The symbol's listing; :class:`UnknownSymbol` if the market never lists it."""
        try:
            return self._specs[self._index[symbol]]
        except KeyError:
            raise UnknownSymbol(f"unknown symbol {symbol!r}", symbol=symbol) from None

    def index(self, symbol: str) -> int:
        """Position of ``symbol`` in :attr:`symbols`; :class:`UnknownSymbol` if not listed ever."""
        try:
            return self._index[symbol]
        except KeyError:
            raise UnknownSymbol(f"unknown symbol {symbol!r}", symbol=symbol) from None

    def listing_ms(self, symbol: str) -> int:
        """When ``symbol`` opened for trading (UTC ms); no candle opens before it."""
        return self.spec(symbol).listed_ms

    def is_listed(self, symbol: str, now: int) -> bool:
        """True when ``symbol`` exists and trades at ``now``."""
        i = self._index.get(symbol)
        return i is not None and self._specs[i].listed_ms <= now

    def listed(self, now: int) -> list[SymbolSpec]:
        """The symbols trading at ``now``, in catalogue order."""
        return [s for s in self._specs if s.listed_ms <= now]

    def in_gap(self, ts: int) -> bool:
        """True when ``ts`` falls in exchange downtime."""
        return any(ts in g for g in self._gaps)

    # -- building blocks -----------------------------------------------------------------

    def _block(self, i: int, day: int) -> MinuteBlock:
        return self._blocks.get(
            (i, day), lambda: generate_day(self.seed, i, self._specs[i], day, self._gaps)
        )

    def _day_groups(self, i: int, day: int, size: int) -> list[Agg | None]:
        return self._groups.get((i, day, size), lambda: self._block(i, day).groups(size))

    def _day(self, i: int, day: int) -> Agg | None:
        if (day + 1) * DAY_MS <= self._specs[i].listed_ms:
            return None
        return self._days.get((i, day), lambda: self._block(i, day).groups(MINUTES_PER_DAY)[0])

    def _minute(self, i: int, minute: int) -> Agg | None:
        day, idx = divmod(minute, DAY_MS)
        if minute < self._specs[i].listed_ms:
            return None
        return self._block(i, day).agg(idx // MINUTE_MS)

    def _seconds_of(self, i: int, minute: int) -> MinuteTape | None:
        def make() -> MinuteTape | None:
            m = self._minute(i, minute)
            if m is None:
                return None
            return minute_tape(split_minute(self.seed, i, minute, m, self._specs[i]))

        return self._seconds.get((i, minute), make)

    def _second(self, i: int, second: int, s: Agg) -> SecondTape:
        """The prints of the 1s candle ``s`` opening at ``second``."""
        if s[6] == 0:
            return SecondTape((), (s,))
        return self._tapes.get(
            (i, second), lambda: split_second(self.seed, i, second, s, self._specs[i])
        )

    def _range(self, i: int, start: int, end: int) -> Agg | None:
        """Aggregate of the whole minutes in [start, end), both minute aligned."""
        parts: list[Agg | None] = []
        t = max(start, self._specs[i].listed_ms - self._specs[i].listed_ms % MINUTE_MS)
        while t < end:
            day = t // DAY_MS
            day_start = day * DAY_MS
            day_end = day_start + DAY_MS
            if t == day_start and day_end <= end:
                parts.append(self._day(i, day))
                t = day_end
                continue
            lo = (t - day_start) // MINUTE_MS
            hi = (min(end, day_end) - day_start) // MINUTE_MS
            parts.append(self._block(i, day).groups(hi - lo, lo, hi)[0])
            t = day_start + hi * MINUTE_MS
        return merge_all(parts)

    def _partial_minute(self, i: int, now: int) -> Agg | None:
        """The minute containing ``now`` as seen at ``now``: its trades up to ``now``."""
        minute = now - now % MINUTE_MS
        tape = self._seconds_of(i, minute)
        if tape is None:
            return None
        k = (now - minute) // 1000
        second = minute + k * 1000
        view = self._second(i, second, tape.seconds[k]).at(now - second)
        done = tape.before[k]
        return view if done is None else merge(done, view)

    def candle(self, symbol: str, interval: Interval | str, open_time: int, now: int) -> Agg | None:
        """The aggregate of one candle as seen at ``now``, None if it has no minute."""
        iv = Interval.parse(interval)
        i = self.index(symbol)
        if open_time > now:
            return None
        if iv is Interval.S1:
            minute = open_time - open_time % MINUTE_MS
            tape = self._seconds_of(i, minute)
            if tape is None:
                return None
            s = tape.seconds[(open_time - minute) // 1000]
            if now - open_time >= 999:
                return s
            return self._second(i, open_time, s).at(now - open_time)
        close_time = iv.close_time(open_time)
        if close_time < now:
            size = _GROUP_MINUTES.get(iv)
            if size == 1:
                return self._minute(i, open_time)
            if size == MINUTES_PER_DAY:
                return self._day(i, open_time // DAY_MS)
            if size is not None:
                day, offset = divmod(open_time, DAY_MS)
                return self._day_groups(i, day, size)[offset // (size * MINUTE_MS)]
            return self._range(i, open_time, close_time + 1)
        minute_now = now - now % MINUTE_MS
        return merge_all([self._range(i, open_time, minute_now), self._partial_minute(i, now)])

    # -- endpoints -----------------------------------------------------------------------

    def klines(
        self,
        symbol: str,
        interval: Interval | str,
        start: int | None = None,
        end: int | None = None,
        limit: int = 500,
        *,
        now: int,
    ) -> list[KlineRow]:
        """Binance's /api/v3/klines rows, with its ordering rules (rest-api.md, "General API
        Information"): neither bound gives the most recent ``limit``; ``start`` gives the oldest
        from start; ``end`` alone the most recent up to end; both, from start not past end.

        Candles open at or before ``now``; the last of a range that reaches ``now`` is the open
        candle. ``start > end`` gives []. ``limit`` is clamped to [1, 1000].
        """
        iv = Interval.parse(interval)
        spec = self.spec(symbol)
        limit = max(1, min(1000, limit))
        hi = now if end is None else min(end, now)
        first = iv.floor(spec.listed_ms)
        rows: list[KlineRow] = []
        if start is not None:
            times: Iterator[int] = self._forward(iv, max(iv.ceil(start), first), hi)
        else:
            times = self._backward(iv, iv.floor(hi), first) if hi >= first else iter(())
        for t in times:
            a = self.candle(symbol, iv, t, now)
            if a is not None:
                rows.append(to_row(t, iv.close_time(t), a))
                if len(rows) >= limit:
                    break
        if start is None:
            rows.reverse()
        return rows

    @staticmethod
    def _forward(iv: Interval, t: int, hi: int) -> Iterator[int]:
        while t <= hi:
            yield t
            t = iv.next_open(t)

    @staticmethod
    def _backward(iv: Interval, t: int, first: int) -> Iterator[int]:
        while t >= first:
            yield t
            t = iv.shift(t, -1)

    def last_trade(self, symbol: str, now: int) -> tuple[int, int]:
        """(price, time) of the last trade at or before ``now``; the price is :meth:`price`.

        The time is that of the last trade within 10 days, else ``now``.
        """
        i = self.index(symbol)
        price = self.price(symbol, now)
        minute = now - now % MINUTE_MS
        floor = max(self._specs[i].listed_ms, minute - 10 * DAY_MS)
        t = minute
        while t >= floor:
            tape = self._seconds_of(i, t)
            if tape is not None:
                for j in range(min(59, (now - t) // 1000), -1, -1):
                    s = tape.seconds[j]
                    if s[6]:
                        second = t + j * 1000
                        offsets = self._second(i, second, s).offsets
                        seen = bisect_right(offsets, now - second)
                        if seen:
                            return price, second + offsets[seen - 1]
            t -= MINUTE_MS
        return price, now

    def price(self, symbol: str, now: int) -> int:
        """Ticker price at ``now`` (1e-8 units): the close of the trades up to ``now``; in a
        gap the last close before it."""
        return self.price_until(symbol, now)[0]

    def price_until(self, symbol: str, now: int) -> tuple[int, int]:
        """(price at ``now``, a time before which it cannot change): the next print in this
        second, else the next second (the next minute in a gap). Lets a caller cache it."""
        i = self.index(symbol)
        minute = now - now % MINUTE_MS
        tape = self._seconds_of(i, minute)
        if tape is not None:
            k = (now - minute) // 1000
            s = tape.seconds[k]
            second = minute + k * 1000
            if s[6] == 0:
                return s[3], second + 1000
            st = self._second(i, second, s)
            seen = bisect_right(st.offsets, now - second)
            until = second + st.offsets[seen] if seen < len(st.offsets) else second + 1000
            return st.views[seen][3], until
        until = minute + MINUTE_MS
        t = minute - MINUTE_MS
        floor = max(self._specs[i].listed_ms, minute - 10 * DAY_MS)
        while t >= floor:
            m = self._minute(i, t)
            if m is not None:
                return m[3], until
            t -= MINUTE_MS
        day = max(minute, self._specs[i].listed_ms) // DAY_MS
        return int(self._block(i, day).open[0].item()), until

    def prints(self, symbol: str, second: int) -> list[tuple[int, Agg]]:
        """The trades of the 1s candle opening at ``second``: (time, candle as seen at that
        time), one entry per millisecond with trades; [] for a second without trades."""
        i = self.index(symbol)
        if second % 1000:
            raise ValueError(f"{second} is not the open time of a 1s candle")
        minute = second - second % MINUTE_MS
        tape = self._seconds_of(i, minute)
        if tape is None:
            return []
        st = self._second(i, second, tape.seconds[(second - minute) // 1000])
        return [(second + off, view) for off, view in zip(st.offsets, st.views[1:], strict=True)]

    def final_candle(
        self, symbol: str, interval: Interval | str, open_time: int
    ) -> KlineRow | None:
        """The kline row of the candle opening at ``open_time`` as it is once final (as served
        after its close), whatever the time now; None when it has no trade minute (before
        listing, in downtime). ``open_time`` must be a candle open of ``interval``."""
        iv = Interval.parse(interval)
        if iv.floor(open_time) != open_time:
            raise ValueError(f"{open_time} is not the open time of a {iv.value} candle")
        close_time = iv.close_time(open_time)
        a = self.candle(symbol, iv, open_time, close_time + 1)
        return None if a is None else to_row(open_time, close_time, a)

    def rolling_24h(self, symbol: str, now: int) -> tuple[Agg | None, int]:
        """The 1440 minutes ending with the open one, and the close before them."""
        i = self.index(symbol)
        minute_now = now - now % MINUTE_MS
        window_start = minute_now - (MINUTES_PER_DAY - 1) * MINUTE_MS
        agg = merge_all([self._range(i, window_start, minute_now), self._partial_minute(i, now)])
        before = self._minute(i, window_start - MINUTE_MS)
        prev_close = before[3] if before is not None else (agg[0] if agg is not None else 0)
        return agg, prev_close

    def avg_5m(self, symbol: str, now: int) -> int:
        """Volume-weighted price of the last 5 minutes (1e-8), as /api/v3/avgPrice."""
        i = self.index(symbol)
        minute_now = now - now % MINUTE_MS
        agg = merge_all(
            [self._range(i, minute_now - 4 * MINUTE_MS, minute_now), self._partial_minute(i, now)]
        )
        if agg is None or agg[4] == 0:
            return self.price(symbol, now)
        return agg[5] * 10**8 // agg[4]
