"""MarketData: one facade over memory, Redis, the store and the exchange.

``async with MarketData.open(settings) as md:`` builds every layer from settings; the
constructor takes them ready-made (tests and embedders). Each read goes to the closest layer
that holds a correct answer (``layered.py``; ARCHITECTURE.md, "The path of one request").
This module knows the kinds: their keys and TTLs, how each is fetched, and where its stored
fallback lies. The ticker hit path is inlined here: a dict lookup for the key, one for the
entry, a clock read, no allocation.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Hashable, Iterable
from typing import Any

from mystic_trading.config import CacheSettings, Settings
from mystic_trading.errors import ConfigError, InvalidRange, InvalidSymbol, UnknownSymbol
from mystic_trading.marketdata.answer import Answer, Layer, Part, stamp_ms
from mystic_trading.marketdata.bulk import Progress, check_chunk_pages, walk
from mystic_trading.marketdata.candles import CandleFiller
from mystic_trading.marketdata.control_watch import ControlWatch
from mystic_trading.marketdata.layered import FAILURES, Layers
from mystic_trading.marketdata.redis_layer import RedisLayer
from mystic_trading.marketdata.stats import HIT_SAMPLE_EVERY, MarketDataStats
from mystic_trading.marketdata.symbols import SymbolBook
from mystic_trading.marketdata.window import (
    Moment,
    Window,
    candle_window,
    check_depth,
    check_limit,
    check_range,
)
from mystic_trading.models import Candle, Interval, OrderBook, Symbol, Ticker, iso_from_ms
from mystic_trading.monitor import (
    AlertEngine,
    HealthChecker,
    HealthReport,
    alert_rows,
    heartbeat_figures,
)
from mystic_trading.monitor._clear import asked_layers, cache_key_patterns, exchange_form
from mystic_trading.monitor._optimize import AutoOptimizer
from mystic_trading.providers.base import Provider
from mystic_trading.providers.binance_parse import ExchangeInfo
from mystic_trading.store import Store
from mystic_trading.throttle import Priority, Throttler

__all__ = ["MarketData"]

log = logging.getLogger(__name__)

SNAPSHOT_EVERY_S = 5.0
_TICKERS_PER_CALL = 20  # /ticker/24hr symbols=[...]: weight 2 up to 20 symbols


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
        self.stats_ = MarketDataStats()
        self.layers = Layers(
            self.cache, redis, self.stats_, clock, held_back=self.throttler.held_back
        )
        self.memory = self.layers.memory
        self._l1 = self.memory.data  # the hot path reads the dict directly
        self.filler = CandleFiller(provider, store)
        self._ticker_keys: dict[str | Symbol, str] = {}
        self._snapshot_at: dict[str, float] = {}
        self.symbols = SymbolBook(
            provider,
            negative_ttl_s=self.cache.negative_ttl_s,
            clock=clock,
            on_reload=self._ticker_keys.clear,
            store=store,
        )
        # Follows the store's control log (started by whoever opens MarketData: assembly).
        # This process's health checks (set by assembly when monitor.enabled).
        self.monitor: HealthChecker | None = None
        # Set by MarketData.open (assembly.py): the alert rules its health rounds feed, and
        # this process's part in recommendations and optimize.
        self.alert_engine: AlertEngine | None = None
        self.optimizer: AutoOptimizer | None = None
        self.control = ControlWatch(
            store.control,
            venue=lambda: self.throttler.provider,
            refresh=self.throttler.refresh_control,
            drop=self._drop,
            drop_queries=self._drop_queries,
        )

    # -- life cycle -------------------------------------------------------------------------

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls, settings: Settings, *, clock: Callable[[], float] = time.monotonic
    ) -> AsyncIterator[MarketData]:
        """Build every layer from ``settings``; close them all on exit. ``clock`` (seconds,
        monotonic) times the caches' freshness: tests move it instead of sleeping."""
        from mystic_trading.marketdata.assembly import assemble

        async with assemble(settings, clock=clock) as md:
            yield md

    async def aclose(self) -> None:
        """Finish background refreshes and candle writes; the layers themselves belong to
        whoever opened them."""
        await self.control.aclose()
        await self.layers.aclose()
        await self.symbols.aclose()
        await self.filler.aclose()

    async def flush(self) -> None:
        """Wait until the background refreshes started so far are done and every candle
        already answered is written to the store (a window fetched whole is answered first
        and written in the background)."""
        await self.layers.idle()
        await self.filler.flush()

    # -- symbols ----------------------------------------------------------------------------

    async def exchange_info(self, *, refresh: bool = False) -> ExchangeInfo:
        """The exchange's symbols and limits: the copy at hand when younger than an hour
        (this process's or the store's), else fetched (weight 20); ``refresh`` fetches."""
        return await self.symbols.info(refresh=refresh)

    async def symbol(self, name: str | Symbol) -> Symbol:
        """``name`` as a listed Symbol; InvalidSymbol or UnknownSymbol spend no quota."""
        return await self.symbols.resolve(name)

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
        try:
            key = self._ticker_keys.get(symbol)
        except TypeError:  # unhashable: not a symbol at all (InvalidSymbol below)
            key = None
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

        async def fetch() -> Answer[Any]:
            try:
                ticker = await self.provider.ticker(sym)
            except UnknownSymbol:
                self.symbols.remember_unknown(sym)
                raise
            fetched_at = stamp_ms()
            if self._snapshot_due(key):  # the venue as the answer named it
                venue = self.provider.venue
                self.layers.spawn(
                    self.store.snapshots.save_ticker(venue, ticker, fetched_at=fetched_at)
                )
            return Answer(ticker, Layer.UPSTREAM, fetched_at)

        async def fallback() -> Answer[Any] | None:
            stored = await self.store.snapshots.load_ticker(self.provider.venue, sym)
            return None if stored is None else Answer(stored.value, Layer.STORE, stored.fetched_at)

        return await self.layers.read("ticker", key, self.cache.ticker_ttl_s, fetch, fallback)

    async def tickers(self, symbols: Iterable[str | Symbol]) -> list[Answer[Ticker]]:
        """Several tickers, in order. Those in neither memory nor Redis are fetched together,
        up to 20 a call (``symbols=[...]``, weight 2 in all against 2 each); if that fails,
        each goes its own way, with its own stale fallback."""
        if isinstance(symbols, str | Symbol) or not isinstance(symbols, Iterable):
            raise InvalidSymbol(
                f"tickers() takes a list of symbols, got {type(symbols).__name__} {symbols!r:.60}",
                symbol=str(symbols)[:60],
            )
        names = list(symbols)
        syms = [await self.symbol(name) for name in names]
        now = self.clock()
        cold = []
        for sym in dict.fromkeys(syms):
            key = "t|" + sym.exchange
            entry = self._l1.get(key)
            if (entry is None or entry.fresh_until <= now) and not self.layers.flight.in_flight(
                key
            ):
                cold.append(sym)
        fetched: dict[Symbol, Answer[Ticker]] = {}
        if self.redis is not None and len(cold) > 1:
            ttl = self.cache.ticker_ttl_s
            cold = [s for s in cold if not await self.layers.from_redis("t|" + s.exchange, ttl)]
        if len(cold) > 1:
            fetched = await self._fetch_tickers(cold)
        answers: list[Answer[Ticker]] = []
        for name, sym in zip(names, syms, strict=True):
            answer = fetched.get(sym)
            if answer is None:
                answers.append(await self.ticker(name))
            else:
                self.stats_.answered("ticker", Layer.UPSTREAM, None, False)
                answers.append(answer)
        return answers

    async def _fetch_tickers(self, cold: list[Symbol]) -> dict[Symbol, Answer[Ticker]]:
        out: dict[Symbol, Answer[Ticker]] = {}
        for i in range(0, len(cold), _TICKERS_PER_CALL):
            chunk = cold[i : i + _TICKERS_PER_CALL]
            try:
                tickers = await self.provider.tickers(chunk)
            except FAILURES as exc:
                log.info("batched tickers failed (%s); fetching one by one", exc)
                break
            fetched_at = stamp_ms()
            for ticker in tickers:
                key = "t|" + ticker.symbol.exchange
                answer = Answer(ticker, Layer.UPSTREAM, fetched_at)
                self.layers.remember(key, answer, self.cache.ticker_ttl_s, to_redis=True)
                if self._snapshot_due(key):
                    self.layers.spawn(
                        self.store.snapshots.save_ticker(
                            self.provider.venue, ticker, fetched_at=fetched_at
                        )
                    )
                out[ticker.symbol] = answer
        return out

    # -- order books ------------------------------------------------------------------------

    async def order_book(self, symbol: str | Symbol, depth: int = 100) -> Answer[OrderBook]:
        """An order-book snapshot, ``depth`` levels a side (1 to 5000)."""
        depth = check_depth(depth)
        sym = await self.symbol(symbol)
        key = f"b|{sym.exchange}|{depth}"

        async def fetch() -> Answer[Any]:
            book = await self.provider.depth(sym, depth)
            fetched_at = stamp_ms()
            if self._snapshot_due(key):  # the venue as the answer named it
                venue = self.provider.venue
                self.layers.spawn(
                    self.store.snapshots.save_book(venue, book, fetched_at=fetched_at)
                )
            return Answer(book, Layer.UPSTREAM, fetched_at)

        async def fallback() -> Answer[Any] | None:
            stored = await self.store.snapshots.load_book(self.provider.venue, sym)
            if stored is None or len(stored.value.bids) < depth:
                return None
            return Answer(stored.value, Layer.STORE, stored.fetched_at)

        return await self.layers.read("book", key, self.cache.book_ttl_s, fetch, fallback)

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
        # Bad input is refused before anything is fetched (exchangeInfo, the clock).
        iv = Interval.parse(interval)
        check_range(start, end)
        check_limit(limit)
        sym = await self.symbol(symbol)
        clock = self.provider.clock
        steps = clock.steps
        answer = await self._candles(sym, iv, start, end, limit, allow_large, priority)
        if clock.steps != steps and end is None:
            # The exchange's clock stepped while this was fetched, so a window measured
            # from "now" was measured wrong ("the last 3 1s candles" came back empty after a
            # 2 s step): measure it again on the corrected clock.
            answer = await self._candles(sym, iv, start, end, limit, allow_large, priority)
        return answer

    async def _candles(
        self,
        sym: Symbol,
        iv: Interval,
        start: Moment | None,
        end: Moment | None,
        limit: int | None,
        allow_large: bool,
        priority: Priority,
    ) -> Answer[list[Candle]]:
        # Windows are laid on the exchange's clock, measured (weight 1, once a minute).
        await self.provider.sync_clock()
        now = self.provider.now_ms()
        window = candle_window(sym, iv, now, start, end, limit, allow_large=allow_large)
        key = f"c|{sym.exchange}|{iv.value}|{window.start}|{window.end}"
        open_start = iv.floor(now)
        to_close = (iv.next_open(open_start) - now) / 1000
        short_ttl = max(0.05, min(self.cache.ticker_ttl_s, to_close))
        final_ttl = self.cache.closed_candle_ttl_s
        # A day only for a window the exchange's clock is certainly past (its stale-while-
        # revalidate window is as long as its TTL, so a short one must be short too).
        ttl = final_ttl if window.end <= self._final_end(iv) else short_ttl

        def ttl_of(answer: Answer[Any]) -> float:
            # Kept for a day only when the exchange's clock is certainly past the whole
            # window (the rule coverage follows) and every candle in it is final. A window
            # laid on a clock that ran ahead (a step not yet seen) can come back empty or
            # short: that is asked again soon, never kept a day.
            if window.end <= self._final_end(iv) and all(c.closed for c in answer.value):
                return final_ttl
            return short_ttl

        async def fetch() -> Answer[Any]:
            try:
                filled = await self.filler.fill(window, now, priority)
            except UnknownSymbol:
                self.symbols.remember_unknown(sym)
                raise
            layer = Layer.UPSTREAM if filled.pages else Layer.STORE
            return Answer(filled.candles, layer, stamp_ms(), parts=filled.parts)

        async def fallback() -> Answer[Any] | None:
            return await self._stored_head(window, open_start)

        return await self.layers.read("candles", key, ttl, fetch, fallback, ttl_of=ttl_of)

    async def _stored_head(self, window: Window, open_start: int) -> Answer[Any] | None:
        """What the store holds of a window whose only missing part is its tail, as a stale
        answer as old as its newest candle, or None.

        When the exchange fails (an outage, a ban), "the last N" is answered with the N-1
        candles the store holds instead of an error once the minute rolls (faults 1, 2:
        68 and 112 failed calls in a 60 s outage, 2,197 Banned in a ban). A window with a
        hole before its end is not answered so: a partial history is not a stale one.
        """
        iv, sym, venue = window.interval, window.symbol, self.provider.venue
        closed_end = max(window.start, min(window.end, open_start))
        if window.start >= closed_end:
            return None
        gaps = await self.store.candles.gaps(venue, sym, iv, window.start, closed_end)
        if len(gaps) > 1 or (gaps and gaps[0][1] != closed_end):
            return None
        held_end = gaps[0][0] if gaps else closed_end
        if held_end <= window.start:
            return None
        stored = list(await self.store.candles.range(venue, sym, iv, window.start, held_end))
        # As old as the time since the newest candle it holds closed, on the exchange's clock.
        age_ms = max(0, self.provider.now_ms() - held_end)
        held = (Part(window.start, held_end, Layer.STORE),)
        return Answer(stored, Layer.STORE, stamp_ms() - age_ms, parts=held)

    def _final_end(self, iv: Interval) -> int:
        """The open time before which every candle of ``iv`` is final at the exchange now."""
        provider = self.provider
        clock = provider.clock
        return iv.floor(max(0, clock.lower_bound(clock.local()) - provider.final_grace_ms))

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
        check_range(start, end)
        check_chunk_pages(chunk_pages)
        sym = await self.symbol(symbol)
        await self.provider.sync_clock()
        now = self.provider.now_ms()
        window = candle_window(sym, iv, now, start, end, allow_large=True)
        if window.start > iv.floor(now):
            raise InvalidRange(
                f"backfill start {start!r} is in the future (the exchange's clock is "
                f"{iso_from_ms(now)}): there is nothing to store yet",
                start=window.start,
            )
        closed = Window(sym, iv, window.start, min(window.end, iv.floor(now)))
        fetched = 0
        async for _, pages, _ in walk(
            self.filler, closed, now, chunk_pages=chunk_pages, progress=progress
        ):
            fetched += pages
        return fetched

    async def candle_chunks(
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
    ) -> AsyncGenerator[Answer[list[Candle]], None]:
        """The candles of ``candles()``'s window, oldest first, a chunk at a time, in bounded
        memory: ``async for answer in md.candle_chunks("BTCUSDT", "1m", "2021-01-01")``.

        A window of one chunk (``chunk_pages`` pages) or less is one answer, ``candles()``'s
        own. A longer one is walked as ``backfill`` walks (``bulk.py``): each chunk fetched at
        background priority, stored, then handed on before the next is fetched, so one chunk
        is held whatever the window's length, and nothing goes to memory or Redis. Empty
        chunks are left out; ``progress(done, total)`` is called in candles after each.
        """
        iv = Interval.parse(interval)
        check_range(start, end)
        check_limit(limit)
        check_chunk_pages(chunk_pages)
        sym = await self.symbol(symbol)
        await self.provider.sync_clock()
        now = self.provider.now_ms()
        window = candle_window(sym, iv, now, start, end, limit, allow_large=allow_large)
        if window.count <= chunk_pages * self.provider.page_limit:
            yield await self.candles(sym, iv, start, end, limit, allow_large=allow_large)
            return
        async for filled in walk(
            self.filler, window, now, chunk_pages=chunk_pages, progress=progress
        ):
            if filled.candles:
                layer = Layer.UPSTREAM if filled.pages else Layer.STORE
                yield Answer(filled.candles, layer, stamp_ms(), parts=filled.parts)

    # -- stats and control ------------------------------------------------------------------

    async def health(self) -> HealthReport:
        """One round of health checks now (store, Redis, upstream, ban and pause, clock,
        throttle, caches, candle backlog, loop lag, memory, disk), each ok, warning or
        critical with its value, thresholds and reason. Needs ``monitor.enabled`` (the
        default) and MarketData.open."""
        if self.monitor is None:
            raise ConfigError(
                "health checks are off: MarketData was not opened with monitor.enabled",
                setting="monitor.enabled",
                value=False,
            )
        return await self.monitor.run()

    def stats(self) -> dict[str, Any]:
        """Plain data: per-layer hits, coalesced, stale, upstream calls and weight, latency,
        the headline figures, and the memory, Redis, throttle and store figures."""
        data = self.stats_.snapshot(
            self.provider.calls, self.provider.weight, self.symbols.negative_hits
        )
        data["coalesced_total"] = self.layers.flight.joined
        data["memory"] = {
            "entries": len(self.memory),
            "bytes": self.memory.bytes,
            "evictions": self.memory.evictions,
            "refused": self.memory.refused,
        }
        data["redis"] = None if self.redis is None else self.redis.stats()
        data["candle_pages_fetched"] = self.filler.pages_fetched
        data["candle_history"] = self.filler.history_stats()
        data["candle_writes"] = {
            "pending_rows": self.filler.pending_rows,
            "pending_peak": self.filler.pending_peak,
            "max_pending_rows": self.filler.max_pending_rows,
        }
        data["venue"] = self.provider.venue
        data["clock"] = self.provider.clock.stats()
        age = self.symbols.age_s()
        data["exchange_info"] = {
            "age_s": None if age is None else round(age, 1),
            "fetched": self.symbols.fetched,
        }
        data["throttle"] = self.throttler.stats()
        data["control"] = self.control.stats()
        data["store"] = self.store.stats()
        if self.alert_engine is not None:
            data["alerts"] = self.alert_engine.stats()
        return data

    async def alerts(self, *, open_only: bool = True, limit: int = 100) -> list[dict[str, Any]]:
        """The deployment's alerts as the store keeps them, newest first (open ones only by
        default): rule, subject, severity, value and thresholds, opened / escalated /
        resolved times."""
        return await alert_rows(self.store, open_only=open_only, limit=limit)

    async def recommendations(self) -> dict[str, Any]:
        """What to change, with its evidence, from this process's figures and its venue's
        heartbeats (see monitor/_recommend.py). Needs MarketData.open."""
        optimizer = self._optimizer()
        optimizer.observe(heartbeat_figures(self.stats()))
        return await optimizer.recommendations()

    async def optimize(self, *, dry_run: bool = False, reason: str = "") -> dict[str, Any]:
        """Apply the safe recommendations: one level step at most, within the bounds of
        ``monitor.optimize``, not within its cooldown, audited with the evidence; with
        ``dry_run`` only say what would be done. Needs MarketData.open."""
        optimizer = self._optimizer()
        optimizer.observe(heartbeat_figures(self.stats()))
        return await optimizer.optimize(dry_run=dry_run, actor="md.optimize", reason=reason)

    def _optimizer(self) -> AutoOptimizer:
        if self.optimizer is None:
            raise ConfigError(
                "recommendations and optimize need a MarketData built by MarketData.open",
                setting="monitor",
                value=None,
            )
        return self.optimizer

    async def clear(
        self,
        symbol: str | Symbol | None = None,
        *,
        memory: bool = True,
        redis: bool = True,
        query_cache: bool = True,
        actor: str = "operator",
        reason: str = "",
    ) -> dict[str, int]:
        """Forget cached answers (all, or one symbol's) in the layers asked: memory and the
        store's query cache here and, through the audited control log, in every running
        process of the venue within two seconds; Redis (shared) once, here. The store's
        closed candles stay (they never change). Returns the memory and query-cache
        entries dropped in this process, the Redis keys deleted, and the audit entry's id.
        See ``monitor/_clear.py`` for the same with no MarketData."""
        layers = asked_layers(memory=memory, redis=redis, query_cache=query_cache)
        exchange = None if symbol is None else exchange_form(symbol)
        deleted = 0
        if redis and self.redis is not None:
            # Redis first: a process dropping its memory copy must not read the old one back.
            for pattern in cache_key_patterns(exchange):
                deleted += await self.redis.clear(pattern)
        dropped = self._drop(exchange) if memory else 0
        queries = self._drop_queries(exchange) if query_cache else 0
        entry = await self.store.control.note_clear(
            self.throttler.provider, exchange, actor=actor, reason=reason, layers=layers
        )
        self.control.mine(entry)
        return {"memory": dropped, "query_cache": queries, "redis": deleted, "audit_id": entry}

    def _drop(self, exchange: str | None) -> int:
        """Drop this process's memory entries of one symbol (exchange name) or of all."""
        if exchange is None:
            dropped = self.memory.clear()
        else:
            dropped = self.memory.clear(lambda k: _key_symbol(k) == exchange)
        self._ticker_keys.clear()
        self.symbols.forget_unknown()
        return dropped

    def _drop_queries(self, exchange: str | None) -> int:
        """Drop this process's store query-cache entries of one symbol (exchange name) or
        all: the store's reads of that symbol go to the database again."""
        cache = self.store.cache
        if exchange is None:
            return cache.clear()
        return cache.clear(lambda key: _query_names(key, exchange))


def _key_symbol(key: Hashable) -> str:
    return str(key).split("|", 2)[1] if isinstance(key, str) and "|" in key else ""


def _query_names(key: Hashable, exchange: str) -> bool:
    """Whether a query-cache key (statement, parameters) reads ``exchange``'s rows: the
    store keeps a symbol as given (``BTC/USDT`` or ``BTCUSDT``), so separators are ignored."""
    params = key[1] if isinstance(key, tuple) and len(key) == 2 else ()
    return isinstance(params, tuple) and any(
        isinstance(p, str) and p.replace("/", "").replace("-", "").replace("_", "") == exchange
        for p in params
    )
