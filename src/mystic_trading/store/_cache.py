"""The query-result cache: TTL, LRU-bounded, invalidated by writes to the tables read.

A key is the tuple (statement, parameters). The dict hashes it, and because equal keys are
also compared in full, a hash collision can never return another query's result (a digest
key could). Each entry remembers the generation of every table its query read; a write bumps
the generation of the tables it wrote, so every entry that read them becomes a miss without
a scan. The generation is taken *before* the read runs: a write that commits while the read
is in flight leaves the entry already stale, never serving a pre-write result as fresh.

The cache is per process. A write from another process is seen once the entry's TTL ends
(``query_cache_ttl_s``, 5 minutes by default); reads that carry state between processes
(control level, bans, tickers, books) are therefore not cached at all (see ``_store``).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Final

__all__ = ["MISS", "QueryCache"]


class _Miss:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISS"


MISS: Final = _Miss()


# An entry: (value, expires, tables, generations). A plain tuple, not a dataclass: it is
# built on every cached miss, where a dataclass __init__ would cost three times as much.
_Entry = tuple[Any, float, tuple[str, ...], tuple[int, ...]]


class QueryCache:
    """Bounded TTL cache of read results; ``ttl_s == 0`` turns it off."""

    def __init__(
        self,
        *,
        ttl_s: float,
        max_entries: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl_s
        self._max = max_entries
        self._clock = clock
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._generations: dict[str, int] = {}
        self.hits = 0
        self.misses = 0
        self.evictions = 0
        self.invalidations = 0

    @property
    def enabled(self) -> bool:
        return self._ttl > 0

    def generations(self, tables: tuple[str, ...]) -> tuple[int, ...]:
        """The current generation of each table, to pass to :meth:`put` after the read."""
        gens = self._generations
        if len(tables) == 1:  # nearly every read: skip the generator
            return (gens.get(tables[0], 0),)
        return tuple(gens.get(t, 0) for t in tables)

    def get(self, key: Hashable) -> Any:
        """The cached value, or :data:`MISS` (absent, expired or invalidated)."""
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return MISS
        value, expires, tables, generations = entry
        if expires <= self._clock() or generations != self.generations(tables):
            del self._entries[key]
            self.misses += 1
            return MISS
        self._entries.move_to_end(key)
        self.hits += 1
        return value

    def put(
        self, key: Hashable, value: Any, tables: tuple[str, ...], generations: tuple[int, ...]
    ) -> None:
        """Keep ``value``, read from ``tables`` when they were at ``generations``."""
        if self._ttl <= 0 or generations != self.generations(tables):
            return
        entries = self._entries
        if key in entries:
            del entries[key]  # so the new entry goes to the most recent end
        entries[key] = (value, self._clock() + self._ttl, tables, generations)
        while len(entries) > self._max:
            entries.popitem(last=False)
            self.evictions += 1

    def invalidate(self, tables: tuple[str, ...]) -> None:
        """A write to ``tables`` committed: every entry that read one of them is stale."""
        gens = self._generations
        for table in tables:
            gens[table] = gens.get(table, 0) + 1
        self.invalidations += 1

    def clear(self, predicate: Callable[[Hashable], bool] | None = None) -> int:
        """Drop every entry, or those whose key (statement, parameters) matches
        ``predicate``; returns how many. What ``mystic clear --query-cache`` does in each
        process, so reads go to the database again (a write by another process is otherwise
        seen only when the entry's TTL ends)."""
        entries = self._entries
        if predicate is None:
            count = len(entries)
            entries.clear()
            return count
        doomed = [key for key in entries if predicate(key)]
        for key in doomed:
            del entries[key]
        return len(doomed)

    def stats(self) -> dict[str, Any]:
        lookups = self.hits + self.misses
        return {
            "entries": len(self._entries),
            "max_entries": self._max,
            "ttl_s": self._ttl,
            "hits": self.hits,
            "misses": self.misses,
            "hit_rate": self.hits / lookups if lookups else 0.0,
            "evictions": self.evictions,
            "invalidations": self.invalidations,
        }
