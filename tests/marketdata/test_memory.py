"""L1 memory cache: TTL, stale bound, LRU eviction by entries and by bytes."""

from __future__ import annotations

import pytest

from mystic_trading.marketdata.memory import MemoryCache


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_entry_is_fresh_then_stale_then_gone() -> None:
    """An entry is fresh for ttl, readable as stale for stale_s more, then absent."""
    clock = Clock()
    cache = MemoryCache(10, 10_000, clock)
    cache.set("k", "v", ttl_s=1.0, stale_s=5.0, size=10)
    entry = cache.get("k")
    assert entry is not None
    assert entry.fresh_until > clock()
    clock.t += 2
    entry = cache.get("k")
    assert entry is not None
    assert entry.fresh_until <= clock() < entry.stale_until
    clock.t += 5
    assert cache.get("k") is None
    assert len(cache) == 0
    assert cache.bytes == 0


def test_least_recently_used_is_evicted_by_entry_count() -> None:
    """Past max_entries, the least recently read entry goes first."""
    cache = MemoryCache(2, 10_000, Clock())
    cache.set("a", 1, 10, 0, 1)
    cache.set("b", 2, 10, 0, 1)
    assert cache.get("a") is not None  # a is now more recent than b
    cache.set("c", 3, 10, 0, 1)
    assert cache.get("b") is None
    assert cache.get("a") is not None
    assert cache.get("c") is not None
    assert cache.evictions == 1


def test_byte_bound_evicts_until_it_fits() -> None:
    """Adding a large value evicts old entries until the byte total fits."""
    cache = MemoryCache(100, 1000, Clock())
    for i in range(10):
        cache.set(i, i, 10, 0, 100)
    assert cache.bytes == 1000
    cache.set("big", "x", 10, 0, 450)
    assert cache.bytes <= 1000
    assert cache.get(0) is None
    assert cache.get(4) is None
    assert cache.get(5) is not None
    assert cache.get("big") is not None


def test_value_larger_than_the_cache_is_not_kept() -> None:
    """A value bigger than max_bytes is never stored and evicts nothing."""
    cache = MemoryCache(100, 1000, Clock())
    cache.set("a", 1, 10, 0, 10)
    cache.set("huge", 2, 10, 0, 5000)
    assert cache.get("huge") is None
    assert cache.get("a") is not None


def test_set_says_whether_it_kept_the_value_and_counts_refusals() -> None:
    """set() returns False for a value larger than the whole cache, so a caller never looks
    it up as if it were there (review M3: a raw KeyError in layered.py), and counts it."""
    cache = MemoryCache(100, 1000, Clock())
    assert cache.set("a", 1, 10, 0, 10) is True
    assert cache.set("huge", 2, 10, 0, 5000) is False
    assert cache.refused == 1
    assert "huge" not in cache.data


def test_replacing_a_key_adjusts_bytes() -> None:
    """Setting a key again replaces its size in the total."""
    cache = MemoryCache(100, 1000, Clock())
    cache.set("a", 1, 10, 0, 300)
    cache.set("a", 2, 10, 0, 100)
    assert cache.bytes == 100
    entry = cache.get("a")
    assert entry is not None
    assert entry.answer == 2


def test_clear_by_predicate() -> None:
    """clear(predicate) drops only matching keys and reports how many."""
    cache = MemoryCache(100, 1000, Clock())
    for key in [("t", "BTC"), ("t", "ETH"), ("c", "BTC")]:
        cache.set(key, 1, 10, 0, 1)
    assert cache.clear(lambda k: isinstance(k, tuple) and k[1] == "BTC") == 2
    assert len(cache) == 1
    assert cache.clear() == 1
    assert cache.bytes == 0


def test_bounds_must_be_positive() -> None:
    """A zero bound is a clear error, not a cache that holds nothing."""
    with pytest.raises(ValueError, match="positive"):
        MemoryCache(0, 10)
