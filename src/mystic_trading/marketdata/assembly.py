"""Build MarketData and every layer under it from Settings, and close them in order."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from mystic_trading.config import Settings
from mystic_trading.errors import ConfigError
from mystic_trading.marketdata.facade import MarketData
from mystic_trading.marketdata.redis_layer import RedisLayer
from mystic_trading.monitor import (
    AlertEngine,
    Controller,
    HealthChecker,
    HeartbeatPublisher,
    ProcessRegistry,
    RedisHeartbeats,
    heartbeat_figures,
)
from mystic_trading.monitor._optimize import AutoOptimizer
from mystic_trading.providers._clock import ExchangeClock
from mystic_trading.providers.binance import BinanceProvider
from mystic_trading.providers.venue import (
    LEGACY_VENUE,
    declared_venue,
    is_known_exchange,
    venue_from_url,
    venue_of,
)
from mystic_trading.store import Store, open_store
from mystic_trading.throttle import Budget, Quota, RedisQuota, Throttler, burst_for

__all__ = ["assemble", "resolve_venue"]

log = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def assemble(
    settings: Settings, *, clock: Callable[[], float] = time.monotonic
) -> AsyncIterator[MarketData]:
    """Store (migrated), Redis layers if configured, throttler, provider, then MarketData.

    ``clock`` times the caches' freshness and Redis's retry (the throttler and the exchange
    clock keep the real monotonic clock).

    The exchange is not contacted here: a process can start (and serve what its store and
    caches hold) while the exchange is down. The budget is corrected from exchangeInfo on the
    first request that needs it.
    """
    redis_url = None if settings.redis_url is None else settings.redis_url.get_secret_value()
    async with contextlib.AsyncExitStack() as stack:
        store = await open_store(settings.store)
        stack.push_async_callback(store.aclose)
        venue, declared, confirmed = await resolve_venue(settings, store)
        if await store.venues.holds(LEGACY_VENUE):
            log.warning(
                "this store holds rows written before Mystic recorded which exchange they came "
                "from (venue %r): they may be the built-in sandbox's (mystic demo) or "
                "Binance's, so none of them is served. `mystic db venues` lists them; "
                "`mystic db venues move %s binance-spot --yes` if you know they are "
                "Binance's, `mystic db venues drop %s --yes` to delete them.",
                LEGACY_VENUE,
                LEGACY_VENUE,
                LEGACY_VENUE,
            )
        quota: Quota | None = None
        redis_layer: RedisLayer | None = None
        if redis_url is not None:
            quota = RedisQuota(
                redis_url,
                prefix="mystic:throttle",
                expected_processes=settings.throttle.expected_processes,
            )
            redis_layer = RedisLayer(redis_url, prefix=f"mystic:md:{venue}:", clock=clock)
            stack.push_async_callback(redis_layer.aclose)
        # One clock of the exchange for the provider (finality, serverTime) and the throttler
        # (the exchange's fixed weight windows, placed on its clock within its error bound).
        exchange_clock = ExchangeClock(resync_s=settings.provider.clock_resync_s)
        throttler = Throttler(
            venue,
            Budget(
                limit=settings.throttle.fallback_weight_per_minute,
                window_s=60.0,
                max_weight=burst_for(settings.throttle.fallback_weight_per_minute),
            ),
            settings=settings.throttle,
            quota=quota,
            control=store.control,
            exchange_ms=exchange_clock.now_ms,
            exchange_error_ms=exchange_clock.error_ms,
        )
        stack.push_async_callback(throttler.aclose)
        await throttler.start()
        provider = BinanceProvider(
            str(settings.provider.base_url),
            throttler,
            venue=venue,
            declared=declared,
            clock=exchange_clock,
            final_grace_ms=round(settings.provider.final_grace_s * 1000),
            connect_timeout_s=settings.provider.connect_timeout_s,
            read_timeout_s=settings.provider.read_timeout_s,
            max_connections=settings.provider.max_connections,
        )
        stack.push_async_callback(provider.aclose)
        md = MarketData(provider, store, cache=settings.cache, redis=redis_layer, clock=clock)
        stack.push_async_callback(md.aclose)
        if not confirmed:
            provider.confirmed = False
            base_url = provider.base_url
            layer = redis_layer

            def identified(found: str) -> None:
                # Everything keyed by the venue follows: cache keys, throttle state (level,
                # bans, the shared quota), and the record a later start falls back on.
                throttler.provider = found
                if layer is not None:
                    layer.prefix = f"mystic:md:{found}:"
                md.layers.spawn(store.venues.remember(base_url, found, provider.declared))

            provider.on_identified = identified
        await md.control.start()
        if settings.monitor.enabled:
            await _monitor(md, settings, redis_url, stack)
        else:
            # No heartbeats: recommendations and optimize read this process's own figures.
            md.optimizer = AutoOptimizer(
                Controller(settings, store),
                venue=lambda: md.provider.venue,
                process_id=lambda: None,
            )
        yield md


async def _monitor(
    md: MarketData, settings: Settings, redis_url: str | None, stack: contextlib.AsyncExitStack
) -> None:
    """This process's heartbeat (every ``monitor.heartbeat_s``) and health rounds (every
    ``monitor.interval_s``), closed before MarketData is."""
    beats = None if redis_url is None else RedisHeartbeats(redis_url)
    if beats is not None:
        stack.push_async_callback(beats.aclose)
    auto = settings.monitor.optimize.auto
    publisher: HeartbeatPublisher | None = None
    optimizer = AutoOptimizer(
        Controller(settings, md.store, heartbeats=beats),
        venue=lambda: md.provider.venue,
        process_id=lambda: None if publisher is None else publisher.process_id,
    )
    md.optimizer = optimizer

    def figures() -> dict[str, Any]:
        # Whether this process takes part in auto-optimize travels in its heartbeat: the
        # leader is the oldest alive process that does (monitor/_optimize.py).
        found = {**heartbeat_figures(md.stats()), "auto_optimize": auto}
        # The counters over the last minutes, for a reader with no ring of its own (one-shot
        # recommendations and optimize); observe() keeps `found` before it gets them.
        recent = optimizer.observe(found)
        if recent is not None:
            found["recent"] = recent
        return found

    publisher = HeartbeatPublisher(
        md.store,
        figures,
        venue=lambda: md.provider.venue,
        redis=beats,
        heartbeat_s=settings.monitor.heartbeat_s,
    )
    alerts = AlertEngine.from_settings(
        md.store,
        settings.monitor.alerts,
        venue=lambda: md.provider.venue,
        host=publisher.host,
        pid=publisher.pid,
        interval_s=settings.monitor.interval_s,
    )
    checker = HealthChecker(
        md.store,
        figures,
        thresholds=settings.monitor.health,
        redis=beats,
        registry=ProcessRegistry(md.store, beats),
        publisher=publisher,
        loop_lag=publisher.loop_lag,
        interval_s=settings.monitor.interval_s,
        alerts=alerts if settings.monitor.alerts.enabled else None,
    )
    md.monitor = checker
    md.alert_engine = alerts
    # Closed in reverse: the optimizer, the health rounds, then the alerts they raise (whose
    # webhook gets webhook_timeout_s to send what is queued), then the heartbeat.
    stack.push_async_callback(publisher.aclose)
    stack.push_async_callback(alerts.aclose)
    stack.push_async_callback(checker.aclose)
    publisher.start()
    checker.start()
    if auto:
        optimizer.start()
        stack.push_async_callback(optimizer.aclose)


async def resolve_venue(settings: Settings, store: Store) -> tuple[str, str | None, bool]:
    """The venue this process keys its data by, what the exchange declares (if anything),
    and whether that is confirmed.

    Binance's own hosts are known by name. Any other exchange is asked who it is (one
    weight-1 request); one that cannot be reached is taken to be what its base URL was when
    last reached (kept in the store), so a process that starts during an outage still
    serves what it kept; with no record either, the base URL's venue stands until the
    exchange's first answer says (unconfirmed). ``provider.venue`` overrides the name,
    never what an exchange declares.
    """
    base_url = str(settings.provider.base_url).rstrip("/")
    configured = settings.provider.venue
    if is_known_exchange(base_url):
        return configured or venue_from_url(base_url), None, True
    reached, declared = await declared_venue(
        base_url,
        timeout_s=settings.provider.connect_timeout_s + settings.provider.read_timeout_s,
    )
    if reached:
        if configured is not None and declared is not None and configured != declared:
            raise ConfigError(
                f"provider.venue is {configured!r} but the exchange at {base_url} declares "
                f"itself {declared!r}; remove the setting or point base_url elsewhere",
                setting="provider.venue",
                value=configured,
            )
        venue = configured or venue_of(base_url, declared)
        await store.venues.remember(base_url, venue, declared)
        return venue, declared, True
    record = await store.venues.known(base_url)
    if record is not None:
        log.warning(
            "the exchange at %s is unreachable; keying data as %s, what it was when last reached",
            base_url,
            record.venue,
        )
        return record.venue, record.declared, True
    return configured or venue_from_url(base_url), None, False
