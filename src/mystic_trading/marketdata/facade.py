"""MarketData: one facade over memory, Redis, the store and the exchange.

``async with MarketData.open(settings) as md:`` builds every layer from settings; the
constructor takes them ready-made (tests and embedders). Each read goes to the closest layer
that holds a correct answer (ARCHITECTURE.md, "The path of one request"):

- L1 memory: a fresh entry is returned on the spot. The ticker hit path is a couple of dict
  lookups and a clock read, with no allocation.
- Past its freshness, an entry is still served for one more TTL, marked stale, while one
  background refresh runs (stale-while-revalidate).
- L2 Redis, then the upstream through single flight: identical concurrent misses share one
  call, shielded from any one caller's cancellation.
- When the upstream fails (down, rate limited, banned, queue full), the last good value is
  served marked stale if it is younger than ``cache.stale_if_error_s``: from memory, else the
  store's latest snapshot.
- Symbols are checked against the exchange's listing before any quota is spent; one the
  exchange rejects is remembered for ``cache.negative_ttl_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Hashable, Iterable
from typing import Any, TypeVar

from mystic_trading.config import CacheSettings, Settings
from mystic_trading.errors import (
    DataError,
    MysticError,
    ThrottleError,
    UnknownSymbol,
    UpstreamError,
)
from mystic_trading.marketdata.answer import Answer, Layer
from mystic_trading.marketdata.candles import CandleFiller
from mystic_trading.marketdata.codec import estimate_size
from mystic_trading.marketdata.memory import MemoryCache
from mystic_trading.marketdata.redis_layer import RedisLayer
from mystic_trading.marketdata.singleflight import SingleFlight
from mystic_trading.marketdata.stats import HIT_SAMPLE_EVERY, MarketDataStats
from mystic_trading.marketdata.symbols import SymbolBook
from mystic_trading.marketdata.window import Moment, Window, candle_window
from mystic_trading.models import Candle, Interval, OrderBook, Symbol, Ticker
from mystic_trading.providers.base import Provider
from mystic_trading.providers.binance_parse import ExchangeInfo
from mystic_trading.store import Store
from mystic_trading.throttle import Priority, Throttler

__all__ = ["MarketData"]

log = logging.getLogger(__name__)

T = TypeVar("T")
_FAILURES = (UpstreamError, ThrottleError)
_MAX_DEPTH = 5000
SNAPSHOT_EVERY_S = 5.0


class MarketData:
    """Tickers, candles and order books from the closest layer that has them."""

    def __init__(
        self,
        provider: Provider,
        store: Store,
        *,
        cache: CacheSettings | None = None,
        redis: RedisLayer | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.provider = provider
        self.throttler: Throttler = provider.throttler
        self.store = store
        self.cache = cache or CacheSettings()
        self.redis = redis
        self.clock = clock
        self.memory = MemoryCache(
            self.cache.memory_max_entries, int(self.cache.memory_max_mib * 2**20), clock
        )
        self._l1 = self.memory.data  # the hot path reads the dict directly
        self.filler = CandleFiller(provider, store)
        self._flight: SingleFlight[Answer[Any]] = SingleFlight()
        self.stats_ = MarketDataStats()
        self._ticker_keys: dict[str | Symbol, str] = {}
        self._snapshot_at: dict[str, float] = {}
        self.symbols = SymbolBook(
            provider,
            negative_ttl_s=self.cache.negative_ttl_s,
            clock=clock,
            on_reload=self._ticker_keys.clear,
        )
        self._background: set[asyncio.Task[Any]] = set()
        self._closed = False

    # -- life cycle -------------------------------------------------------------------------

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, settings: Settings) -> AsyncIterator[MarketData]:
        """Build every layer from ``settings``; close them all on exit."""
        from mystic_trading.marketdata.assembly import assemble

        async with assemble(settings) as md:
            yield md

    async def aclose(self) -> None:
        """Finish background refreshes; the layers themselves belong to whoever opened them."""
        self._closed = True
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        if self._closed:
            coro.close()
            return
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        task.add_done_callback(_log_failure)

    # -- symbols ----------------------------------------------------------------------------

    async def exchange_info(self, *, refresh: bool = False) -> ExchangeInfo:
        """The exchange's symbols and limits, fetched once an hour (weight 20)."""
        return await self.symbols.info(refresh=refresh)

    async def symbol(self, name: str | Symbol) -> Symbol:
        """``name`` as a listed Symbol; InvalidSymbol or UnknownSymbol spend no quota."""
        return await self.symbols.resolve(name)

    # -- the layered read -------------------------------------------------------------------

    async def _layered(
        self,
        kind: str,
        key: str,
        ttl_s: float,
        fetch: Callable[[], Awaitable[Answer[Any]]],
        fallback: Callable[[], Awaitable[Answer[Any] | None]] | None = None,
    ) -> Answer[Any]:
        """Serve ``key`` from memory, Redis or ``fetch()``; see the module docstring."""
        started = time.perf_counter()
        now = self.clock()
        entry = self.memory.get(key)
        if entry is not None:
            if entry.fresh_until > now:
                self.stats_.answered(kind, Layer.MEMORY, time.perf_counter() - started, False)
                return entry.answer  # type: ignore[no-any-return]
            if now < entry.fresh_until + ttl_s:
                # Stale-while-revalidate: one refresh in the background, the stale value now.
                if not self._flight.in_flight(key):
                    self._spawn(self._refresh(kind, key, ttl_s, fetch))
                answer = entry.answer
                self.stats_.answered(kind, Layer.MEMORY, time.perf_counter() - started, True)
                return Answer(answer.value, Layer.MEMORY, answer.fetched_at, stale=True)
        if self.redis is not None:
            cached = await self.redis.get(key)
            if cached is not None and _age_s(cached) < ttl_s:
                self._remember(key, cached, ttl_s - _age_s(cached), to_redis=False)
                self.stats_.answered(kind, Layer.REDIS, time.perf_counter() - started, False)
                return cached
        joined = self._flight.in_flight(key)
        try:
            answer = await self._flight.do(key, lambda: self._fetch(key, ttl_s, fetch))
        except _FAILURES as exc:
            stale = await self._stale(kind, key, entry, fallback)
            if stale is None:
                self.stats_.errors[kind] += 1
                raise
            log.info("serving stale %s for %s: %s", kind, key, exc)
            self.stats_.answered(kind, stale.layer, time.perf_counter() - started, True)
            return stale
        if joined:
            self.stats_.coalesced[kind] += 1
        self.stats_.answered(kind, answer.layer, time.perf_counter() - started, False)
        return answer

    async def _fetch(
        self, key: str, ttl_s: float, fetch: Callable[[], Awaitable[Answer[Any]]]
    ) -> Answer[Any]:
        answer = await fetch()
        self._remember(key, answer, ttl_s, to_redis=True)
        return answer

    async def _refresh(
        self, kind: str, key: str, ttl_s: float, fetch: Callable[[], Awaitable[Answer[Any]]]
    ) -> None:
        with contextlib.suppress(MysticError):
            await self._flight.do(key, lambda: self._fetch(key, ttl_s, fetch))

    def _remember(self, key: str, answer: Answer[Any], ttl_s: float, *, to_redis: bool) -> None:
        in_memory = Answer(answer.value, Layer.MEMORY, answer.fetched_at)
        self.memory.set(
            key, in_memory, ttl_s, ttl_s + self.cache.stale_if_error_s, estimate_size(answer.value)
        )
        if to_redis and self.redis is not None:
            self._spawn(self.redis.set(key, answer, ttl_s + self.cache.stale_if_error_s))

    async def _stale(
        self,
        kind: str,
        key: str,
        entry: Any,
        fallback: Callable[[], Awaitable[Answer[Any] | None]] | None,
    ) -> Answer[Any] | None:
        """The last good value younger than stale_if_error_s, marked stale, or None."""
        limit_ms = self.cache.stale_if_error_s * 1000
        entry = self.memory.get(key) or entry
        if entry is not None and entry.answer.age_ms <= limit_ms:
            a = entry.answer
            return Answer(a.value, Layer.MEMORY, a.fetched_at, stale=True)
        if fallback is not None:
            with contextlib.suppress(MysticError):
                found = await fallback()
                if found is not None and found.age_ms <= limit_ms:
                    return Answer(found.value, found.layer, found.fetched_at, stale=True)
        return None

    def _snapshot_due(self, key: str) -> bool:
        """Whether to write this key's latest snapshot to the store now.

        Snapshots exist for stale-if-error after a restart, which serves values up to
        ``stale_if_error_s`` old, so one write per key every ``SNAPSHOT_EVERY_S`` is plenty;
        writing every fetch (several per second per symbol) only queues up the store.
        """
        now = self.clock()
        if now - self._snapshot_at.get(key, -SNAPSHOT_EVERY_S) < SNAPSHOT_EVERY_S:
            return False
        self._snapshot_at[key] = now
        return True

    # -- tickers ----------------------------------------------------------------------------

    async def ticker(self, symbol: str | Symbol) -> Answer[Ticker]:
        """The latest ticker (last price, 24h statistics, best bid and ask)."""
        key = self._ticker_keys.get(symbol)
        if key is not None:
            entry = self._l1.get(key)
            if entry is not None and entry.fresh_until > self.clock():
                stats = self.stats_
                stats.requests["ticker"] += 1
                hits = stats.hits["ticker"]
                hits[Layer.MEMORY] += 1
                if not hits[Layer.MEMORY] % HIT_SAMPLE_EVERY:
                    self._sample_hit(key)
                return entry.answer  # type: ignore[no-any-return]
        return await self._ticker_slow(symbol)

    def _sample_hit(self, key: str) -> None:
        started = time.perf_counter()
        entry = self._l1.get(key)
        if entry is not None and entry.fresh_until > self.clock():
            self.stats_.latency[("ticker", Layer.MEMORY)].add(time.perf_counter() - started)

    async def _ticker_slow(self, symbol: str | Symbol) -> Answer[Ticker]:
        sym = await self.symbol(symbol)
        key = "t|" + sym.exchange
        self._ticker_keys[symbol] = key
        name = self.provider.name

        async def fetch() -> Answer[Any]:
            try:
                ticker = await self.provider.ticker(sym)
            except UnknownSymbol:
                self.symbols.remember_unknown(sym)
                raise
            fetched_at = self.provider.now_ms()
            if self._snapshot_due(key):
                self._spawn(self.store.snapshots.save_ticker(name, ticker, fetched_at=fetched_at))
            return Answer(ticker, Layer.UPSTREAM, fetched_at)

        async def fallback() -> Answer[Any] | None:
            stored = await self.store.snapshots.load_ticker(name, sym)
            return None if stored is None else Answer(stored.value, Layer.STORE, stored.fetched_at)

        return await self._layered("ticker", key, self.cache.ticker_ttl_s, fetch, fallback)

    async def tickers(self, symbols: Iterable[str | Symbol]) -> list[Answer[Ticker]]:
        """Several tickers; the ones not in memory are fetched together where possible."""
        return list(await asyncio.gather(*(self.ticker(s) for s in symbols)))

    # -- order books ------------------------------------------------------------------------

    async def order_book(self, symbol: str | Symbol, depth: int = 100) -> Answer[OrderBook]:
        """An order-book snapshot, ``depth`` levels a side (1 to 5000)."""
        if isinstance(depth, bool) or not 1 <= depth <= _MAX_DEPTH:
            raise DataError(f"depth must be 1 to {_MAX_DEPTH} levels, got {depth!r}")
        sym = await self.symbol(symbol)
        key = f"b|{sym.exchange}|{depth}"
        name = self.provider.name

        async def fetch() -> Answer[Any]:
            book = await self.provider.depth(sym, depth)
            fetched_at = self.provider.now_ms()
            if self._snapshot_due(key):
                self._spawn(self.store.snapshots.save_book(name, book, fetched_at=fetched_at))
            return Answer(book, Layer.UPSTREAM, fetched_at)

        async def fallback() -> Answer[Any] | None:
            stored = await self.store.snapshots.load_book(name, sym)
            if stored is None or len(stored.value.bids) < depth:
                return None
            return Answer(stored.value, Layer.STORE, stored.fetched_at)

        return await self._layered("book", key, self.cache.book_ttl_s, fetch, fallback)

    # -- candles ----------------------------------------------------------------------------

    async def candles(
        self,
        symbol: str | Symbol,
        interval: str | Interval,
        start: Moment | None = None,
        end: Moment | None = None,
        limit: int | None = None,
        *,
        allow_large: bool = False,
        priority: Priority = Priority.INTERACTIVE,
    ) -> Answer[list[Candle]]:
        """Candles opening in [start, end) (see ``window.candle_window`` for the rules).

        Closed candles come from the store and are fetched from the exchange once, ever; the
        candle open now is fetched while fresh and never stored.
        """
        iv = Interval.parse(interval)
        sym = await self.symbol(symbol)
        now = self.provider.now_ms()
        window = candle_window(sym, iv, now, start, end, limit, allow_large=allow_large)
        key = f"c|{sym.exchange}|{iv.value}|{window.start}|{window.end}"
        open_start = iv.floor(now)
        if window.end <= open_start:
            ttl = self.cache.closed_candle_ttl_s
        else:
            to_close = (iv.next_open(open_start) - now) / 1000
            ttl = max(0.05, min(self.cache.ticker_ttl_s, to_close))

        async def fetch() -> Answer[Any]:
            try:
                candles, pages = await self.filler.fill(window, now, priority)
            except UnknownSymbol:
                self.symbols.remember_unknown(sym)
                raise
            layer = Layer.UPSTREAM if pages else Layer.STORE
            return Answer(candles, layer, self.provider.now_ms())

        return await self._layered("candles", key, ttl, fetch)

    async def backfill(
        self,
        symbol: str | Symbol,
        interval: str | Interval,
        start: Moment,
        end: Moment | None = None,
        *,
        chunk_pages: int = 10,
        progress: Callable[[int, int], None] | None = None,
    ) -> int:
        """Store every closed candle of [start, end) (end: now), at background priority.

        Resumable and idempotent: only the coverage map's gaps are fetched, so a second run,
        or a run after an interruption, fetches only what is missing. ``progress(done,
        total)`` is called in candles after each chunk of ``chunk_pages`` pages. Returns the
        number of upstream pages fetched. Nothing is put in the memory cache.
        """
        iv = Interval.parse(interval)
        sym = await self.symbol(symbol)
        now = self.provider.now_ms()
        window = candle_window(sym, iv, now, start, end, allow_large=True)
        closed_end = min(window.end, iv.floor(now))
        total = iv.count_between(window.start, closed_end)
        step = chunk_pages * self.provider.page_limit
        fetched = 0
        done = 0
        t = window.start
        while t < closed_end:
            chunk_end = min(closed_end, iv.shift(t, step))
            chunk = Window(sym, iv, t, chunk_end)
            _, pages = await self.filler.fill(chunk, now, Priority.BACKGROUND)
            fetched += pages
            done += chunk.count
            if progress is not None:
                progress(done, total)
            t = chunk_end
        return fetched

    # -- stats and control ------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Plain data: per-layer hits, coalesced, stale, upstream calls and weight, latency,
        the headline figures, and the memory, Redis, throttle and store figures."""
        data = self.stats_.snapshot(
            self.provider.calls, self.provider.weight, self.symbols.negative_hits
        )
        data["coalesced_total"] = self._flight.joined
        data["memory"] = {
            "entries": len(self.memory),
            "bytes": self.memory.bytes,
            "evictions": self.memory.evictions,
        }
        data["redis"] = None if self.redis is None else self.redis.stats()
        data["candle_pages_fetched"] = self.filler.pages_fetched
        data["throttle"] = self.throttler.stats()
        data["store"] = self.store.stats()
        return data

    async def clear(self, symbol: str | Symbol | None = None, *, redis: bool = True) -> int:
        """Forget cached answers (all, or one symbol's) in memory and Redis; the store's closed
        candles stay (they never change). Returns how many memory entries were dropped."""
        if symbol is None:
            dropped = self.memory.clear()
            pattern = "*"
        else:
            exchange = Symbol.parse(symbol).exchange
            dropped = self.memory.clear(lambda k: _key_symbol(k) == exchange)
            pattern = f"?|{exchange}*"
        if redis and self.redis is not None:
            await self.redis.clear(pattern)
        self.symbols.forget_unknown()
        return dropped


def _key_symbol(key: Hashable) -> str:
    return str(key).split("|", 2)[1] if isinstance(key, str) and "|" in key else ""


def _age_s(answer: Answer[Any]) -> float:
    return answer.age_ms / 1000


def _log_failure(task: asyncio.Task[Any]) -> None:
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        log.warning("background task failed: %r", exc)
