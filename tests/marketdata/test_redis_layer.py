"""L2 Redis layer against a real Redis: round trips, TTL, and a dead Redis skipped."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from mystic_trading.marketdata.answer import Answer, Layer
from mystic_trading.marketdata.codec import decode, encode
from mystic_trading.marketdata.redis_layer import RedisLayer
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
