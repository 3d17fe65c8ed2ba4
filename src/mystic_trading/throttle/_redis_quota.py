"""The budget in Redis: every process and host of a deployment draws from one bucket.

Each operation is one atomic Lua script (``lua/*.lua``, package data) run on Redis's clock
(``TIME``), so hosts with skewed clocks still meter one budget, and 429 pauses and 418 bans
are seen by everyone at once. One hash per key holds the bucket, the pause and the ban.

When Redis cannot be reached, this process falls back to a local bucket holding its share
of the budget (``1 / expected_processes``, burst kept whole, see ``BucketSpec.share``), says
so in its log and in ``mode``, keeps pauses and bans locally too, and tries Redis again
every ``reconnect_s``; the first answer puts it back on the shared budget (and hands over a
ban it learnt meanwhile).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from importlib import resources
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError
from redis.exceptions import TimeoutError as RedisTimeoutError

from mystic_trading.config import mask_url
from mystic_trading.throttle._gcra import Grant
from mystic_trading.throttle._quota import BucketSpec, MemoryQuota

__all__ = ["RedisQuota"]

log = logging.getLogger("mystic_trading.throttle")

_UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)


def _script(name: str) -> str:
    return (resources.files("mystic_trading.throttle") / "lua" / name).read_text("utf-8")


class RedisQuota:
    """A :class:`Quota` in Redis with a local fallback while Redis is unreachable."""

    # A reservation may be granted this far ahead, so the round trip to Redis is not lost
    # budget; a waiter cancelled inside it wastes at most that much.
    reserve_ahead_s = 0.005

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "mystic:throttle",
        expected_processes: int = 1,
        timeout_s: float = 0.25,
        reconnect_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if expected_processes < 1:
            raise ValueError(f"expected_processes must be >= 1, got {expected_processes!r}")
        self.url = url
        self.prefix = prefix
        self.expected_processes = expected_processes
        self.reconnect_s = reconnect_s
        self._clock = clock
        self._redis: Any = aioredis.Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),
        )
        self._reserve = self._redis.register_script(_script("reserve.lua"))
        self._sync = self._redis.register_script(_script("sync.lua"))
        self._penalty = self._redis.register_script(_script("penalty.lua"))
        self._local = MemoryQuota(clock=clock)
        self._down_since: float | None = None
        self._next_try = 0.0
        self.fallbacks = 0

    @property
    def mode(self) -> str:
        return "redis" if self._down_since is None else "local-fallback"

    def _key(self, key: str) -> str:
        return f"{self.prefix}:{key}"

    def _usable(self) -> bool:
        return self._down_since is None or self._clock() >= self._next_try

    def _lost(self, exc: BaseException) -> None:
        now = self._clock()
        if self._down_since is None:
            self._down_since = now
            self.fallbacks += 1
            log.warning(
                "Redis at %s unreachable (%s); metering a local share of 1/%d of the budget "
                "until it answers again",
                mask_url(self.url),
                exc,
                self.expected_processes,
            )
        self._next_try = now + self.reconnect_s

    async def _back(self, keys: tuple[str, ...]) -> None:
        if self._down_since is None:
            return
        down_for = self._clock() - self._down_since
        self._down_since = None
        log.warning(
            "Redis at %s answers again after %.1fs; back on the shared budget",
            mask_url(self.url),
            down_for,
        )
        for key in keys:
            ban = await self._local.banned_until(key)
            if ban is not None:
                await self._run(self._penalty, key, "ban", ban, 60)

    async def _run(self, script: Any, key: str, *args: object) -> Any:
        return await script(keys=[self._key(key)], args=list(args))

    async def _call(self, script: Any, key: str, *args: object) -> Any:
        """The script's answer, or None when Redis is unreachable (then in fallback)."""
        if not self._usable():
            return None
        try:
            answer = await self._run(script, key, *args)
        except NoScriptError:
            raise
        except _UNREACHABLE as exc:
            self._lost(exc)
            return None
        await self._back((key,))
        return answer

    async def reserve(self, key: str, weight: int, spec: BucketSpec, max_delay: float) -> Grant:
        ttl = int(2 * spec.window_s) + 1
        answer = await self._call(
            self._reserve, key, weight, repr(spec.rate), repr(spec.burst), repr(max_delay), ttl
        )
        if answer is None:
            local_spec = spec.share(self.expected_processes)
            return self._local.reserve_now(key, weight, local_spec, max_delay)
        granted, delay, ban = int(answer[0]), float(answer[1]), int(float(answer[2]))
        return Grant(bool(granted), delay, ban or None)

    async def sync_usage(
        self, key: str, used: int, limit_eff: float, remaining_s: float, spec: BucketSpec
    ) -> None:
        ttl = int(2 * spec.window_s) + 1
        answer = await self._call(
            self._sync,
            key,
            used,
            repr(limit_eff),
            repr(remaining_s),
            repr(spec.rate),
            repr(spec.burst),
            ttl,
        )
        if answer is None:
            share = self.expected_processes
            local_spec = spec.share(share)
            self._local.sync_now(key, used / share, limit_eff / share, remaining_s, local_spec)

    async def pause(self, key: str, seconds: float) -> None:
        self._local.pause_now(key, seconds)
        await self._call(self._penalty, key, "pause", repr(seconds), 60)

    async def ban(self, key: str, until_ms: int) -> None:
        self._local.ban_now(key, until_ms)
        await self._call(self._penalty, key, "ban", until_ms, 60)

    async def banned_until(self, key: str) -> int | None:
        answer = await self._call(self._penalty, key, "ban", 0, 60)
        if answer is None:
            return await self._local.banned_until(key)
        ban = int(float(answer))
        return ban or None

    async def clear_ban(self, key: str) -> None:
        """Forget the ban in Redis (every process) and locally; a Redis error propagates,
        so an operator's `mystic throttle ban clear` never claims what it did not do."""
        await self._local.clear_ban(key)
        await self._redis.hdel(self._key(key), "ban")

    async def aclose(self) -> None:
        await self._redis.aclose()
