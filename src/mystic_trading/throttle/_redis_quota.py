"""The budget in Redis: every process and host of a deployment draws from one bucket.

Each operation is one atomic Lua script (``lua/*.lua``, package data) run on Redis's clock
(``TIME``), so hosts with skewed clocks still meter one budget, and 429 pauses and 418 bans
are seen by everyone at once. Per key (provider) there are three Redis keys: the bucket (a
hash that expires two windows after its last use), the pause and the ban. The pause and the
ban are keys of their own that expire exactly when they end, so an answer that touches the
bucket never shortens them. A ban is handed to Redis as the time it has left on this host's
clock (``wall_ms``) and kept on Redis's clock; it is read back as time left and dated on this
host's clock again, so two hosts whose clocks differ by minutes agree on how long it lasts.

When Redis fails, whatever the error (unreachable or timed out; or refusing: a read-only
replica after a failover, out of memory, busy with a script, a user without the permission,
credentials no longer accepted), this process falls back to a local bucket holding its share
of the budget (``1 / expected_processes``, burst kept whole, see ``BucketSpec.share``). It
says so once in its log and in ``mode``, ``fallbacks`` and ``last_error``, keeps pauses and
bans locally meanwhile, and tries Redis again every ``reconnect_s``; the first answer puts it
back on the shared budget and hands over a ban it learnt meanwhile. No Redis error reaches
the throttler's callers.

:meth:`RedisQuota.start` (called by ``Throttler.start``) is the exception: a wrong password,
or a user that may not run the scripts, is a :class:`ConfigError` there, since metering a
local share for ever would hide it; Redis merely unreachable at start is the fallback above
(it may come up later).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from importlib import resources
from typing import Any, TypeVar
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import (
    AuthenticationError,
    AuthenticationWrongNumberOfArgsError,
    AuthorizationError,
    NoPermissionError,
    RedisError,
    ResponseError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from mystic_trading.config import mask_url
from mystic_trading.errors import ConfigError
from mystic_trading.throttle._gcra import Grant
from mystic_trading.throttle._quota import BucketSpec, MemoryQuota, wall_clock_ms

__all__ = ["RedisQuota"]

log = logging.getLogger("mystic_trading.throttle")

T = TypeVar("T")

# Every way a call to Redis can fail. ValueError, TypeError and IndexError are an answer of
# the wrong shape (not our scripts' server); OSError a socket error redis-py did not wrap.
_FAILURES = (RedisError, OSError, ValueError, TypeError, IndexError)
_CREDENTIALS = (AuthenticationError, AuthorizationError, AuthenticationWrongNumberOfArgsError)
_UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)


def _script(name: str) -> str:
    return (resources.files("mystic_trading.throttle") / "lua" / name).read_text("utf-8")


def _what_failed(exc: BaseException) -> str:
    if isinstance(exc, _CREDENTIALS):
        return "refused this process's credentials (authentication failed)"
    if isinstance(exc, NoPermissionError):
        return "refused a command this user may not run"
    if isinstance(exc, ResponseError):
        return "refused a command"
    if isinstance(exc, _UNREACHABLE):
        return "unreachable"
    return "failed"


class RedisQuota:
    """A :class:`Quota` in Redis with a local fallback whenever Redis fails."""

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
        wall_ms: Callable[[], int] = wall_clock_ms,
    ) -> None:
        if expected_processes < 1:
            raise ValueError(f"expected_processes must be >= 1, got {expected_processes!r}")
        self.url = url
        self.prefix = prefix
        self.expected_processes = expected_processes
        self.reconnect_s = reconnect_s
        self._clock = clock
        self._wall_ms = wall_ms
        self._password = urlsplit(url).password or ""
        self._redis: Any = aioredis.Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),
        )
        self._reserve = self._redis.register_script(_script("reserve.lua"))
        self._sync = self._redis.register_script(_script("sync.lua"))
        self._penalty = self._redis.register_script(_script("penalty.lua"))
        self._local = MemoryQuota(clock=clock, wall_ms=wall_ms)
        # Bans learnt while Redis did not take them, handed over when it answers again.
        self._unshared: dict[str, int] = {}
        self._down_since: float | None = None
        self._next_try = 0.0
        self.fallbacks = 0
        self.last_error: str | None = None

    @property
    def mode(self) -> str:
        return "redis" if self._down_since is None else "local-fallback"

    def _keys(self, key: str) -> tuple[str, str, str]:
        """The bucket, the ban and the pause of ``key``."""
        base = f"{self.prefix}:{key}"
        return base, f"{base}:ban", f"{base}:pause"

    def _describe(self, exc: BaseException) -> str:
        """A short text of ``exc`` for logs and stats, never with the password in it."""
        text = f"{type(exc).__name__}: {exc}"
        if self._password:
            text = text.replace(self._password, "***")
        return text[:200]

    def _usable(self) -> bool:
        return self._down_since is None or self._clock() >= self._next_try

    def _lost(self, exc: BaseException) -> None:
        now = self._clock()
        self.last_error = self._describe(exc)
        if self._down_since is None:
            self._down_since = now
            self.fallbacks += 1
            log.warning(
                "Redis at %s %s (%s); metering a local share of 1/%d of the budget until it "
                "answers again",
                mask_url(self.url),
                _what_failed(exc),
                self.last_error,
                self.expected_processes,
            )
        self._next_try = now + self.reconnect_s

    async def _back(self) -> None:
        if self._down_since is not None:
            down_for = self._clock() - self._down_since
            self._down_since = None
            log.warning(
                "Redis at %s answers again after %.1fs; back on the shared budget",
                mask_url(self.url),
                down_for,
            )
        for key, until in list(self._unshared.items()):
            left = until - self._wall_ms()
            if left > 0:
                await self._penalty(keys=self._keys(key)[1:], args=["ban", left])
            del self._unshared[key]

    async def _call(
        self, script: Any, keys: tuple[str, ...], args: list[object], parse: Callable[[Any], T]
    ) -> T | None:
        """The script's parsed answer, or None when Redis failed (then in fallback)."""
        if not self._usable():
            return None
        try:
            answer = parse(await script(keys=list(keys), args=args))
        except _FAILURES as exc:
            self._lost(exc)
            return None
        if self._down_since is not None or self._unshared:
            try:
                await self._back()
            except _FAILURES as exc:
                self._lost(exc)  # the answer stands: it was given
        return answer

    async def start(self) -> None:
        """Check that Redis takes this process's credentials and runs its scripts.

        Raises ConfigError naming the URL (password masked) on a wrong or missing password,
        or a user that may not run the scripts. Redis unreachable is no error: the local
        share meters until it answers (it may come up after this process).
        """
        probe = f"{self.prefix}:start"
        try:
            await self._penalty(keys=[f"{probe}:ban", f"{probe}:pause"], args=["read", 0])
        except (*_CREDENTIALS, NoPermissionError) as exc:
            if isinstance(exc, NoPermissionError):
                what = (
                    "refused the throttle's scripts: the user needs EVALSHA, EVAL and SCRIPT "
                    "(+@scripting)"
                )
            else:
                what = "authentication failed: check the user and password in redis_url"
            raise ConfigError(
                f"Redis at {mask_url(self.url)} {what} ({self._describe(exc)})",
                setting="redis_url",
                value=mask_url(self.url),
            ) from exc
        except _FAILURES as exc:
            self._lost(exc)

    def _learn_ban(self, key: str, left_ms: int) -> int | None:
        """Redis's ban of ``key`` (ms left) dated on this host's clock, kept locally too."""
        if left_ms <= 0:
            self._local.clear_now(key)
            return None
        until = self._wall_ms() + left_ms
        self._local.ban_now(key, until)
        return until

    def _exchange_s(self, spec: BucketSpec) -> float:
        """The exchange's clock as the spec read it, else this host's (epoch seconds)."""
        return spec.exchange_s if spec.exchange_s is not None else self._wall_ms() / 1000

    async def reserve(self, key: str, weight: int, spec: BucketSpec, max_delay: float) -> Grant:
        ttl = int(2 * spec.window_s) + 1

        def parse(answer: Any) -> tuple[bool, float, int]:
            return bool(int(answer[0])), float(answer[1]), int(float(answer[2]))

        answer = await self._call(
            self._reserve,
            self._keys(key),
            [
                weight,
                repr(spec.rate),
                repr(spec.burst),
                repr(max_delay),
                ttl,
                repr(spec.cap or 0.0),
                repr(spec.window_s),
                repr(self._exchange_s(spec)),
                repr(spec.skew_s),
            ],
            parse,
        )
        if answer is None:
            local_spec = spec.share(self.expected_processes)
            return self._local.reserve_now(key, weight, local_spec, max_delay)
        granted, delay, left_ms = answer
        return Grant(granted, delay, self._learn_ban(key, left_ms))

    async def sync_usage(
        self, key: str, used: int, limit_eff: float, remaining_s: float, spec: BucketSpec
    ) -> None:
        ttl = int(2 * spec.window_s) + 1
        args: list[object] = [
            used,
            repr(limit_eff),
            repr(remaining_s),
            repr(spec.rate),
            repr(spec.burst),
            ttl,
            -1 if spec.cap is None else spec.window_index(remaining_s, self._wall_ms()),
        ]
        answer = await self._call(self._sync, self._keys(key)[:1], args, int)
        if answer is None:
            share = self.expected_processes
            local_spec = spec.share(share)
            self._local.sync_now(key, used / share, limit_eff / share, remaining_s, local_spec)

    async def pause(self, key: str, seconds: float) -> None:
        self._local.pause_now(key, seconds)
        await self._call(self._penalty, self._keys(key)[1:], ["pause", repr(seconds)], int)

    async def ban(self, key: str, until_ms: int) -> None:
        self._local.ban_now(key, until_ms)
        left = until_ms - self._wall_ms()
        if left <= 0:
            return
        answer = await self._call(self._penalty, self._keys(key)[1:], ["ban", left], int)
        if answer is None:
            self._unshared[key] = max(self._unshared.get(key, 0), until_ms)

    async def banned_until(self, key: str) -> int | None:
        left = await self._call(self._penalty, self._keys(key)[1:], ["read", 0], int)
        if left is None:
            return await self._local.banned_until(key)
        return self._learn_ban(key, left)

    async def clear_ban(self, key: str) -> None:
        """Forget the ban in Redis (every process) and locally; a Redis error propagates,
        so an operator's `mystic throttle ban clear` never claims what it did not do."""
        self._local.clear_now(key)
        self._unshared.pop(key, None)
        await self._redis.delete(self._keys(key)[1])

    async def aclose(self) -> None:
        await self._redis.aclose()
