"""Where the budget lives: the :class:`Quota` seam and its in-memory implementation.

A quota holds one GCRA bucket per key (provider), its 429 pause and its 418 ban. Every
process that shares a quota draws from one budget; :class:`MemoryQuota` is one process,
``RedisQuota`` is every process and host of a deployment. Both run the same algorithm
(``_gcra``), so one contract test suite covers both.

Ban ends cross this seam as UTC epoch ms on the quota's wall clock (``wall_ms``, this host's
clock unless injected; give the throttler the same one). A quota that keeps bans on another
clock (Redis's) converts at its boundary, and a ban it answers is always one in force.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

from mystic_trading.throttle._gcra import (
    BucketState,
    Grant,
    Windows,
    reserve,
    sync_usage,
    sync_window,
)

__all__ = ["BucketSpec", "MemoryQuota", "Quota", "wall_clock_ms"]


def wall_clock_ms() -> int:
    """This host's clock: UTC epoch milliseconds."""
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class BucketSpec:
    """How to meter one request: the rate (weight/s) and burst (weight) it is admitted at.

    With ``cap`` set, the exchange's windows are counted too (see ``_gcra``): at most
    ``cap`` weight per window of ``window_s``, windows aligned to the epoch on the exchange's
    clock, which read ``exchange_s`` (UTC epoch seconds; None: this host's clock) when the
    spec was made, within ``skew_s``. Without it the GCRA alone meters.
    """

    rate: float
    burst: float
    window_s: float
    cap: float | None = None
    exchange_s: float | None = None
    skew_s: float = 0.0

    def share(self, parts: int) -> BucketSpec:
        """This budget split ``parts`` ways, each safe alone: the rate and the window's cap
        split, or without a cap ``(rate*W + burst) / parts`` per window."""
        if parts <= 1:
            return self
        if self.cap is not None:
            return replace(self, rate=self.rate / parts, cap=self.cap / parts)
        per_window = (self.rate * self.window_s + self.burst) / parts
        rate = max(per_window - self.burst, 1.0) / self.window_s
        return BucketSpec(rate=rate, burst=self.burst, window_s=self.window_s)

    def windows(self, clock_now: float, wall_ms: int) -> Windows | None:
        """The windows as a bucket whose clock reads ``clock_now`` sees them (None: no cap);
        ``wall_ms`` stands for the exchange's clock when the spec has none."""
        if self.cap is None:
            return None
        exchange = self.exchange_s if self.exchange_s is not None else wall_ms / 1000
        return Windows(self.cap, self.window_s, exchange - clock_now, self.skew_s)

    def window_index(self, remaining_s: float, wall_ms: int) -> int:
        """The index of the exchange's window that ends ``remaining_s`` from now."""
        exchange = self.exchange_s if self.exchange_s is not None else wall_ms / 1000
        return round((exchange + remaining_s) / self.window_s) - 1


class Quota(Protocol):
    """A budget shared by everyone holding the same quota and key."""

    @property
    def mode(self) -> str:
        """What is metering right now: "memory", "redis" or "local-fallback"."""
        ...

    @property
    def fallbacks(self) -> int:
        """How many times the shared backend failed and a local share took over (0 for a
        quota that has no backend to lose)."""
        ...

    @property
    def last_error(self) -> str | None:
        """The backend's last error, a short text without secrets, or None."""
        ...

    @property
    def reserve_ahead_s(self) -> float:
        """How far ahead a reservation may be granted (covers the backend's round trip)."""
        ...

    async def start(self) -> None:
        """Check the backend before the first request (ConfigError if it can never work,
        such as a wrong password); a backend merely unreachable is no error."""
        ...

    async def reserve(self, key: str, weight: int, spec: BucketSpec, max_delay: float) -> Grant:
        """Spend ``weight`` if it can start within ``max_delay`` s (see :class:`Grant`)."""
        ...

    async def sync_usage(
        self, key: str, used: int, limit_eff: float, remaining_s: float, spec: BucketSpec
    ) -> None:
        """Count the exchange's reported usage of a window ending in ``remaining_s``."""
        ...

    async def pause(self, key: str, seconds: float) -> None:
        """Admit nothing for ``seconds`` from now (a 429's Retry-After), for everyone."""
        ...

    async def ban(self, key: str, until_ms: int) -> None:
        """Admit nothing until ``until_ms`` (UTC epoch ms, a 418), for everyone."""
        ...

    async def banned_until(self, key: str) -> int | None:
        """The ban's end (UTC epoch ms, see the module docstring) if one is in force."""
        ...

    async def clear_ban(self, key: str) -> None:
        """Forget the ban (an operator lifted a stale one)."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


class MemoryQuota:
    """The budget in this process only; ``clock`` meters, ``wall_ms`` dates bans."""

    # Grants up to 20 ms ahead, charged at their exact start (the caller sleeps until then):
    # charged at the event loop's wake-up instead, the benchmark lost 3 % of the limit.
    reserve_ahead_s = 0.02

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_ms: Callable[[], int] = wall_clock_ms,
    ) -> None:
        self._clock = clock
        self._wall_ms = wall_ms
        self._buckets: dict[str, BucketState] = {}

    @property
    def mode(self) -> str:
        return "memory"

    @property
    def fallbacks(self) -> int:
        return 0

    @property
    def last_error(self) -> str | None:
        return None

    async def start(self) -> None:
        return None

    def _bucket(self, key: str) -> BucketState:
        state = self._buckets.get(key)
        if state is None:
            state = self._buckets[key] = BucketState(at=self._clock())
        return state

    async def reserve(self, key: str, weight: int, spec: BucketSpec, max_delay: float) -> Grant:
        return self.reserve_now(key, weight, spec, max_delay)

    def reserve_now(self, key: str, weight: int, spec: BucketSpec, max_delay: float) -> Grant:
        """:meth:`reserve` without a coroutine, for the local fallback of other backends."""
        state = self._bucket(key)
        now, now_ms = self._clock(), self._wall_ms()
        return reserve(
            state,
            weight,
            spec.rate,
            spec.burst,
            now,
            now_ms,
            max_delay,
            spec.windows(now, now_ms),
        )

    async def sync_usage(
        self, key: str, used: int, limit_eff: float, remaining_s: float, spec: BucketSpec
    ) -> None:
        self.sync_now(key, used, limit_eff, remaining_s, spec)

    def sync_now(
        self, key: str, used: float, limit_eff: float, remaining_s: float, spec: BucketSpec
    ) -> None:
        """:meth:`sync_usage` without a coroutine."""
        state = self._bucket(key)
        if spec.cap is not None:
            sync_window(state, used, spec.window_index(remaining_s, self._wall_ms()))
            return
        sync_usage(state, used, limit_eff, remaining_s, spec.rate, spec.burst, self._clock())

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

    async def clear_ban(self, key: str) -> None:
        self.clear_now(key)

    def clear_now(self, key: str) -> None:
        """:meth:`clear_ban` without a coroutine."""
        state = self._buckets.get(key)
        if state is not None:
            state.banned_until_ms = 0

    async def aclose(self) -> None:
        return None
