"""Clearing a deployment's caches with no MarketData: what ``mystic clear`` does.

Three layers hold cached answers: each process's memory (L1), the Redis every process of the
deployment shares (L2), and each process's store query cache. Redis is cleared here, once,
for every process (its keys under ``mystic:md:<venue>:``); the two layers inside processes
are cleared by each running process when it reads the audited entry written here in the
store's control log (``marketdata/control_watch.py``, within 2 s). Redis goes first, so a
process that drops its memory copy cannot read the old value back from Redis meanwhile.

Stored candles are never deleted: a closed candle never changes, so the store holds no
stale answer to clear, and fetching history again would spend weight for the same rows.

The Redis key layout is ``marketdata/redis_layer.py``'s (under the prefix
``marketdata/assembly.py`` gives each venue): ``t|SYMBOL`` for a ticker,
``b|SYMBOL|depth`` and ``c|SYMBOL|interval|start|end`` for books and candle windows. This
module reads it through redis-py alone, so ``mystic clear`` needs neither the exchange nor
a MarketData.
"""

from __future__ import annotations

import re
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import (
    AuthenticationError,
    AuthenticationWrongNumberOfArgsError,
    AuthorizationError,
    NoPermissionError,
    RedisError,
)

from mystic_trading.config import mask_url
from mystic_trading.errors import ConfigError
from mystic_trading.models import Symbol, symbol_text
from mystic_trading.store import ControlRepository, Store

__all__ = [
    "CACHE_LAYERS",
    "REDIS_PREFIX",
    "cache_key_patterns",
    "clear_deployment",
    "exchange_form",
]

# Where the cache of each venue lives in Redis: ``<prefix><venue>:<key>`` (assembly.py).
REDIS_PREFIX = "mystic:md:"
_CREDENTIALS = (
    AuthenticationError,
    AuthorizationError,
    AuthenticationWrongNumberOfArgsError,
    NoPermissionError,
)
CACHE_LAYERS = ControlRepository.CACHE_LAYERS
_SEPARATORS = re.compile(r"[/_-]")
_DELETE_BATCH = 500


def exchange_form(symbol: str | Symbol) -> str:
    """The exchange's form of ``symbol`` (``BTC/USDT``, ``btc-usdt`` -> ``BTCUSDT``), what
    cache keys hold; InvalidSymbol naming it when it is not a symbol's text. A glued form is
    taken as it is: clearing needs no split into base and quote, nor the listing."""
    if isinstance(symbol, Symbol):
        return symbol.exchange
    return _SEPARATORS.sub("", symbol_text(symbol))


def asked_layers(*, memory: bool, redis: bool, query_cache: bool) -> list[str]:
    """The layers asked, in ``CACHE_LAYERS`` order; ConfigError when none is."""
    asked = {"memory": memory, "redis": redis, "query_cache": query_cache}
    layers = [layer for layer in CACHE_LAYERS if asked[layer]]
    if not layers:
        raise ConfigError(
            "nothing to clear: ask for at least one of memory, redis and query_cache",
            setting="layers",
            value=asked,
        )
    return layers


def cache_key_patterns(symbol: str | None) -> tuple[str, ...]:
    """Redis MATCH patterns, after a venue's prefix, of the cached answers of ``symbol``
    (exchange form), or of every symbol. Two for a symbol, so that clearing ``BTCUSD`` never
    matches ``BTCUSDT``'s keys (one pattern ``?|BTCUSD*`` did)."""
    if symbol is None:
        return ("*",)
    return (f"?|{symbol}", f"?|{symbol}|*")


async def clear_deployment(
    store: Store,
    *,
    venue: str,
    memory: bool = True,
    redis: bool = True,
    query_cache: bool = True,
    symbol: str | Symbol | None = None,
    actor: str = "operator",
    reason: str = "",
    redis_url: str | None = None,
    redis_prefix: str = REDIS_PREFIX,
    socket_timeout_s: float = 2.0,
) -> dict[str, Any]:
    """Clear the cached answers of ``venue`` (of one symbol, or all) in the layers asked,
    in every running process: Redis's keys here, then an audited control-log entry that
    every process follows within 2 s for its memory and query cache. Stored candles stay.

    Bad input changes nothing: a venue that is no venue id or no layer asked is a
    ConfigError, a symbol that is no symbol's text an InvalidSymbol, both naming it; Redis
    refusing the credentials is a ConfigError naming its URL (password masked). Redis
    unreachable is no error: the entry is still written and the answer says why Redis was
    not cleared (``redis_error``). Returns plain data, JSON-ready.
    """
    # Imported here: the controller will call this module (Controller.clear).
    from mystic_trading.monitor._controller import APPLIED_WITHIN_S, check_venue

    check_venue(venue)
    layers = asked_layers(memory=memory, redis=redis, query_cache=query_cache)
    exchange = None if symbol is None else exchange_form(symbol)
    deleted, error = 0, None
    if redis and redis_url is not None:
        deleted, error = await _clear_redis(
            redis_url, f"{redis_prefix}{venue}:", exchange, socket_timeout_s
        )
    entry = await store.control.note_clear(
        venue, exchange, actor=actor, reason=reason or "cleared", layers=layers
    )
    return {
        "venue": venue,
        "symbol": exchange,
        "layers": layers,
        "redis_configured": redis_url is not None,
        "redis_keys_deleted": deleted,
        "redis_error": error,
        "audit_id": entry,
        "applied_within_s": APPLIED_WITHIN_S,
        "stored_candles_deleted": 0,
    }


async def _clear_redis(
    url: str, prefix: str, exchange: str | None, timeout_s: float
) -> tuple[int, str | None]:
    """Delete the keys of ``exchange`` (or all) under ``prefix``: how many, and the error
    that stopped it (None when all went)."""
    client = aioredis.Redis.from_url(
        url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, retry_on_timeout=False
    )
    deleted = 0
    try:
        for pattern in cache_key_patterns(exchange):
            batch: list[bytes] = []
            async for name in client.scan_iter(match=prefix + pattern, count=_DELETE_BATCH):
                batch.append(name)
                if len(batch) >= _DELETE_BATCH:
                    deleted += int(await client.delete(*batch))
                    batch.clear()
            if batch:
                deleted += int(await client.delete(*batch))
    except _CREDENTIALS as exc:
        raise ConfigError(
            f"Redis at {mask_url(url)} refused the credentials of redis_url "
            f"({type(exc).__name__}); nothing was cleared",
            setting="redis_url",
            value=mask_url(url),
        ) from exc
    except (RedisError, OSError) as exc:
        text = f"{type(exc).__name__}: {exc}".replace(url, mask_url(url))
        return deleted, text[:200]
    finally:
        await client.aclose()
    return deleted, None
