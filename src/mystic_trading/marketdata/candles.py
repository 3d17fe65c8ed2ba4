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
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from mystic_trading.marketdata.window import Window
from mystic_trading.models import Candle, Interval, Symbol
from mystic_trading.providers.base import Provider
from mystic_trading.store import Store
from mystic_trading.throttle import Priority

__all__ = ["CandleFiller", "pages"]

log = logging.getLogger("mystic_trading.marketdata")

Range = tuple[int, int]

# Windows whose pages may be written in the background at once; beyond it a fill writes its
# own pages before it answers, so a store slower than the exchange slows the callers down
# instead of letting fetched candles pile up in memory.
MAX_PENDING_WRITES = 64


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
        self._busy: dict[tuple[str, Interval], list[_Claim]] = {}
        self._saving: set[asyncio.Task[None]] = set()

    async def flush(self) -> None:
        """Wait for the pages still being written to the store."""
        if self._saving:
            await asyncio.gather(*self._saving, return_exceptions=True)

    async def _claim(self, window: Window) -> _Claim:
        """Hold [start, end) of the window's series; wait out in-flight fills it overlaps."""
        key = (window.symbol.exchange, window.interval)
        start, end = window.start, window.end
        while True:
            busy = self._busy.setdefault(key, [])
            overlapping = [c.done for c in busy if c.start < end and start < c.end]
            if not overlapping:
                break
            await asyncio.gather(*(ev.wait() for ev in overlapping))
        claim = _Claim(key, start, end, asyncio.Event())
        busy.append(claim)
        return claim

    def _release(self, claim: _Claim) -> None:
        busy = self._busy[claim.key]
        busy.remove(claim)
        claim.done.set()
        if not busy:
            del self._busy[claim.key]

    async def fill(
        self,
        window: Window,
        now: int,
        priority: Priority = Priority.INTERACTIVE,
        *,
        wait_for_store: bool = False,
    ) -> tuple[list[Candle], int]:
        """The candles of ``window`` and how many upstream pages it took.

        The answer is the covered part read from the store plus the gaps' pages as they
        arrived; the pages' write to the store goes on in the background (``wait_for_store``
        waits for it, as a backfill does, and so does every fill while ``MAX_PENDING_WRITES``
        windows are already being written). The window stays claimed until it is written, so
        an overlapping request finds it covered instead of fetching it again. Answers that
        waited for the store's one write queue took 4 s medians in bench/marketdata.py.
        """
        iv, sym = window.interval, window.symbol
        open_start = iv.floor(now)
        closed_end = min(window.end, open_start)
        want_open = window.end > open_start
        claim = await self._claim(window)
        deferred = False
        try:
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
            saves: list[_Save] = []
            failure: BaseException | None = None
            for result in results:
                if isinstance(result, BaseException):
                    failure = failure or result
                    continue
                fetched.extend(result[0])
                open_candles.extend(result[1])
                if result[2] is not None:
                    saves.append(result[2])
            if (
                saves
                and failure is None
                and not wait_for_store
                and len(self._saving) < MAX_PENDING_WRITES
            ):
                task = asyncio.ensure_future(self._save_all(saves, claim))
                self._saving.add(task)
                task.add_done_callback(self._saving.discard)
                deferred = True
            else:
                for save in saves:  # pages that arrived are kept even if another failed
                    await self._save(save)
            if failure is not None:
                raise failure
            closed = [c for c in fetched if window.start <= c.open_time < closed_end]
            if window.start < closed_end and gaps != [(window.start, closed_end)]:
                # The part already covered comes from the store; the gaps from the pages just
                # fetched (disjoint from it, but a fetched candle wins if a direct upsert left
                # one in a gap).
                merged = {
                    c.open_time: c
                    for c in await self.store.candles.range(
                        self.provider.name, sym, iv, window.start, closed_end
                    )
                }
                merged.update((c.open_time, c) for c in closed)
                closed = list(merged.values())
            closed.sort(key=_open_time)
        finally:
            if not deferred:
                self._release(claim)
        if want_open:
            closed.extend(c for c in open_candles if open_start <= c.open_time < window.end)
        return closed, len(todo)

    async def _save(self, save: _Save) -> None:
        symbol, interval, start, end, candles, fetched_at = save
        await self.store.candles.save_range(
            self.provider.name, symbol, interval, start, end, candles, fetched_at=fetched_at
        )

    async def _save_all(self, saves: list[_Save], claim: _Claim) -> None:
        try:
            for save in saves:
                await self._save(save)
        except Exception as exc:  # the range stays uncovered: fetched again next time
            log.warning("could not store fetched candles (%r); they will be fetched again", exc)
        finally:
            self._release(claim)

    async def _page(
        self,
        symbol: Symbol,
        interval: Interval,
        start: int,
        end: int,
        closed_end: int,
        priority: Priority,
    ) -> tuple[list[Candle], list[Candle], _Save | None]:
        """Fetch one page: its closed candles, its open ones, and the write that stores the
        closed ones with their coverage (None when it covers nothing)."""
        candles = await self.provider.klines(symbol, interval, start, end, priority=priority)
        still_open = [c for c in candles if not c.closed]
        cover_end = min(end, closed_end)
        if still_open:
            # The exchange's clock says this candle is not final yet: cover only up to it.
            cover_end = min(cover_end, still_open[0].open_time)
        if start >= cover_end:
            return [], still_open, None
        stored = [c for c in candles if c.closed and c.open_time < cover_end]
        save = (symbol, interval, start, cover_end, stored, self.provider.now_ms())
        return stored, still_open, save


@dataclass(frozen=True, slots=True)
class _Claim:
    key: tuple[str, Interval]
    start: int
    end: int
    done: asyncio.Event


_Save = tuple[Symbol, Interval, int, int, list[Candle], int]


def _open_time(candle: Candle) -> int:
    return candle.open_time
