"""Bulk candle work: a long window walked a chunk of pages at a time, in bounded memory.

``MarketData.backfill`` and ``MarketData.candle_chunks`` (``mystic candles`` over a long
range) walk a window the same way, through :func:`walk`: ``chunk_pages`` pages at a time
(the throttler orders a chunk's pages), at background priority, each chunk written to the
store before it is handed on and the next one fetched. Whatever the window's length, a walk
holds one chunk: two years of 1m candles asked at once held all 1,051,200 of them, 2.7 GB,
and the last of its 1,052 concurrent pages ran out the throttle deadline in the queue
(new-user D3).

A window that starts before the exchange's history (before the symbol's listing, before the
venue's first candle) costs what the exchange answers, not a page per empty stretch: when
the window's first page comes back empty, one more request asks for the oldest candles after
it (Binance's klines with ``startTime`` answer the oldest candles from that time on). The
range before the first of them is stored as known empty and skipped; when there is none, the
walk is over. "The last 1,000,000 hours" of a symbol listed last month reaches back to 1970:
that is four requests, not 500 (faults 4).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable

from mystic_trading.errors import DataError
from mystic_trading.marketdata.candles import CandleFiller, Filled
from mystic_trading.marketdata.window import Window
from mystic_trading.throttle import Priority

__all__ = ["MAX_CHUNK_PAGES", "Progress", "check_chunk_pages", "walk"]

MAX_CHUNK_PAGES = 1000
Progress = Callable[[int, int], None]


def check_chunk_pages(chunk_pages: object) -> int:
    """``chunk_pages`` as an int from 1 to 1000; else DataError."""
    if (
        isinstance(chunk_pages, bool)
        or not isinstance(chunk_pages, int)
        or not (1 <= chunk_pages <= MAX_CHUNK_PAGES)
    ):
        raise DataError(
            f"chunk_pages must be a whole number from 1 to {MAX_CHUNK_PAGES}, got {chunk_pages!r}"
        )
    return chunk_pages


async def walk(
    filler: CandleFiller,
    window: Window,
    now: int,
    *,
    chunk_pages: int,
    progress: Progress | None = None,
) -> AsyncGenerator[Filled, None]:
    """The candles of ``window``, oldest first, a chunk at a time, each with the number of
    upstream requests it took and its parts; every chunk is stored before it is yielded.

    ``now`` is the exchange's clock when the window was laid: candles it had not closed are
    fetched but not stored, as ``CandleFiller.fill`` does. ``progress(done, total)`` is
    called in candles after each chunk. Chunks may be empty.
    """
    iv, sym = window.interval, window.symbol
    size = filler.provider.page_limit
    step = chunk_pages * size
    t = window.start

    def report() -> None:
        if progress is not None:
            progress(iv.count_between(window.start, t), window.count)

    unknown_end = await _unknown_start(filler, window, now, size)
    if unknown_end is not None:
        # One page before the chunks: an empty one means nothing opens there.
        page = Window(sym, iv, t, min(window.end, iv.shift(t, size)))
        filled = await filler.fill(page, now, Priority.BACKGROUND, wait_for_store=True)
        t = page.end
        if not filled.candles and t < unknown_end:
            t = await _skip_to_history(filler, Window(sym, iv, t, unknown_end))
            filled = filled._replace(pages=filled.pages + 1)
        report()
        yield filled
    while t < window.end:
        chunk = Window(sym, iv, t, min(window.end, iv.shift(t, step)))
        filled = await filler.fill(chunk, now, Priority.BACKGROUND, wait_for_store=True)
        t = chunk.end
        report()
        yield filled


async def _unknown_start(filler: CandleFiller, window: Window, now: int, size: int) -> int | None:
    """The end of the window's first gap, when the store knows nothing of the window's start
    for more than a page (where history may not have begun yet); else None."""
    iv = window.interval
    closed_end = min(window.end, iv.floor(now))
    if iv.count_between(window.start, closed_end) <= size:
        return None
    provider = filler.provider
    gaps = await filler.store.candles.gaps(
        provider.venue, window.symbol, iv, window.start, closed_end
    )
    if not gaps or gaps[0][0] != window.start or iv.count_between(*gaps[0]) <= size:
        return None
    return gaps[0][1]


async def _skip_to_history(filler: CandleFiller, gap: Window) -> int:
    """Where the exchange's candles begin in ``gap`` (its end if they do not), one request.

    The range before is stored as known empty, as far as the exchange's clock had certainly
    passed (``KlinePage.final_end``), so it is never asked again.
    """
    provider = filler.provider
    page = await provider.klines(
        gap.symbol, gap.interval, gap.start, gap.end, priority=Priority.BACKGROUND
    )
    first = page.candles[0].open_time if page.candles else gap.end
    known = min(first, page.final_end, gap.end)
    if known <= gap.start:
        return gap.start
    await filler.store.candles.mark_covered(
        provider.venue, gap.symbol, gap.interval, gap.start, known
    )
    return known
