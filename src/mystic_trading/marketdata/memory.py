"""L1: the per-process memory cache, bounded in entries and in bytes, with a TTL per entry.

Written by hand rather than with cachetools' TTLCache: the hot path of ``MarketData.ticker``
must cost less than one cachetools ``get`` (about 2.8 us here), bounds must be in bytes as well
as entries, and expired entries must stay readable for stale-while-revalidate and
stale-if-error until they are evicted or pass their stale bound. One ``OrderedDict`` gives LRU
order; an entry is a small slotted object so a hit allocates nothing.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

__all__ = ["MemoryCache", "MemoryEntry"]


class MemoryEntry:
    """One cached answer: fresh until ``fresh_until``, usable as stale until ``stale_until``."""

    __slots__ = ("answer", "fresh_until", "size", "stale_until")

    def __init__(self, answer: Any, fresh_until: float, stale_until: float, size: int) -> None:
        self.answer = answer
        self.fresh_until = fresh_until
        self.stale_until = stale_until
        self.size = size


class MemoryCache:
    """An LRU map of key to :class:`MemoryEntry`, bounded by ``max_entries`` and ``max_bytes``.

    Sizes are the caller's estimate of what a value holds (see ``marketdata.sizes``), so the
    byte bound is approximate but proportional: a 1,000-candle slice weighs a thousand times a
    candle. Time is ``clock()`` seconds (monotonic), injected for tests.
    """

    def __init__(
        self,
        max_entries: int,
        max_bytes: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries <= 0 or max_bytes <= 0:
            raise ValueError("max_entries and max_bytes must be positive")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.clock = clock
        self.data: OrderedDict[Hashable, MemoryEntry] = OrderedDict()
        self.bytes = 0
        self.evictions = 0
        self.refused = 0  # values larger than the whole cache, never kept

    def __len__(self) -> int:
        return len(self.data)

    def get(self, key: Hashable) -> MemoryEntry | None:
        """The entry for ``key``, fresh or not, or None when absent or past its stale bound."""
        entry = self.data.get(key)
        if entry is None:
            return None
        if entry.stale_until <= self.clock():
            self._drop(key, entry)
            return None
        self.data.move_to_end(key)
        return entry

    def set(self, key: Hashable, answer: Any, ttl_s: float, stale_s: float, size: int) -> bool:
        """Store ``answer`` fresh for ``ttl_s`` and usable as stale for ``stale_s`` more.

        Returns whether it is kept: a value larger than the whole cache never is (counted in
        ``refused``), so a caller holds on to what it has instead of looking it up here.
        """
        if size > self.max_bytes:
            self.delete(key)  # larger than the whole cache: never kept
            self.refused += 1
            return False
        now = self.clock()
        old = self.data.pop(key, None)
        if old is not None:
            self.bytes -= old.size
        self.data[key] = MemoryEntry(answer, now + ttl_s, now + ttl_s + stale_s, size)
        self.bytes += size
        while len(self.data) > self.max_entries or self.bytes > self.max_bytes:
            _, entry = self.data.popitem(last=False)
            self.bytes -= entry.size
            self.evictions += 1
        return True

    def delete(self, key: Hashable) -> bool:
        entry = self.data.pop(key, None)
        if entry is None:
            return False
        self.bytes -= entry.size
        return True

    def clear(self, predicate: Callable[[Hashable], bool] | None = None) -> int:
        """Drop every entry, or those whose key matches ``predicate``; returns how many."""
        if predicate is None:
            count = len(self.data)
            self.data.clear()
            self.bytes = 0
            return count
        doomed = [k for k in self.data if predicate(k)]
        for key in doomed:
            self.delete(key)
        return len(doomed)

    def _drop(self, key: Hashable, entry: MemoryEntry) -> None:
        del self.data[key]
        self.bytes -= entry.size
