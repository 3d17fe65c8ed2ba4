"""Fixed-window admission with injected times: the cap, catch-up, guard band, header sync."""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Callable

import pytest

from mystic_trading.throttle._window import (
    WindowCount,
    allowance,
    charge,
    earliest_start,
    settle,
    windows_at,
)

W, LIMIT, BURST, GUARD = 10.0, 1000.0, 50.0, 0.05


def counter() -> tuple[dict[int, WindowCount], Callable[[int], WindowCount]]:
    windows: dict[int, WindowCount] = {}

    def count(index: int) -> WindowCount:
        return windows.setdefault(index, WindowCount())

    return windows, count


def start(count: Callable[[int], WindowCount], weight: float, t: float) -> float:
    return earliest_start(
        count,
        weight,
        t,
        limit=LIMIT,
        burst=BURST,
        window_s=W,
        guard_s=GUARD,
    )


def test_allowance_is_a_line_capped_at_the_limit() -> None:
    """The burst at the window's start, the limit by the guard band at its end, never more."""
    assert allowance(3, 30.0, LIMIT, BURST, W) == BURST
    assert allowance(3, 35.0, LIMIT, BURST, W) == LIMIT / 2 + BURST
    assert allowance(3, 39.99, LIMIT, BURST, W) == LIMIT
    assert allowance(3, 35.0, LIMIT, BURST, W, 1.0) == pytest.approx(LIMIT * 5 / 9 + BURST)
    assert allowance(3, 39.0, LIMIT, BURST, W, 1.0) == LIMIT


def test_a_stall_is_caught_up_at_once() -> None:
    """Half a window idle: half the window's budget may go at once, none of it is lost."""
    _, count = counter()
    sent = 0.0
    while start(count, 25, 15.0) == 15.0:
        charge(count, 25, 15.0, window_s=W, guard_s=GUARD)
        sent += 25
    line = allowance(1, 15.0, LIMIT, BURST, W, GUARD)
    assert line - 25 < sent <= line


def test_a_full_window_waits_for_the_next_past_the_guard() -> None:
    """Once the estimate is at the limit the next start is the next window plus the guard."""
    windows, count = counter()
    windows[1] = WindowCount(charged=LIMIT - 10)
    assert start(count, 20, 19.0) == pytest.approx(20.0 + GUARD)


def test_boundary_request_is_charged_to_both_windows_then_settled_exactly() -> None:
    """Inside the guard band both windows count it; an unambiguous header frees the other."""
    windows, count = counter()
    assert windows_at(19.98, W, GUARD) == (1, 2)
    charge(count, 30, 19.98, window_s=W, guard_s=GUARD)
    assert windows[1].charged == windows[2].charged == 30
    # Answered well inside window 2 with its header: only window 2 counted it... but the
    # start is within the guard, so the header may be window 1's: it stays pending in both.
    assert settle(count, 30, 19.98, 20.01, 500, window_s=W, guard_s=GUARD) is None
    assert windows[2].pending == 30
    # A later request, sent after that answer and clear of the guard band, resolves window 2.
    charge(count, 5, 20.2, window_s=W, guard_s=GUARD)
    assert settle(count, 5, 20.2, 20.21, 35, window_s=W, guard_s=GUARD) == 2
    assert windows[2].estimate() == 35


def test_header_corrects_downward_and_upward() -> None:
    """The exchange's count replaces ours: weight it never counted is freed, foreign counted."""
    windows, count = counter()
    for _ in range(4):
        charge(count, 50, 12.0, window_s=W, guard_s=GUARD)
    settle(count, 50, 12.0, 12.01, 30, window_s=W, guard_s=GUARD)
    assert windows[1].estimate() == 30 + 150  # three still in flight
    settle(count, 50, 12.0, 12.02, 900, window_s=W, guard_s=GUARD)
    assert windows[1].estimate() == 900 + 100  # someone else on the IP spent 820


def test_unsent_request_is_given_back() -> None:
    """A grant never used returns its weight to every window it was charged to."""
    windows, count = counter()
    charge(count, 40, 29.99, window_s=W, guard_s=GUARD)
    settle(count, 40, 29.99, 30.0, None, window_s=W, guard_s=GUARD, sent=False)
    assert windows[2].estimate() == windows[3].estimate() == 0


def test_answer_without_header_stays_counted_until_a_later_header() -> None:
    """A 5xx or timeout may have been counted: pending until a header from a later start."""
    windows, count = counter()
    charge(count, 20, 11.0, window_s=W, guard_s=GUARD)
    charge(count, 10, 11.0, window_s=W, guard_s=GUARD)
    settle(count, 20, 11.0, 11.5, None, window_s=W, guard_s=GUARD)
    settle(count, 10, 11.0, 11.6, 10, window_s=W, guard_s=GUARD)
    assert windows[1].estimate() == 10 + 20  # sent before the 5xx was answered: not proof
    charge(count, 1, 12.0, window_s=W, guard_s=GUARD)
    settle(count, 1, 12.0, 12.1, 11, window_s=W, guard_s=GUARD)
    assert windows[1].estimate() == 11


@pytest.mark.parametrize("offset", [-0.02, 0.0, 0.013])
def test_exact_exchange_model_no_429_and_full_windows(offset: float) -> None:
    """Against a simulated fixed-window exchange (clock offset, random latency, no margin):
    never one 429, and every whole window used to within one request of the limit."""
    rng = random.Random(11)
    _, count = counter()
    exchange: dict[int, float] = {}
    n429 = 0
    one_way = GUARD - abs(offset)  # the guard covers offset plus the trip to the exchange
    events: list[tuple[float, int, str, int, float, float]] = []
    seq = 0

    def push(t: float, kind: str, weight: int = 0, started: float = 0.0, used: float = 0.0) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(events, (t, seq, kind, weight, started, used))

    for _ in range(16):
        push(0.0, "ready")
    horizon = 20 * W
    while events:
        t, _, kind, weight, started, used = heapq.heappop(events)
        if t > horizon:
            break
        if kind == "ready":
            weight = rng.choice([1, 2, 4, 5, 25, 50])
            at = start(count, weight, t)
            if at > t:
                push(at, "retry", weight)
                continue
            charge(count, weight, t, window_s=W, guard_s=GUARD)
            push(t + rng.uniform(0, one_way), "arrive", weight, t)
        elif kind == "retry":
            at = start(count, weight, t)
            if at > t:
                push(at, "retry", weight)
                continue
            charge(count, weight, t, window_s=W, guard_s=GUARD)
            push(t + rng.uniform(0, one_way), "arrive", weight, t)
        elif kind == "arrive":
            index = math.floor((t + offset) / W)
            if exchange.get(index, 0) + weight > LIMIT:
                n429 += 1
            else:
                exchange[index] = exchange.get(index, 0) + weight
            push(t + rng.uniform(0, 0.01), "answer", weight, started, exchange.get(index, 0))
        else:
            settle(count, weight, started, t, used, window_s=W, guard_s=GUARD)
            push(t, "ready")
    assert n429 == 0
    whole = [exchange.get(i, 0) for i in range(1, 19)]
    assert min(whole) >= LIMIT - 50
