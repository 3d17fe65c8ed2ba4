"""L2: the Redis cache shared by every process of a deployment.

Optional and never fatal: when Redis fails, the layer marks itself down, every call skips it
at once (counted in ``skipped``) for ``retry_after_s``, then one call tries again. A dead Redis
costs one short timeout per ``retry_after_s``, not one per request.

Values above ``max_value_bytes`` encoded are not written (counted in ``too_large``): a candle
window of tens of MB sent with the 0.5 s socket timeout timed out and marked Redis down for
every kind of data for 5 s (review M3). Such a window is answered by the store, which every
process shares too. Large values are encoded and decoded a slice at a time (``codec``), so
the event loop is never held for long.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from mystic_trading.config import mask_url
from mystic_trading.errors import MalformedPayload
from mystic_trading.marketdata.answer import Answer
from mystic_trading.marketdata.codec import decode_async, encode_async, encoded_size_floor

__all__ = ["MAX_VALUE_BYTES", "RedisLayer"]

log = logging.getLogger(__name__)

# The largest value written, encoded: 2 MiB, about 12,000 candles. Sent in 0.17 s on a
# 100 Mbit/s link, a third of the default 0.5 s socket timeout, so a write never times out
# for its size alone, and a copy that short never stalls Redis's one thread for its other
# clients. A larger window stays in this process's memory and in the store.
MAX_VALUE_BYTES = 2 * 2**20


class RedisLayer:
    """Get and set encoded answers under ``prefix``; skip Redis while it is down."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "mystic:md:",
        retry_after_s: float = 5.0,
        socket_timeout_s: float = 0.5,
        max_value_bytes: int = MAX_VALUE_BYTES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if isinstance(max_value_bytes, bool) or not (
            isinstance(max_value_bytes, int) and max_value_bytes > 0
        ):
            raise ValueError(f"max_value_bytes must be a positive int, got {max_value_bytes!r}")
        self.prefix = prefix
        self.max_value_bytes = max_value_bytes
        self.retry_after_s = retry_after_s
        self.clock = clock
        self._where = mask_url(url)
        self._client: aioredis.Redis = aioredis.Redis.from_url(
            url,
            socket_timeout=socket_timeout_s,
            socket_connect_timeout=socket_timeout_s,
            retry_on_timeout=False,
        )
        self._down_until = 0.0
        self.hits = 0
        self.misses = 0
        self.errors = 0
        self.skipped = 0
        self.too_large = 0

    @property
    def available(self) -> bool:
        """False while the layer is skipping Redis after a failure."""
        return self._down_until <= self.clock()

    def stats(self) -> dict[str, Any]:
        return {
            "available": self.available,
            "hits": self.hits,
            "misses": self.misses,
            "errors": self.errors,
            "skipped": self.skipped,
            "too_large": self.too_large,
            "max_value_bytes": self.max_value_bytes,
        }

    async def get(self, key: str) -> Answer[Any] | None:
        """The cached answer, or None when absent, undecodable or Redis is down."""
        if not self._usable():
            return None
        try:
            raw = await self._client.get(self.prefix + key)
        except (RedisError, OSError) as exc:
            self._failed(exc)
            return None
        if raw is None:
            self.misses += 1
            return None
        try:
            answer = await decode_async(raw)
        except MalformedPayload:
            self.misses += 1
            log.warning("dropping undecodable Redis entry %s", self.prefix + key)
            await self.delete(key)
            return None
        self.hits += 1
        return answer

    async def set(self, key: str, answer: Answer[Any], ttl_s: float) -> None:
        """Store the answer for ``ttl_s`` seconds; a failure only marks Redis down.

        A value above ``max_value_bytes`` encoded is skipped and counted (``too_large``);
        one certainly above it is skipped before it is encoded.
        """
        if not self._usable():
            return
        if encoded_size_floor(answer.value) > self.max_value_bytes:
            self._skip_large(key, None)
            return
        raw = await encode_async(answer)
        if len(raw) > self.max_value_bytes:
            self._skip_large(key, len(raw))
            return
        try:
            await self._client.set(self.prefix + key, raw, px=max(1, int(ttl_s * 1000)))
        except (RedisError, OSError) as exc:
            self._failed(exc)

    def _skip_large(self, key: str, size: int | None) -> None:
        self.too_large += 1
        log.log(
            logging.INFO if self.too_large == 1 else logging.DEBUG,
            "not caching %s in Redis: %s encoded is above max_value_bytes %d (counted in "
            "stats()['redis']['too_large'])",
            key,
            "certainly more" if size is None else f"{size} bytes",
            self.max_value_bytes,
        )

    async def delete(self, key: str) -> None:
        if not self._usable():
            return
        try:
            await self._client.delete(self.prefix + key)
        except (RedisError, OSError) as exc:
            self._failed(exc)

    async def clear(self, pattern: str = "*") -> int:
        """Delete the keys under the prefix that match ``pattern``; returns how many."""
        if not self._usable():
            return 0
        count = 0
        try:
            async for name in self._client.scan_iter(match=self.prefix + pattern, count=500):
                count += int(await self._client.delete(name))
        except (RedisError, OSError) as exc:
            self._failed(exc)
        return count

    async def aclose(self) -> None:
        await self._client.aclose()

    def _usable(self) -> bool:
        if self._down_until > self.clock():
            self.skipped += 1
            return False
        return True

    def _failed(self, exc: BaseException) -> None:
        self.errors += 1
        if self._down_until <= self.clock():
            log.warning(
                "Redis at %s failed (%s); skipping it for %.0f s",
                self._where,
                exc,
                self.retry_after_s,
            )
        self._down_until = self.clock() + self.retry_after_s
