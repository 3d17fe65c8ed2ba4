"""The layered read: memory, then Redis, then the upstream through single flight, with
stale-while-revalidate and stale-if-error. MarketData supplies, per request kind, the key,
the TTL, how to fetch and where a stored fallback lies.

- A fresh memory entry is returned on the spot.
- Past its freshness an entry is served for one more TTL, marked stale, while one background
  refresh runs (it goes through the same single flight, so there are never two).
- Then Redis, if configured; then the upstream, identical concurrent misses sharing one call
  shielded from any one caller's cancellation.
- When the upstream fails (down, rate limited, banned, queue full), a value younger than
  ``stale_if_error_s`` is served marked stale: from memory, else the caller's fallback (the
  store's latest snapshot).
- A caller holding such a value in memory never waits on an upstream that is failing
  (the last fetch failed), held back (a 429 pause or a ban, as ``held_back`` says) or
  already being asked for this key: it gets the value at memory speed, marked stale, while
  one refresh (single flight) waits for the exchange. Otherwise it waits for the refresh at
  most ``stale_wait_s``, then gets the value, stale, and the refresh goes on. While the
  upstream is failing or held back, the caller's fallback (the store) is likewise served
  before any wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from mystic_trading.config import CacheSettings
from mystic_trading.errors import (
    Banned,
    MysticError,
    RateLimited,
    ThrottleError,
    UpstreamError,
    UpstreamUnavailable,
)
from mystic_trading.marketdata.answer import Answer, Layer
from mystic_trading.marketdata.codec import estimate_size
from mystic_trading.marketdata.memory import MemoryCache, MemoryEntry
from mystic_trading.marketdata.redis_layer import RedisLayer
from mystic_trading.marketdata.singleflight import SingleFlight
from mystic_trading.marketdata.stats import MarketDataStats

__all__ = ["FAILURES", "Fallback", "Fetch", "Layers"]

log = logging.getLogger(__name__)

FAILURES = (UpstreamError, ThrottleError)
# The failures that say the exchange is down or holding us back (a rejected or malformed
# answer is about one request, not the exchange).
DOWN = (UpstreamUnavailable, RateLimited, Banned, ThrottleError)
Fetch = Callable[[], Awaitable[Answer[Any]]]
Fallback = Callable[[], Awaitable[Answer[Any] | None]]
TtlOf = Callable[[Answer[Any]], float]


def age_s(answer: Answer[Any]) -> float:
    return answer.age_ms / 1000


class Layers:
    """Memory, Redis and single flight, and the background tasks they start."""

    def __init__(
        self,
        cache: CacheSettings,
        redis: RedisLayer | None,
        stats: MarketDataStats,
        clock: Callable[[], float],
        held_back: Callable[[], bool] = lambda: False,
    ) -> None:
        self.cache = cache
        self.held_back = held_back
        # Whether the last upstream fetch failed: until one succeeds, callers holding a good
        # value are not made to wait on the exchange (module docstring).
        self.failing = False
        self.redis = redis
        self.stats = stats
        self.clock = clock
        self.memory = MemoryCache(
            cache.memory_max_entries, int(cache.memory_max_mib * 2**20), clock
        )
        self.flight: SingleFlight[Answer[Any]] = SingleFlight()
        self._background: set[asyncio.Task[Any]] = set()
        # The background tasks that wait on the exchange (a 429 pause may hold them for its
        # Retry-After): cancelled at close rather than waited for.
        self._refreshes: set[asyncio.Task[Any]] = set()
        self._closed = False

    async def aclose(self) -> None:
        """Let background writes finish, cancel refreshes still waiting; start no more."""
        self._closed = True
        for task in self._refreshes:
            task.cancel()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

    async def idle(self) -> None:
        """Wait for the background refreshes and writes started so far."""
        while self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

    def spawn(self, coro: Coroutine[Any, Any, Any], *, refresh: bool = False) -> None:
        """Run ``coro`` in the background, tracked, its failure logged; a ``refresh`` (one
        that waits on the exchange) is cancelled at close."""
        if self._closed:
            coro.close()
            return
        self._track(asyncio.ensure_future(coro), refresh=refresh)

    def _track(self, task: asyncio.Task[Any], *, refresh: bool) -> None:
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        task.add_done_callback(_log_failure)
        if refresh:
            self._refreshes.add(task)
            task.add_done_callback(self._refreshes.discard)

    async def read(
        self,
        kind: str,
        key: str,
        ttl_s: float,
        fetch: Fetch,
        fallback: Fallback | None = None,
        ttl_of: TtlOf | None = None,
    ) -> Answer[Any]:
        """Serve ``key`` from the closest layer that holds a correct answer.

        ``ttl_of(answer)``, when given, is the freshness of each answer as it arrives (from
        the exchange or from Redis) instead of ``ttl_s``: a candle window that holds a
        candle not final yet is fresh only briefly, whatever its key says.
        """
        started = time.perf_counter()
        now = self.clock()
        entry = self.memory.get(key)
        if entry is not None:
            if entry.fresh_until > now:
                self.stats.answered(kind, Layer.MEMORY, time.perf_counter() - started, False)
                return entry.answer  # type: ignore[no-any-return]
            if now < entry.fresh_until + ttl_s or (
                entry.answer.age_ms <= self.cache.stale_if_error_s * 1000
                and (self.failing or self.flight.in_flight(key) or self.held_back())
            ):
                if not self.flight.in_flight(key):
                    self.spawn(self._refresh(key, ttl_s, fetch, ttl_of), refresh=True)
                answer = entry.answer
                self.stats.answered(kind, Layer.MEMORY, time.perf_counter() - started, True)
                return Answer(answer.value, Layer.MEMORY, answer.fetched_at, True, answer.parts)
        if self.redis is not None and (cached := await self.from_redis(key, ttl_s, ttl_of)):
            # Served as Redis gave it, whether memory kept a copy or not (a value larger than
            # the whole memory cache is not kept: review M3's KeyError).
            self.stats.answered(kind, Layer.REDIS, time.perf_counter() - started, False)
            return cached
        if self.failing or self.held_back():
            # The exchange is down or holding us back: what the store holds now beats
            # waiting on it; one refresh goes when it can.
            stale = await self._stale(key, entry, fallback)
            if stale is not None:
                if not self.flight.in_flight(key):
                    self.spawn(self._refresh(key, ttl_s, fetch, ttl_of), refresh=True)
                self.stats.answered(kind, stale.layer, time.perf_counter() - started, True)
                return stale
        joined = self.flight.in_flight(key)
        work = self.flight.do(key, lambda: self._fetch(key, ttl_s, fetch, ttl_of))
        try:
            if entry is not None and entry.answer.age_ms <= self.cache.stale_if_error_s * 1000:
                # Holding a good value: wait for the exchange only briefly.
                fresh = await self._within(work, self.cache.stale_wait_s)
                if fresh is None:
                    a = entry.answer
                    self.stats.answered(kind, Layer.MEMORY, time.perf_counter() - started, True)
                    return Answer(a.value, Layer.MEMORY, a.fetched_at, True, a.parts)
                answer = fresh
            else:
                answer = await work
        except FAILURES as exc:
            stale = await self._stale(key, entry, fallback)
            if stale is None:
                self.stats.errors[kind] += 1
                raise
            log.info("serving stale %s for %s: %s", kind, key, exc)
            self.stats.answered(kind, stale.layer, time.perf_counter() - started, True)
            return stale
        if joined:
            self.stats.coalesced[kind] += 1
        self.stats.answered(kind, answer.layer, time.perf_counter() - started, False)
        return answer

    async def from_redis(
        self, key: str, ttl_s: float, ttl_of: TtlOf | None = None
    ) -> Answer[Any] | None:
        """A fresh Redis entry (layer REDIS), copied into memory if memory keeps it; None
        when Redis has none (or is down)."""
        if self.redis is None:
            return None
        cached = await self.redis.get(key)
        if cached is not None and ttl_of is not None:
            ttl_s = ttl_of(cached)
        if cached is None or age_s(cached) >= ttl_s:
            return None
        self.remember(key, cached, ttl_s - age_s(cached), to_redis=False)
        return Answer(cached.value, Layer.REDIS, cached.fetched_at, parts=cached.parts)

    def remember(self, key: str, answer: Answer[Any], ttl_s: float, *, to_redis: bool) -> None:
        """Keep ``answer`` fresh for ``ttl_s`` in memory (and Redis, off the caller's path)."""
        in_memory = Answer(answer.value, Layer.MEMORY, answer.fetched_at, parts=answer.parts)
        keep_s = ttl_s + self.cache.stale_if_error_s
        self.memory.set(key, in_memory, ttl_s, keep_s, estimate_size(answer.value))
        if to_redis and self.redis is not None:
            self.spawn(self.redis.set(key, answer, keep_s))

    async def _fetch(
        self, key: str, ttl_s: float, fetch: Fetch, ttl_of: TtlOf | None = None
    ) -> Answer[Any]:
        try:
            answer = await fetch()
        except DOWN:
            self.failing = True
            raise
        self.failing = False
        self.remember(key, answer, ttl_s if ttl_of is None else ttl_of(answer), to_redis=True)
        return answer

    async def _within(self, work: Awaitable[Answer[Any]], wait_s: float) -> Answer[Any] | None:
        """``work``'s answer if it comes within ``wait_s``, else None: it goes on in the
        background (its result lands in memory) and :meth:`idle` waits for it."""
        task = asyncio.ensure_future(work)
        done, _ = await asyncio.wait({task}, timeout=wait_s)
        if task in done:
            return task.result()
        self._track(task, refresh=True)
        return None

    async def _refresh(
        self, key: str, ttl_s: float, fetch: Fetch, ttl_of: TtlOf | None = None
    ) -> None:
        with contextlib.suppress(MysticError):
            await self.flight.do(key, lambda: self._fetch(key, ttl_s, fetch, ttl_of))

    async def _stale(
        self, key: str, entry: MemoryEntry | None, fallback: Fallback | None
    ) -> Answer[Any] | None:
        """The last good value younger than stale_if_error_s, marked stale, or None."""
        limit_ms = self.cache.stale_if_error_s * 1000
        entry = self.memory.get(key) or entry
        if entry is not None and entry.answer.age_ms <= limit_ms:
            a = entry.answer
            return Answer(a.value, Layer.MEMORY, a.fetched_at, True, a.parts)
        if fallback is not None:
            with contextlib.suppress(MysticError):
                found = await fallback()
                if found is not None and found.age_ms <= limit_ms:
                    return Answer(found.value, found.layer, found.fetched_at, True, found.parts)
        return None


def _log_failure(task: asyncio.Task[Any]) -> None:
    if task.cancelled():
        return
    exc = task.exception()
    if isinstance(exc, MysticError):
        # A refresh the exchange refused: already served as stale and counted.
        log.info("background refresh failed: %s", exc)
    elif exc is not None:
        log.warning("background task failed: %r", exc)
