"""Build MarketData and every layer under it from Settings, and close them in order."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from mystic_trading.config import Settings
from mystic_trading.marketdata.facade import MarketData
from mystic_trading.marketdata.redis_layer import RedisLayer
from mystic_trading.providers.binance import BinanceProvider
from mystic_trading.store import open_store
from mystic_trading.throttle import Budget, Quota, RedisQuota, Throttler

__all__ = ["assemble"]

log = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def assemble(settings: Settings) -> AsyncIterator[MarketData]:
    """Store (migrated), Redis layers if configured, throttler, provider, then MarketData.

    The exchange is not contacted here: a process can start (and serve what its store and
    caches hold) while the exchange is down. The budget is corrected from exchangeInfo on the
    first request that needs it.
    """
    redis_url = None if settings.redis_url is None else settings.redis_url.get_secret_value()
    async with contextlib.AsyncExitStack() as stack:
        store = await open_store(settings.store)
        stack.push_async_callback(store.aclose)
        quota: Quota | None = None
        redis_layer: RedisLayer | None = None
        if redis_url is not None:
            quota = RedisQuota(
                redis_url,
                prefix="mystic:throttle",
                expected_processes=settings.throttle.expected_processes,
            )
            redis_layer = RedisLayer(redis_url)
            stack.push_async_callback(redis_layer.aclose)
        throttler = Throttler(
            settings.provider.name,
            Budget(limit=settings.throttle.fallback_weight_per_minute, window_s=60.0),
            settings=settings.throttle,
            quota=quota,
            control=store.control,
        )
        stack.push_async_callback(throttler.aclose)
        await throttler.start()
        provider = BinanceProvider(
            str(settings.provider.base_url),
            throttler,
            connect_timeout_s=settings.provider.connect_timeout_s,
            read_timeout_s=settings.provider.read_timeout_s,
            max_connections=settings.provider.max_connections,
        )
        stack.push_async_callback(provider.aclose)
        md = MarketData(provider, store, cache=settings.cache, redis=redis_layer)
        stack.push_async_callback(md.aclose)
        yield md
