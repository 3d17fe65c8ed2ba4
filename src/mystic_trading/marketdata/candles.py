"""Candle ranges: closed candles from the store, only the gaps from the exchange.

A window splits at the open candle. Its closed part is read from the store after the gaps of
the coverage map are fetched, in pages of the exchange's size, concurrently (the throttler
orders them); every page's final candles are saved together with its coverage in one
transaction, so a range the exchange returned empty (before listing, downtime) is known
empty and never asked again, and a crash never leaves a range marked covered without its
candles. Coverage reaches only as far as the exchange's clock had certainly passed when the
page left (``KlinePage.final_end``), so no candle that exists is recorded as missing and none
that may still change is stored; every candle a page returned is in the answer. The open candle is
fetched every time it is needed (it changes) and never stored; when a gap ends where the
open candle starts, the last page is stretched to carry it, saving a call.

Fills of one series that overlap are serialized, so two overlapping windows asked at once do
not fetch the same gap twice: the second finds it covered. Fills that do not overlap run side
by side: a backtest filling last month never holds up the live "last 100 candles" (a
per-series lock did: 20 s medians under load in bench/marketdata.py).

**Cold history asked piecemeal.** For the ``backfill`` recommendation (monitor/_recommend.py)
the filler counts the pages of *closed* history it fetched for callers (interactive
priority; a backfill's own pages are background and not counted), per series, and the pages
it fetched again although an earlier fetch of exactly that range was complete (final to its
end: it should have been stored; a lost write, or a store the process does not keep). Many
callers each paying an upstream page of the same series' past, in their own time and at
interactive priority, is what one background backfill saves. ``history_stats()`` gives the
counters (totals since start, the busiest series first).
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from mystic_trading.marketdata.answer import Layer, Part
from mystic_trading.marketdata.window import Window
from mystic_trading.models import Candle, Interval, Symbol
from mystic_trading.providers.base import Provider
from mystic_trading.store import RangeWrite, Store
from mystic_trading.throttle import Priority

__all__ = ["CandleFiller", "Filled", "pages"]

log = logging.getLogger("mystic_trading.marketdata")

Range = tuple[int, int]

# Candles that may wait in the write-behind queue (they are also the answers just cached in
# memory, so they cost little more); beyond it a fill waits for room before it answers, so a
# store slower than the exchange for long slows the callers down instead of piling candles
# up. Sized for bursts: the benchmark's first 20 s fetch 700,000 candles of past days.
MAX_PENDING_ROWS = 250_000
# Candles written in one transaction at most (about 0.1 s of SQLite work): a batch holds its
# windows' claims until it commits.
MAX_BATCH_ROWS = 20_000
# Complete history pages remembered to notice one fetched again, and series counted (the
# least recently fetched are forgotten first), so the counters stay bounded in a process
# that reads thousands of series; the series with most pages are shown.
SEEN_PAGES = 4096
SERIES_COUNTED = 1024
SERIES_SHOWN = 5


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


class Filled(NamedTuple):
    """A filled window: its candles, the upstream pages it took, and where each range of it
    was read (the store's covered ranges, the pages'), in order."""

    candles: list[Candle]
    pages: int
    parts: tuple[Part, ...]


def parts_of(start: int, closed_end: int, fetched: Sequence[Range]) -> tuple[Part, ...]:
    """``[start, closed_end)`` read from the store but for the ``fetched`` pages (which may
    reach past it: the candle open now), as parts in order, adjacent ones of a layer joined.
    Nothing past ``closed_end`` that no page fetched was read from anywhere: no part."""
    out: list[Part] = []

    def add(s: int, e: int, layer: Layer) -> None:
        if e <= s:
            return
        if out and out[-1].layer is layer and out[-1].end == s:
            out[-1] = Part(out[-1].start, e, layer)
        else:
            out.append(Part(s, e, layer))

    at = start
    for s, e in sorted(fetched):
        add(at, min(s, closed_end), Layer.STORE)
        add(max(s, start), e, Layer.UPSTREAM)
        at = max(at, e)
    add(at, closed_end, Layer.STORE)
    return tuple(out)


class CandleFiller:
    """Serves candle windows from the store, fetching only what it lacks."""

    def __init__(
        self, provider: Provider, store: Store, *, max_pending_rows: int = MAX_PENDING_ROWS
    ) -> None:
        self.provider = provider
        self.store = store
        self.max_pending_rows = max_pending_rows
        self.pending_peak = 0  # the most candles ever waiting to be written at once
        self.pages_fetched = 0
        self._busy: dict[tuple[str, Interval], list[_Claim]] = {}
        self._queued: collections.deque[tuple[list[RangeWrite], _Claim]] = collections.deque()
        self._writing = 0  # windows in the batch being written now
        self.pending_rows = 0  # candles queued or being written
        self._writer: asyncio.Task[None] | None = None
        self._room = asyncio.Event()  # set, and replaced, each time a batch is written
        self._closed = False  # once closing, fills write their own pages
        # Cold history fetched for callers (see the module docstring).
        self.history_pages = 0
        self.refetched_pages = 0
        self._series_pages: collections.OrderedDict[str, int] = collections.OrderedDict()
        self._complete: collections.OrderedDict[tuple[str, str, int, int], None] = (
            collections.OrderedDict()
        )

    def history_stats(self) -> dict[str, object]:
        """Closed-history pages fetched for callers since start, pages fetched again although
        complete before, and the series with most pages (``"BTCUSDT 1m"``: pages)."""
        busiest = sorted(self._series_pages.items(), key=lambda kv: -kv[1])[:SERIES_SHOWN]
        return {
            "history_pages": self.history_pages,
            "refetched_pages": self.refetched_pages,
            "series": dict(busiest),
        }

    def _count_history(
        self, symbol: Symbol, interval: Interval, fetched: list[tuple[Range, bool]]
    ) -> None:
        """Count closed-history pages fetched for a caller: ``fetched`` holds each page's
        range and whether its answer was complete (final to its end)."""
        series = f"{symbol.exchange} {interval.value}"
        self.history_pages += len(fetched)
        self._series_pages[series] = self._series_pages.pop(series, 0) + len(fetched)
        while len(self._series_pages) > SERIES_COUNTED:
            self._series_pages.popitem(last=False)
        for (start, end), complete in fetched:
            key = (symbol.exchange, interval.value, start, end)
            if key in self._complete:
                self.refetched_pages += 1
                self._complete.move_to_end(key)
            elif complete:
                self._complete[key] = None
                while len(self._complete) > SEEN_PAGES:
                    self._complete.popitem(last=False)

    async def flush(self) -> None:
        """Wait for the pages still being written to the store."""
        while self._queued or self._writing:
            self._start_writer()
            assert self._writer is not None
            await asyncio.shield(self._writer)

    async def aclose(self) -> None:
        """Write what is queued; fills still running write their own pages from now on."""
        self._closed = True
        await self.flush()

    def _start_writer(self) -> None:
        if self._queued and (self._writer is None or self._writer.done()):
            self._writer = asyncio.ensure_future(self._drain())

    def _write_behind(self, saves: list[RangeWrite], claim: _Claim) -> None:
        self._queued.append((saves, claim))
        self.pending_rows += sum(len(w.candles) for w in saves)
        self.pending_peak = max(self.pending_peak, self.pending_rows)
        self._start_writer()

    async def _drain(self) -> None:
        """Write the queued windows, as many as fit in one batch per transaction, releasing
        each window's claim once it is written (or its write failed). Cancelled, it gives up
        every window still queued, so no claim is left held and no fill waits for room."""
        while self._queued:
            batch = [self._queued.popleft()]
            rows = sum(len(w.candles) for w in batch[0][0])
            while self._queued and rows < MAX_BATCH_ROWS:
                batch.append(self._queued.popleft())
                rows += sum(len(w.candles) for w in batch[-1][0])
            self._writing = len(batch)
            try:
                writes = [w for saves, _ in batch for w in saves]
                await self.store.candles.save_ranges(self.provider.venue, writes)
            except Exception as exc:  # the ranges stay uncovered: fetched again next time
                log.warning(
                    "could not store %d fetched candle ranges (%r); they will be fetched again",
                    len(batch),
                    exc,
                )
            except BaseException:  # cancelled: give up the rest of the queue too
                batch.extend(self._queued)
                rows += sum(len(w.candles) for saves, _ in self._queued for w in saves)
                self._queued.clear()
                raise
            finally:
                self._writing = 0
                self.pending_rows -= rows
                for _, claim in batch:
                    self._release(claim)
                self._room.set()
                self._room = asyncio.Event()

    async def _claim(self, window: Window) -> _Claim:
        """Hold [start, end) of the window's series; wait out in-flight fills it overlaps."""
        key = (window.symbol.exchange, window.interval)
        start, end = window.start, window.end
        while True:
            busy = self._busy.setdefault(key, [])
            overlapping = [c.done for c in busy if c.start < end and start < c.end]
            if not overlapping:
                break
            self._start_writer()  # a claim held by a queued write ends when the queue drains
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
    ) -> Filled:
        """The candles of ``window``, how many upstream pages it took and where each of its
        ranges was read (:func:`parts_of`).

        The answer is the covered part read from the store plus the gaps' pages as they
        arrived; the pages go to a write-behind queue that one task drains, many windows to
        a transaction (with ``max_pending_rows`` candles queued, a fill waits for room).
        ``wait_for_store`` (a backfill), or a filler that is closing, writes them before
        answering instead, and a failed write raises.
        The window stays claimed until it is written, so an overlapping request finds it
        covered instead of fetching it again. Answers that waited for the store's one write
        queue, a transaction each, took 4 s medians in bench/marketdata.py.
        """
        iv, sym = window.interval, window.symbol
        venue = self.provider.venue
        open_start = iv.floor(now)
        closed_end = max(window.start, min(window.end, open_start))
        # The candle open now, when the window holds it (a window wholly in the future
        # holds nothing, and gets nothing: never today's candle).
        want_open = window.start <= open_start < window.end
        claim = await self._claim(window)
        deferred = False
        try:
            gaps: list[Range] = []
            if window.start < closed_end:
                gaps = await self.store.candles.gaps(venue, sym, iv, window.start, closed_end)
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
                *(self._page(sym, iv, s, e, priority) for s, e in todo),
                return_exceptions=True,
            )
            self.pages_fetched += len(todo)
            if priority is Priority.INTERACTIVE:
                history = [
                    ((s, e), not isinstance(r, BaseException) and _complete(r[1], e))
                    for (s, e), r in zip(todo, results, strict=True)
                    if e <= open_start
                ]
                if history:
                    self._count_history(sym, iv, history)
            fetched: list[Candle] = []
            saves: list[RangeWrite] = []
            failure: BaseException | None = None
            for result in results:
                if isinstance(result, BaseException):
                    failure = failure or result
                    continue
                fetched.extend(result[0])
                if result[1] is not None:
                    saves.append(result[1])
            # The venue as the answers named it (an unconfirmed one is named by the first).
            venue = self.provider.venue
            if saves and (wait_for_store or self._closed):  # written before the answer
                await self.store.candles.save_ranges(venue, saves)
            elif saves:  # pages that arrived are kept even if another failed
                while self.pending_rows >= self.max_pending_rows:
                    self._start_writer()
                    await self._room.wait()  # the store is behind: wait for it
                self._write_behind(saves, claim)
                deferred = True
            if failure is not None:
                raise failure
            # Every fetched candle of the window is in the answer, final or not: one that
            # closed while its page was in flight is there (not final yet: closed=False),
            # not lost between "closed part" and "open candle" (review M2).
            answer = {c.open_time: c for c in fetched if window.start <= c.open_time < window.end}
            if window.start < closed_end and gaps != [(window.start, closed_end)]:
                # The part already covered comes from the store; the gaps from the pages just
                # fetched (disjoint from it, but a fetched candle wins if a direct upsert left
                # one in a gap).
                stored = await self.store.candles.range(venue, sym, iv, window.start, closed_end)
                answer = {c.open_time: c for c in stored} | answer
            candles = sorted(answer.values(), key=_open_time)
        finally:
            if not deferred:
                self._release(claim)
        return Filled(candles, len(todo), parts_of(window.start, closed_end, todo))

    async def _page(
        self,
        symbol: Symbol,
        interval: Interval,
        start: int,
        end: int,
        priority: Priority,
    ) -> tuple[list[Candle], RangeWrite | None]:
        """Fetch one page: all its candles, and the write that stores its final ones with
        their coverage (None when it covers nothing).

        Coverage, including a known-empty range, reaches only as far as the exchange's own
        clock had certainly passed (``KlinePage.final_end``): a page answered short because
        the exchange had not got there yet, or because our estimate of its clock ran ahead
        (a clock step, a slow answer), records nothing past what it proves.
        """
        page = await self.provider.klines(symbol, interval, start, end, priority=priority)
        cover_end = min(end, page.final_end)
        if start >= cover_end:
            return page.candles, None
        final = [c for c in page.candles if c.closed and c.open_time < cover_end]
        return page.candles, RangeWrite(
            symbol, interval, start, cover_end, final, self.provider.now_ms()
        )


@dataclass(frozen=True, slots=True)
class _Claim:
    key: tuple[str, Interval]
    start: int
    end: int
    done: asyncio.Event


def _complete(write: RangeWrite | None, end: int) -> bool:
    """Whether a page's write covers it to its end (so it should never be fetched again)."""
    return write is not None and write.end >= end


def _open_time(candle: Candle) -> int:
    return candle.open_time
