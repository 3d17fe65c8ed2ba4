"""Single flight: concurrent identical misses share one upstream call.

The shared work runs in its own task, so one caller's cancellation (or ``wait_for`` timeout)
does not cancel it for the others: each caller awaits it through ``asyncio.shield``. The entry
is removed when the task finishes, so the map never grows past the keys in flight (per-key lock
maps that are never cleaned are a known leak, see notes/caching.md).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["SingleFlight"]

T = TypeVar("T")


class SingleFlight(Generic[T]):
    """Runs at most one ``fn()`` per key at a time and gives its result to every caller."""

    def __init__(self) -> None:
        self._flights: dict[Hashable, asyncio.Task[T]] = {}
        self.started = 0
        self.joined = 0

    def __len__(self) -> int:
        return len(self._flights)

    def in_flight(self, key: Hashable) -> bool:
        """True while a call for ``key`` is running."""
        return key in self._flights

    async def do(self, key: Hashable, fn: Callable[[], Awaitable[T]]) -> T:
        task = self._flights.get(key)
        if task is None:
            task = asyncio.ensure_future(fn())
            self._flights[key] = task
            self.started += 1
            task.add_done_callback(functools.partial(self._done, key))
        else:
            self.joined += 1
        return await asyncio.shield(task)

    def _done(self, key: Hashable, task: asyncio.Task[T]) -> None:
        if self._flights.get(key) is task:
            del self._flights[key]
        if not task.cancelled():
            # Mark the exception retrieved: every waiter may have gone, and an unobserved
            # failure must not be reported as "Task exception was never retrieved".
            task.exception()
