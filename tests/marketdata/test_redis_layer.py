"""L2 Redis layer against a real Redis: round trips, TTL, and a dead Redis skipped."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
import redis.asyncio as aioredis

from mystic_trading.config import CacheSettings
from mystic_trading.marketdata.answer import Answer, Layer, stamp_ms
from mystic_trading.marketdata.codec import (
    ROWS_PER_SLICE,
    WIRE_VERSION,
    decode,
    decode_async,
    encode,
    encode_async,
)
from mystic_trading.marketdata.layered import Layers
from mystic_trading.marketdata.redis_layer import MAX_VALUE_BYTES, RedisLayer
from mystic_trading.marketdata.stats import MarketDataStats
from mystic_trading.models import Candle, Interval, OrderBook, Symbol, Ticker

BTC = Symbol("BTC", "USDT")


def candle(t: int, closed: bool = True) -> Candle:
    d = Decimal
    return Candle(
        BTC, Interval.M1, t, d("12345678.12345678"), d("2"), d("0.5"), d("1.5"), d("10"),
        t + 59_999, d("15.00000001"), 3, d("4"), d("6"), closed,
    )  # fmt: skip


VALUES = [
    Ticker(BTC, Decimal("60740.00000000"), 5, bid=Decimal("1"), change_pct=Decimal("-3.003")),
    OrderBook(BTC, 9, ((Decimal("2"), Decimal("0.1")),), ((Decimal("3"), Decimal("0.2")),), 4),
    [candle(0), candle(60_000, closed=False)],
    [],
]


@pytest.mark.parametrize("value", VALUES, ids=["ticker", "book", "candles", "empty"])
def test_codec_round_trip_is_exact(value: object) -> None:
    """Encoding then decoding gives equal values, decimals exact, layer set by the reader."""
    answer = decode(encode(Answer(value, Layer.UPSTREAM, 123)))
    assert answer.value == value
    assert answer.layer is Layer.REDIS
    assert answer.fetched_at == 123


@pytest.fixture
async def layer(redis_url: str) -> RedisLayer:
    return RedisLayer(redis_url, prefix=f"test:{uuid.uuid4().hex}:")


@pytest.mark.redis
async def test_set_get_and_expiry(layer: RedisLayer) -> None:
    """A stored answer comes back from Redis until its TTL passes."""
    answer = Answer(VALUES[0], Layer.UPSTREAM, 1)
    assert await layer.get("t:BTC") is None
    await layer.set("t:BTC", answer, ttl_s=0.05)
    got = await layer.get("t:BTC")
    assert got is not None
    assert got.value == answer.value
    assert got.layer is Layer.REDIS
    assert (layer.hits, layer.misses) == (1, 1)
    assert await layer._client.pttl(layer.prefix + "t:BTC") <= 50
    await layer.clear()
    assert await layer.get("t:BTC") is None
    await layer.aclose()


@pytest.mark.redis
async def test_undecodable_entry_is_dropped(layer: RedisLayer) -> None:
    """Garbage under a key is a miss and is deleted, not an exception."""
    await layer._client.set(layer.prefix + "bad", b"{not json")
    assert await layer.get("bad") is None
    assert await layer._client.exists(layer.prefix + "bad") == 0
    await layer.aclose()


async def test_dead_redis_is_skipped_then_retried() -> None:
    """With Redis down, calls return at once as skipped until retry_after_s passes."""
    now = [0.0]
    layer = RedisLayer(
        "redis://127.0.0.1:1/0", retry_after_s=5.0, socket_timeout_s=0.2, clock=lambda: now[0]
    )
    assert await layer.get("k") is None
    assert layer.errors == 1
    assert not layer.available
    await layer.set("k", Answer(VALUES[0], Layer.UPSTREAM, 1), ttl_s=1)
    assert await layer.get("k") is None
    assert layer.skipped == 2
    assert layer.errors == 1
    now[0] = 6.0
    assert layer.available
    assert await layer.get("k") is None
    assert layer.errors == 2
    await layer.aclose()


def test_the_wire_format_is_versioned_json() -> None:
    """Entries are JSON (readable with redis-cli) carrying the format's version, so an entry
    of another version is a miss, never a misread."""
    for value in VALUES:
        body = json.loads(encode(Answer(value, Layer.UPSTREAM, 1)))
        assert body["v"] == WIRE_VERSION


async def test_a_large_window_is_coded_a_slice_at_a_time() -> None:
    """Encoding and decoding a window of thousands of candles hands the event loop back
    between slices, so other requests are served meanwhile (review M3: tens of MB of
    json.dumps ran on the loop in one go), and gives the same bytes and values."""
    answer = Answer([candle(i * 60_000) for i in range(4 * ROWS_PER_SLICE)], Layer.UPSTREAM, 7)
    turns = 0
    done = False

    async def other_requests() -> None:
        nonlocal turns
        while not done:
            turns += 1
            await asyncio.sleep(0)

    task = asyncio.ensure_future(other_requests())
    await asyncio.sleep(0)
    start = turns
    raw = await encode_async(answer)
    encoding = turns - start
    start = turns
    back = await decode_async(raw)
    decoding = turns - start
    done = True
    await task
    assert encoding >= 3
    assert decoding >= 3
    assert raw == encode(answer)
    assert back.value == answer.value
    assert back.fetched_at == 7


@pytest.fixture
async def raw_redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """A plain client on the same Redis, to see and plant entries as another version would."""
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.mark.redis
async def test_an_entry_of_the_old_format_is_a_miss(
    layer: RedisLayer, raw_redis: aioredis.Redis
) -> None:
    """An entry an older Mystic wrote (stdlib JSON, no version) is a miss and is dropped."""
    old = {"k": "ticker", "s": "BTC/USDT", "p": "1.5", "t": 5, "x": [None] * 10, "f": 1}
    await raw_redis.set(layer.prefix + "t|BTCUSDT", json.dumps(old).encode())
    assert await layer.get("t|BTCUSDT") is None
    assert (layer.hits, layer.misses) == (0, 1)
    assert await raw_redis.exists(layer.prefix + "t|BTCUSDT") == 0
    await layer.aclose()


@pytest.mark.redis
async def test_a_value_above_the_cap_is_skipped_and_counted(
    redis_url: str, raw_redis: aioredis.Redis
) -> None:
    """A value whose encoding is above max_value_bytes is not sent (review M3: tens of MB
    sent with a 0.5 s socket timeout marked Redis down for every kind of data): it is
    counted in stats, and Redis stays available for everything else."""
    layer = RedisLayer(redis_url, prefix=f"test:{uuid.uuid4().hex}:", max_value_bytes=20_000)
    big = Answer([candle(i * 60_000) for i in range(1000)], Layer.UPSTREAM, 1)
    small = Answer([candle(0), candle(60_000)], Layer.UPSTREAM, 1)
    await layer.set("c|big", big, ttl_s=60)
    await layer.set("c|small", small, ttl_s=60)
    assert await raw_redis.exists(layer.prefix + "c|big") == 0
    got = await layer.get("c|small")
    assert got is not None
    assert got.value == small.value
    stats = layer.stats()
    assert stats["too_large"] == 1
    assert stats["max_value_bytes"] == 20_000
    assert stats["available"] is True
    assert stats["errors"] == 0
    await layer.aclose()


def test_the_default_cap_is_stated_in_stats() -> None:
    """Without a cap given, the default (MAX_VALUE_BYTES) is the cap, and stats say it."""
    layer = RedisLayer("redis://127.0.0.1:1/0")
    assert layer.stats()["max_value_bytes"] == MAX_VALUE_BYTES
    assert layer.stats()["too_large"] == 0


@pytest.mark.redis
async def test_a_value_memory_refuses_is_served_from_redis_in_another_process(
    redis_url: str,
) -> None:
    """A process whose memory cannot hold a window another process put in Redis is answered
    from Redis (review M3: from_redis() said True, then memory.data[key] raised KeyError)."""
    prefix = f"test:{uuid.uuid4().hex}:"
    value = [candle(i * 60_000) for i in range(1000)]  # about 1.1 MiB as the memory counts

    async def fetch() -> Answer[object]:
        return Answer(value, Layer.UPSTREAM, stamp_ms())

    writer = Layers(
        CacheSettings(), RedisLayer(redis_url, prefix=prefix), MarketDataStats(), time.monotonic
    )
    assert (await writer.read("candles", "c|w", 60.0, fetch)).layer is Layer.UPSTREAM
    await writer.aclose()  # its Redis write, in the background, has ended

    async def must_not_fetch() -> Answer[object]:
        raise AssertionError("Redis holds the answer")

    small = CacheSettings(memory_max_mib=0.1)
    reader = Layers(small, RedisLayer(redis_url, prefix=prefix), MarketDataStats(), time.monotonic)
    got = await reader.read("candles", "c|w", 60.0, must_not_fetch)
    assert got.layer is Layer.REDIS
    assert got.value == value
    assert len(reader.memory) == 0
    assert reader.memory.refused == 1
    again = await reader.read("candles", "c|w", 60.0, must_not_fetch)  # Redis again
    assert again.layer is Layer.REDIS
    for layers in (writer, reader):
        assert layers.redis is not None
        await layers.redis.clear()
        await layers.redis.aclose()
