"""The query cache (hits, misses, TTL, invalidation on write) and the query metrics."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from mystic_trading.store import QueryCache, QueryMetrics, Store

from .conftest import BTC, MIN, FakeClock, OpenStore, candle

P = "binance"


async def test_repeated_read_hits_and_write_invalidates(store: Store) -> None:
    """A repeated read is a hit; a write to the table turns the next read into a fresh miss."""
    await store.candles.upsert(P, [candle(0)])
    assert len(await store.candles.range(P, BTC, "1m", 0, 2 * MIN)) == 1
    assert len(await store.candles.range(P, BTC, "1m", 0, 2 * MIN)) == 1
    assert (store.cache.hits, store.cache.misses) == (1, 1)
    await store.candles.upsert(P, [candle(MIN)])
    assert len(await store.candles.range(P, BTC, "1m", 0, 2 * MIN)) == 2
    assert (store.cache.hits, store.cache.misses) == (1, 2)


async def test_write_to_another_table_keeps_entry(store: Store) -> None:
    """A coverage write leaves cached candle reads valid."""
    await store.candles.range(P, BTC, "1m", 0, MIN)
    await store.candles.mark_covered(P, BTC, "1m", 0, MIN)
    await store.candles.range(P, BTC, "1m", 0, MIN)
    assert store.cache.hits == 1


async def test_entry_expires_after_ttl(make_store: OpenStore, monotonic: FakeClock) -> None:
    """An entry older than query_cache_ttl_s is a miss (time injected, not slept)."""
    store = await make_store(query_cache_ttl_s=300)
    await store.candles.range(P, BTC, "1m", 0, MIN)
    monotonic.advance(299)
    await store.candles.range(P, BTC, "1m", 0, MIN)
    monotonic.advance(2)
    await store.candles.range(P, BTC, "1m", 0, MIN)
    assert (store.cache.hits, store.cache.misses) == (1, 2)


async def test_cached_range_cannot_be_corrupted_by_caller(store: Store) -> None:
    """A returned range is read-only, and a hit returns the same candles as the miss."""
    await store.candles.upsert(P, [candle(0)])
    first = await store.candles.range(P, BTC, "1m", 0, MIN)
    mine = list(first)
    mine.clear()
    with pytest.raises(TypeError):
        first[0] = candle(MIN)  # type: ignore[index]
    assert not hasattr(first, "append") and not hasattr(first, "clear")
    again = await store.candles.range(P, BTC, "1m", 0, MIN)
    assert store.cache.hits == 1 and again == [candle(0)]


def test_cache_is_bounded_lru() -> None:
    """Past max_entries the least recently used entry goes first."""
    cache = QueryCache(ttl_s=10, max_entries=2, clock=FakeClock())
    for key in ("a", "b"):
        cache.put(key, key.upper(), ("t",), cache.generations(("t",)))
    assert cache.get("a") == "A"
    cache.put("c", "C", ("t",), cache.generations(("t",)))
    assert cache.get("b") is not None and cache.get("b") is not cache.get("a")
    assert cache.stats()["evictions"] == 1 and cache.stats()["entries"] == 2


def test_read_racing_a_write_is_not_cached() -> None:
    """A result whose tables changed while it was read is not kept."""
    cache = QueryCache(ttl_s=10, max_entries=10, clock=FakeClock())
    gens = cache.generations(("candles",))
    cache.invalidate(("candles",))
    cache.put("k", "old", ("candles",), gens)
    assert cache.stats()["entries"] == 0


def _ticking(step: float) -> Callable[[], float]:
    now = [0.0]

    def timer() -> float:
        now[0] += step
        return now[0]

    return timer


async def test_metrics_count_latency_and_errors(make_store: OpenStore) -> None:
    """Each kind counts executions and errors and reports p50/p95/p99."""
    store = await make_store(timer=_ticking(0.001), query_cache_ttl_s=0)
    for _ in range(3):
        await store.candles.range(P, BTC, "1m", 0, MIN)
    stats = store.stats()["queries"]["candles.range"]
    assert stats["count"] == 3 and stats["errors"] == 0
    assert stats["p50_ms"] == pytest.approx(1.0) and stats["p99_ms"] == pytest.approx(1.0)


async def test_slow_query_is_logged_without_parameters(
    make_store: OpenStore, caplog: pytest.LogCaptureFixture
) -> None:
    """A statement over slow_query_ms is logged with its kind; the audit reason is not."""
    store = await make_store(timer=_ticking(0.5), slow_query_ms=100)
    with caplog.at_level(logging.WARNING, logger="mystic_trading.store"):
        await store.control.save_level(P, "moderate", actor="ops", reason="s3cr3t-reason")
    assert "slow query control.save_level" in caplog.text
    assert "s3cr3t" not in caplog.text


def test_slow_query_log_is_rate_limited_per_kind(caplog: pytest.LogCaptureFixture) -> None:
    """Under a backlog each kind logs once per interval, counting what it left out."""
    now = [0.0]
    metrics = QueryMetrics(slow_query_ms=100, timer=lambda: now[0])
    # ticker.save and book.save are routine writes: their slow lines are INFO (new-user D11).
    with caplog.at_level(logging.INFO, logger="mystic_trading.store"):
        for second in range(5):
            now[0] = float(second)
            metrics.observe("ticker.save", 0.4)
        metrics.observe("book.save", 0.4)
        now[0] = 11.0
        metrics.observe("ticker.save", 0.4)
    lines = [r.getMessage() for r in caplog.records]
    assert len([m for m in lines if "ticker.save" in m]) == 2
    assert len([m for m in lines if "book.save" in m]) == 1
    assert "4 more slow since the last line" in lines[-1]
    assert metrics.snapshot()["ticker.save"]["slow"] == 6


def test_percentiles_come_from_a_bounded_reservoir() -> None:
    """Only the latest samples are kept, so memory stays bounded."""
    metrics = QueryMetrics(slow_query_ms=1e9)
    for i in range(5000):
        metrics.observe("x", i / 1000)
    snap = metrics.snapshot()["x"]
    assert snap["count"] == 5000
    assert snap["p50_ms"] > 4000  # the oldest samples have left the reservoir
