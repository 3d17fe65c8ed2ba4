"""Candle ranges: closed candles from the store, only the gaps from the exchange.

A window splits at the open candle. Its closed part is read from the store after the gaps of
the coverage map are fetched, in pages of the exchange's size, concurrently (the throttler
orders them); every page is saved together with its coverage in one transaction, so a range
the exchange returned empty (before listing, downtime) is known empty and never asked again,
and a crash never leaves a range marked covered without its candles. The open candle is
fetched every time it is needed (it changes) and never stored; when a gap ends where the
open candle starts, the last page is stretched to carry it, saving a call.

Fills of one series that overlap are serialized, so two overlapping windows asked at once do
not fetch the same gap twice: the second finds it covered. Fills that do not overlap run side
by side: a backtest filling last month never holds up the live "last 100 candles" (a
per-series lock did: 20 s medians under load in bench/marketdata.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence

from mystic_trading.marketdata.window import Window
from mystic_trading.models import Candle, Interval, Symbol
from mystic_trading.providers.base import Provider
from mystic_trading.store import Store
from mystic_trading.throttle import Priority

__all__ = ["CandleFiller", "pages"]

Range = tuple[int, int]


def pages(interval: Interval, gaps: Sequence[Range], size: int) -> list[Range]:
    """Split gaps into windows of at most ``size`` candles each."""
    out: list[Range] = []
    for start, end in gaps:
        s = start
        while s < end:
            e = min(end, interval.shift(s, size))
            out.append((s, e))
            s = e
    return out


class CandleFiller:
    """Serves candle windows from the store, fetching only what it lacks."""

    def __init__(self, provider: Provider, store: Store) -> None:
        self.provider = provider
        self.store = store
        self.pages_fetched = 0
        self._busy: dict[tuple[str, Interval], list[tuple[int, int, asyncio.Event]]] = {}

    @contextlib.asynccontextmanager
    async def _claim(self, window: Window) -> AsyncIterator[None]:
        """Hold [start, end) of the window's series; wait out in-flight fills it overlaps."""
        key = (window.symbol.exchange, window.interval)
        start, end = window.start, window.end
        while True:
            busy = self._busy.setdefault(key, [])
            overlapping = [ev for s, e, ev in busy if s < end and start < e]
            if not overlapping:
                break
            await asyncio.gather(*(ev.wait() for ev in overlapping))
        mine = (start, end, asyncio.Event())
        busy.append(mine)
        try:
            yield
        finally:
            busy.remove(mine)
            mine[2].set()
            if not busy:
                del self._busy[key]

    async def fill(
        self, window: Window, now: int, priority: Priority = Priority.INTERACTIVE
    ) -> tuple[list[Candle], int]:
        """The candles of ``window`` and how many upstream pages it took."""
        iv, sym = window.interval, window.symbol
        open_start = iv.floor(now)
        closed_end = min(window.end, open_start)
        want_open = window.end > open_start
        async with self._claim(window):
            gaps: list[Range] = []
            if window.start < closed_end:
                gaps = await self.store.candles.gaps(
                    self.provider.name, sym, iv, window.start, closed_end
                )
            size = self.provider.page_limit
            todo = pages(iv, gaps, size)
            if want_open:
                last = todo[-1] if todo else None
                if (
                    last is not None
                    and last[1] == open_start
                    and iv.count_between(last[0], last[1]) < size
                ):
                    todo[-1] = (last[0], window.end)  # the open candle rides along
                else:
                    todo.append((open_start, window.end))
            results = await asyncio.gather(
                *(self._page(sym, iv, s, e, closed_end, priority) for s, e in todo),
                return_exceptions=True,
            )
        self.pages_fetched += len(todo)
        fetched: list[Candle] = []
        open_candles: list[Candle] = []
        for result in results:
            if isinstance(result, BaseException):
                raise result
            fetched.extend(result[0])
            open_candles.extend(result[1])
        closed: list[Candle] = []
        if gaps == [(window.start, closed_end)]:
            # All of it was fetched just now (and stored): no need to read it back.
            closed = sorted(
                (c for c in fetched if window.start <= c.open_time < closed_end),
                key=_open_time,
            )
        elif window.start < closed_end:
            closed = list(
                await self.store.candles.range(
                    self.provider.name, sym, iv, window.start, closed_end
                )
            )
        if want_open:
            closed.extend(c for c in open_candles if open_start <= c.open_time < window.end)
        return closed, len(todo)

    async def _page(
        self,
        symbol: Symbol,
        interval: Interval,
        start: int,
        end: int,
        closed_end: int,
        priority: Priority,
    ) -> tuple[list[Candle], list[Candle]]:
        """Fetch one page, store its closed candles with their coverage; return the closed
        candles stored and the open ones."""
        candles = await self.provider.klines(symbol, interval, start, end, priority=priority)
        still_open = [c for c in candles if not c.closed]
        cover_end = min(end, closed_end)
        if still_open:
            # The exchange's clock says this candle is not final yet: cover only up to it.
            cover_end = min(cover_end, still_open[0].open_time)
        stored: list[Candle] = []
        if start < cover_end:
            stored = [c for c in candles if c.closed and c.open_time < cover_end]
            await self.store.candles.save_range(
                self.provider.name,
                symbol,
                interval,
                start,
                cover_end,
                stored,
                fetched_at=self.provider.now_ms(),
            )
        return stored, still_open


def _open_time(candle: Candle) -> int:
    return candle.open_time
