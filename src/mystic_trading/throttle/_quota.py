"""Where the budget lives: the :class:`Quota` seam and its in-memory implementation.

A quota holds per key (provider) the exchange's fixed windows (``_window``: what each was
charged, what the usage header said), a GCRA bucket for rates below the exchange's
(``_gcra``), its 429 pause and its 418 ban. Every
process that shares a quota draws from one budget; :class:`MemoryQuota` is one process,
``RedisQuota`` is every process and host of a deployment. Both run the same algorithm
(``_window`` and ``_gcra``), so one contract test suite covers both. The memory quota
meters windows on ``wall_ms`` (they are aligned to the epoch, like the exchange's) and the
GCRA and pauses on ``clock``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from mystic_trading.throttle._gcra import BucketState, Grant, gcra_start
from mystic_trading.throttle._window import WindowCount, charge, earliest_start, settle

__all__ = ["BucketSpec", "MemoryQuota", "Quota"]


@dataclass(frozen=True, slots=True)
class BucketSpec:
    """How to meter one request.

    ``limit``: the exchange's limit less the safety margin, weight per fixed window of
    ``window_s`` (0 = no window accounting, GCRA only). ``rate`` (weight/s) and ``burst``
    (weight): the GCRA pace, always applied: a level or an adaptive cut, or at full speed a
    little above the window's rate, so catching up after a stall is a brisk stream, not one
    burst (see ``Throttler``). ``burst`` is also the head start of each window's allowance
    line (see ``_window``). ``guard_s``: the boundary guard band.
    """

    rate: float
    burst: float
    window_s: float
    limit: float = 0.0
    guard_s: float = 0.0

    def share(self, parts: int) -> BucketSpec:
        """This budget split ``parts`` ways, each safe alone: ``(rate*W + burst) / parts``."""
        if parts <= 1:
            return self
        limit = self.limit / parts
        per_window = (self.rate * self.window_s + self.burst) / parts
        rate = max(per_window - self.burst, 1.0) / self.window_s
        return BucketSpec(rate, self.burst, self.window_s, limit, self.guard_s)


class Quota(Protocol):
    """A budget shared by everyone holding the same quota and key."""

    @property
    def mode(self) -> str:
        """What is metering right now: "memory", "redis" or "local-fallback"."""
        ...

    @property
    def reserve_ahead_s(self) -> float:
        """How far ahead a reservation may be granted (covers the backend's round trip)."""
        ...

    async def reserve(self, key: str, weight: int, spec: BucketSpec, max_delay: float) -> Grant:
        """Spend ``weight`` if it can start within ``max_delay`` s (see :class:`Grant`)."""
        ...

    async def settle(
        self,
        key: str,
        grant: Grant,
        weight: int,
        used: int | None,
        spec: BucketSpec,
        *,
        sent: bool = True,
    ) -> None:
        """Account the answer to a granted request: ``used`` is its usage header (None when
        there was none), ``sent`` False when it never left (its weight is given back)."""
        ...

    async def pause(self, key: str, seconds: float) -> None:
        """Admit nothing for ``seconds`` from now (a 429's Retry-After), for everyone."""
        ...

    async def ban(self, key: str, until_ms: int) -> None:
        """Admit nothing until ``until_ms`` (UTC epoch ms, a 418), for everyone."""
        ...

    async def banned_until(self, key: str) -> int | None:
        """The ban's end (UTC epoch ms) if one is in force."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


class _Windows(dict[int, WindowCount]):
    """One key's recent windows, created on first use; ``pruned``: the oldest one kept."""

    pruned = -(2**62)

    def __missing__(self, index: int) -> WindowCount:
        item = self[index] = WindowCount()
        return item


class MemoryQuota:
    """The budget in this process only; ``clock`` meters the GCRA and pauses, ``wall_ms``
    the exchange's windows and bans."""

    reserve_ahead_s = 0.0

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
        source: str = "memory",
    ) -> None:
        self._clock = clock
        self._wall_ms = wall_ms
        self._source = source
        self._buckets: dict[str, BucketState] = {}
        self._windows: dict[str, _Windows] = {}

    @property
    def mode(self) -> str:
        return "memory"

    def _bucket(self, key: str) -> BucketState:
        state = self._buckets.get(key)
        if state is None:
            state = self._buckets[key] = BucketState(at=self._clock())
        return state

    def _counter(self, key: str, spec: BucketSpec, wall: float) -> Callable[[int], WindowCount]:
        windows = self._windows.get(key)
        if windows is None:
            windows = self._windows[key] = _Windows()
        oldest = int(wall // spec.window_s) - 2
        if oldest > windows.pruned:
            for index in [i for i in windows if i < oldest]:
                del windows[index]
            windows.pruned = oldest
        return windows.__getitem__

    def window(self, key: str, index: int) -> WindowCount | None:
        """Window ``index``'s counts for ``key`` (for tests and stats), if any."""
        windows = self._windows.get(key)
        return None if windows is None else windows.get(index)

    async def reserve(self, key: str, weight: int, spec: BucketSpec, max_delay: float) -> Grant:
        return self.reserve_now(key, weight, spec, max_delay)

    def reserve_now(self, key: str, weight: int, spec: BucketSpec, max_delay: float) -> Grant:
        """:meth:`reserve` without a coroutine, for the local fallback of other backends."""
        state = self._bucket(key)
        now, now_ms = self._clock(), self._wall_ms()
        if state.banned_until_ms > now_ms:
            return Grant(False, (state.banned_until_ms - now_ms) / 1000, state.banned_until_ms)
        start, fill = gcra_start(state, weight, spec.rate, spec.burst, max(now, state.paused_until))
        wall = now_ms / 1000
        count = None
        if spec.limit > 0:
            count = self._counter(key, spec, wall)
            at = earliest_start(
                count,
                weight,
                wall + (start - now),
                limit=spec.limit,
                burst=spec.burst,
                window_s=spec.window_s,
                guard_s=spec.guard_s,
            )
            fill = max(0.0, fill - spec.rate * (at - wall - (start - now)))
            start = now + (at - wall)
        delay = start - now
        if delay > max_delay:
            return Grant(False, delay)
        state.fill, state.at = fill + weight, start
        if count is not None:
            charge(count, weight, wall + delay, window_s=spec.window_s, guard_s=spec.guard_s)
        return Grant(True, delay, start=wall + delay, source=self._source, guard_s=spec.guard_s)

    async def settle(
        self,
        key: str,
        grant: Grant,
        weight: int,
        used: int | None,
        spec: BucketSpec,
        *,
        sent: bool = True,
    ) -> None:
        self.settle_now(key, grant, weight, used, spec, sent=sent)

    def settle_now(
        self,
        key: str,
        grant: Grant,
        weight: float,
        used: float | None,
        spec: BucketSpec,
        *,
        sent: bool = True,
    ) -> None:
        """:meth:`settle` without a coroutine."""
        if spec.limit <= 0 or not grant.granted:
            return
        wall = self._wall_ms() / 1000
        settle(
            self._counter(key, spec, wall),
            weight,
            grant.start,
            wall,
            used,
            window_s=spec.window_s,
            guard_s=grant.guard_s,
            sent=sent,
        )

    async def pause(self, key: str, seconds: float) -> None:
        self.pause_now(key, seconds)

    def pause_now(self, key: str, seconds: float) -> None:
        """:meth:`pause` without a coroutine."""
        state = self._bucket(key)
        state.paused_until = max(state.paused_until, self._clock() + seconds)

    async def ban(self, key: str, until_ms: int) -> None:
        self.ban_now(key, until_ms)

    def ban_now(self, key: str, until_ms: int) -> None:
        """:meth:`ban` without a coroutine."""
        state = self._bucket(key)
        state.banned_until_ms = max(state.banned_until_ms, until_ms)

    async def banned_until(self, key: str) -> int | None:
        state = self._buckets.get(key)
        if state is None or state.banned_until_ms <= self._wall_ms():
            return None
        return state.banned_until_ms

    async def aclose(self) -> None:
        return None
