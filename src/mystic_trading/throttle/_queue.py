"""The wait queue: FIFO within two priorities, bounded in length and by each deadline.

One bounded exception to the order, made by the dispatcher: when the head cannot start
before the exchange's window ends, lighter waiters behind it (:meth:`WaitQueue.behind`) may
take what is left of the window; the head keeps its place and goes first in the next one.

Waiters are futures. Nobody polls: the dispatcher is woken by a new head or a timer, a
waiter's deadline is a ``call_later`` timer that fails its future, and a cancelled or expired
waiter is dropped lazily when it reaches the head (its slot in the bound is freed at once).
A waiter leaves the queue before any budget is reserved for it, so giving up costs nothing.
"""

from __future__ import annotations

import asyncio
import enum
from collections import deque
from collections.abc import Callable

from mystic_trading.errors import DeadlinePassed, QueueFull

__all__ = ["Priority", "WaitQueue", "Waiter"]


class Priority(enum.IntEnum):
    """Interactive requests (a user waits) go before background ones (prefetch, backfill)."""

    INTERACTIVE = 0
    BACKGROUND = 1


class Waiter:
    """One queued request: its weight, priority, deadline and the future it waits on."""

    __slots__ = ("deadline", "endpoint", "enqueued_at", "future", "priority", "timer", "weight")

    def __init__(
        self,
        endpoint: str,
        weight: int,
        priority: Priority,
        deadline: float,
        enqueued_at: float,
        future: asyncio.Future[float],
    ) -> None:
        self.endpoint = endpoint
        self.weight = weight
        self.priority = priority
        self.deadline = deadline
        self.enqueued_at = enqueued_at
        self.future = future
        self.timer: asyncio.TimerHandle | None = None

    @property
    def live(self) -> bool:
        """Still waiting (not admitted, expired, failed or cancelled)."""
        return not self.future.done()


class WaitQueue:
    """Bounded two-priority FIFO of waiters; ``on_head_change`` wakes the dispatcher."""

    def __init__(
        self,
        capacity: int,
        *,
        clock: Callable[[], float],
        on_head_change: Callable[[], None] = lambda: None,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity!r}")
        self.capacity = capacity
        self._clock = clock
        self._lanes: list[deque[Waiter]] = [deque(), deque()]
        self._live = 0
        self._on_head_change = on_head_change

    def __len__(self) -> int:
        return self._live

    def push(self, endpoint: str, weight: int, priority: Priority, deadline: float) -> Waiter:
        """Queue a request; QueueFull at once when full, DeadlinePassed if already late."""
        now = self._clock()
        if self._live >= self.capacity:
            raise QueueFull(
                f"throttle queue is full ({self.capacity} waiting)", capacity=self.capacity
            )
        if deadline <= now:
            raise DeadlinePassed(f"deadline passed before queueing ({endpoint})", deadline=deadline)
        loop = asyncio.get_running_loop()
        waiter = Waiter(endpoint, weight, priority, deadline, now, loop.create_future())
        was_head = self.peek()
        lane = self._lanes[priority]
        if len(lane) >= 2 * self.capacity:
            # Waiters that left from the middle are dropped lazily; compact before they pile up.
            lane = self._lanes[priority] = deque(w for w in lane if w.live)
        lane.append(waiter)
        self._live += 1
        waiter.timer = loop.call_later(deadline - now, self._expire, waiter)
        waiter.future.add_done_callback(lambda _f: self._left(waiter))
        if self.peek() is not was_head:
            self._on_head_change()
        return waiter

    def _expire(self, waiter: Waiter) -> None:
        if waiter.live:
            waiter.future.set_exception(
                DeadlinePassed(
                    f"deadline passed after {self._clock() - waiter.enqueued_at:.3f}s in the "
                    f"throttle queue ({waiter.endpoint})",
                    deadline=waiter.deadline,
                )
            )

    def _left(self, waiter: Waiter) -> None:
        # Runs once per waiter, whichever way it left: admitted, expired, failed, cancelled.
        self._live -= 1
        if waiter.timer is not None:
            waiter.timer.cancel()
        lane = self._lanes[waiter.priority]
        if lane and lane[0] is waiter:
            lane.popleft()
            self._on_head_change()

    def peek(self) -> Waiter | None:
        """The live waiter to serve next, or None."""
        for lane in self._lanes:
            while lane and not lane[0].live:
                lane.popleft()
            if lane:
                return lane[0]
        return None

    def behind(self, head: Waiter, limit: int) -> list[Waiter]:
        """Up to ``limit`` live waiters lighter than ``head``, in the order they are served."""
        found: list[Waiter] = []
        for lane in self._lanes:
            for waiter in lane:
                if len(found) >= limit:
                    return found
                if waiter is not head and waiter.live and waiter.weight < head.weight:
                    found.append(waiter)
        return found

    def admit(self, waiter: Waiter, delay: float) -> None:
        """Let ``waiter`` go: its future resolves with the delay it must still wait."""
        if waiter.live:
            waiter.future.set_result(delay)

    def fail_all(self, error: BaseException) -> int:
        """Fail every live waiter with ``error`` (a ban); the number failed."""
        failed = 0
        for lane in self._lanes:
            for waiter in list(lane):
                if waiter.live:
                    waiter.future.set_exception(error)
                    failed += 1
            lane.clear()
        return failed

    def depth(self) -> tuple[int, int]:
        """Live waiters per priority (interactive, background)."""
        counts = [0, 0]
        for index, lane in enumerate(self._lanes):
            counts[index] = sum(1 for waiter in lane if waiter.live)
        return counts[0], counts[1]
