"""The wait queue: priorities, FIFO, bounds, deadlines and cancellation (no sleeping)."""

from __future__ import annotations

import asyncio

import pytest

from mystic_trading.errors import DeadlinePassed, QueueFull
from mystic_trading.throttle import Priority, WaitQueue


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_interactive_before_background_fifo_within() -> None:
    """Interactive waiters are served first, each priority in arrival order."""
    queue = WaitQueue(10, clock=Clock())
    b1 = queue.push("b1", 1, Priority.BACKGROUND, 1e9)
    i1 = queue.push("i1", 1, Priority.INTERACTIVE, 1e9)
    b2 = queue.push("b2", 1, Priority.BACKGROUND, 1e9)
    i2 = queue.push("i2", 1, Priority.INTERACTIVE, 1e9)
    order = []
    while (head := queue.peek()) is not None:
        order.append(head.endpoint)
        queue.admit(head, 0.0)
        await asyncio.sleep(0)
    assert order == ["i1", "i2", "b1", "b2"]
    assert [w.future.result() for w in (i1, i2, b1, b2)] == [0.0] * 4


async def test_full_queue_raises_at_once() -> None:
    """The waiter past capacity gets QueueFull with the capacity."""
    queue = WaitQueue(2, clock=Clock())
    queue.push("a", 1, Priority.INTERACTIVE, 1e9)
    queue.push("b", 1, Priority.INTERACTIVE, 1e9)
    with pytest.raises(QueueFull) as info:
        queue.push("c", 1, Priority.INTERACTIVE, 1e9)
    assert info.value.capacity == 2
    queue.fail_all(RuntimeError("end"))


async def test_passed_deadline_raises() -> None:
    """A deadline already passed is refused; one passing while queued fails the waiter."""
    clock = Clock()
    queue = WaitQueue(5, clock=clock)
    with pytest.raises(DeadlinePassed):
        queue.push("late", 1, Priority.INTERACTIVE, clock.now)
    waiter = queue.push("soon", 1, Priority.INTERACTIVE, clock.now + 0.001)
    with pytest.raises(DeadlinePassed) as info:
        await waiter.future
    assert info.value.deadline == clock.now + 0.001
    assert queue.peek() is None


async def test_cancelled_waiter_gives_up_its_place() -> None:
    """A cancelled waiter frees its slot in the bound and is never served."""
    queue = WaitQueue(2, clock=Clock())
    first = queue.push("a", 1, Priority.INTERACTIVE, 1e9)
    queue.push("b", 1, Priority.INTERACTIVE, 1e9)
    first.future.cancel()
    await asyncio.sleep(0)
    assert len(queue) == 1
    head = queue.peek()
    assert head is not None
    assert head.endpoint == "b"
    queue.push("c", 1, Priority.INTERACTIVE, 1e9)
    queue.fail_all(RuntimeError("end"))


async def test_new_head_wakes_the_dispatcher() -> None:
    """An interactive arrival ahead of a background head signals a head change."""
    changes: list[int] = []
    queue = WaitQueue(5, clock=Clock(), on_head_change=lambda: changes.append(1))
    queue.push("b", 1, Priority.BACKGROUND, 1e9)
    queue.push("b2", 1, Priority.BACKGROUND, 1e9)
    assert len(changes) == 1
    queue.push("i", 1, Priority.INTERACTIVE, 1e9)
    assert len(changes) == 2
    queue.fail_all(RuntimeError("end"))
