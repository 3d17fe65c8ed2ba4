"""MarketDataSync: the same facade for scripts and notebooks that do not run an event loop.

One background thread owns an event loop and the MarketData; every method hands its
coroutine to that loop and blocks for the answer. Safe to call from several threads.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Coroutine, Iterable, Iterator
from concurrent.futures import Future
from typing import Any, TypeVar

from mystic_trading.config import Settings
from mystic_trading.marketdata.answer import Answer
from mystic_trading.marketdata.bulk import Progress
from mystic_trading.marketdata.facade import MarketData
from mystic_trading.marketdata.window import Moment
from mystic_trading.models import Candle, Interval, OrderBook, Symbol, Ticker

__all__ = ["MarketDataSync"]

T = TypeVar("T")


class MarketDataSync:
    """``with MarketDataSync(settings) as md: md.ticker("BTC/USDT")``."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._md: MarketData | None = None
        self._cm: Any = None

    def __enter__(self) -> MarketDataSync:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="mystic-marketdata", daemon=True
        )
        self._thread.start()
        self._cm = MarketData.open(self._settings)
        try:
            self._md = self._run(self._cm.__aenter__())
        except BaseException:
            self._stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every layer and stop the loop's thread."""
        if self._md is not None:
            self._md = None
            self._run(self._cm.__aexit__(None, None, None))
        self._stop()

    def _stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if thread.is_alive():
            loop.call_soon_threadsafe(loop.stop)
            thread.join()
        if not loop.is_closed():
            loop.close()
        self._loop = self._thread = None

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._loop is None:
            coro.close()
            raise RuntimeError("MarketDataSync is not open: use it in a `with` block")
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result()

    @property
    def md(self) -> MarketData:
        if self._md is None:
            raise RuntimeError("MarketDataSync is not open: use it in a `with` block")
        return self._md

    def ticker(self, symbol: str | Symbol) -> Answer[Ticker]:
        return self._run(self.md.ticker(symbol))

    def tickers(self, symbols: Iterable[str | Symbol]) -> list[Answer[Ticker]]:
        return self._run(self.md.tickers(list(symbols)))

    def candles(
        self,
        symbol: str | Symbol,
        interval: str | Interval,
        start: Moment | None = None,
        end: Moment | None = None,
        limit: int | None = None,
        *,
        allow_large: bool = False,
    ) -> Answer[list[Candle]]:
        return self._run(
            self.md.candles(symbol, interval, start, end, limit, allow_large=allow_large)
        )

    def candle_chunks(
        self,
        symbol: str | Symbol,
        interval: str | Interval,
        start: Moment | None = None,
        end: Moment | None = None,
        limit: int | None = None,
        *,
        allow_large: bool = False,
        chunk_pages: int = 10,
        progress: Progress | None = None,
    ) -> Iterator[Answer[list[Candle]]]:
        """``MarketData.candle_chunks``: a long window a stored chunk at a time; the next
        chunk is fetched when the loop asks for it."""
        chunks = self.md.candle_chunks(
            symbol,
            interval,
            start,
            end,
            limit,
            allow_large=allow_large,
            chunk_pages=chunk_pages,
            progress=progress,
        )
        try:
            while True:
                try:
                    yield self._run(_next(chunks))
                except StopAsyncIteration:
                    return
        finally:
            if self._loop is not None:
                self._run(chunks.aclose())

    def order_book(self, symbol: str | Symbol, depth: int = 100) -> Answer[OrderBook]:
        return self._run(self.md.order_book(symbol, depth))

    def stats(self) -> dict[str, Any]:
        return self._run(_call(self.md.stats))


async def _call(fn: Any) -> Any:
    return fn()


async def _next(chunks: AsyncIterator[T]) -> T:
    return await anext(chunks)
