"""GCRA admission, exact, O(1), weighted, with the exchange's fixed windows counted too.

ITU-T I.371 defines the Generic Cell Rate Algorithm twice, as "virtual scheduling" (one
theoretical arrival time, TAT) and as a "continuous-state leaky bucket" (a fill level and
the time it was last updated); the two admit exactly the same traffic at a fixed rate. We
keep the leaky-bucket form because it stays correct when the rate changes between calls (the
adaptive controller and the level move it): the tolerance is held in *weight* (``burst``),
not in seconds, so a slower rate never widens the burst.

State: ``fill`` (weight) at time ``at``. A request of weight ``w`` may start at the earliest
``t >= now`` with ``fill(t) + w <= burst``, where ``fill(t) = max(0, fill - rate * (t - at))``.
Weight admitted in any interval ``[a, b]`` is then at most ``rate * (b - a) + burst``.

The exchange's windows (:class:`Windows`). Binance counts REQUEST_WEIGHT in fixed windows of
length ``W`` aligned to the epoch on its own clock. The GCRA alone, to be safe at any
alignment, must run at ``(cap - burst) / W`` and so leaves one burst of every window unspent
(1.1 % of the benchmark's budget). Knowing the windows, we run the GCRA at ``cap / W`` for
smoothness and also count each window: a request may start only when its window's admitted
weight plus ``w`` stays within ``cap``; otherwise it waits for the next window. A request
whose exchange time is uncertain by ``skew_s`` near a boundary may be counted in either
window by the exchange, so it is charged to both (``window`` and ``used_next``). Weight that
reaches the exchange after the boundary it was admitted before (its one-way latency) is
covered by the safety margin. If the window's position were wrong altogether, the GCRA still
bounds any ``W`` interval by ``cap + burst``: the margin covers that too while ``burst`` is
within it (the benchmark's 50 of a 90 margin, Binance's 250 of 600).

Header sync (upward only): the exchange reports ``used`` in one of its windows. With windows
counted, that window's count is raised to ``used`` when it is more (usage by other clients
behind the same IP, or weight admitted in the previous window and counted in this one). Our
count also holds requests still in flight, so taking the larger of the two never counts a
request twice. Without windows the fill is raised instead: the exchange's window ends
``remaining`` seconds from now and we may still admit ``burst - fill + rate * remaining`` in
it; if that is more than ``limit_eff - used``, fill is raised to ``burst + rate * remaining
- (limit_eff - used)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["BucketState", "Grant", "Windows", "reserve", "sync_usage", "sync_window"]


@dataclass(frozen=True, slots=True)
class Grant:
    """A reservation's answer.

    ``granted``: the request may start after ``delay_s`` (0 = now); the weight is spent.
    Not granted: the earliest start is ``delay_s`` from now (beyond the caller's horizon);
    nothing was spent. ``banned_until_ms`` set: the exchange has banned us; nothing may go.
    """

    granted: bool
    delay_s: float
    banned_until_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Windows:
    """The exchange's fixed windows as seen from a bucket's clock.

    ``cap``: weight admitted per window at most; ``length_s``: the window; ``offset_s``: the
    exchange's clock (UTC epoch seconds) less the bucket's clock; ``skew_s``: how far that
    offset may be wrong (the exchange clock's error bound).
    """

    cap: float
    length_s: float
    offset_s: float
    skew_s: float = 0.0


@dataclass(slots=True)
class BucketState:
    """One budget's shared state; times are on the owning backend's clock, in seconds.

    ``window`` is the index (on the exchange's clock) of the window ``used`` counts, and
    ``used_next`` what is already charged to the window after it (requests on a boundary).
    """

    fill: float = 0.0
    at: float = 0.0
    paused_until: float = 0.0
    banned_until_ms: int = 0
    window: int = -1
    used: float = 0.0
    used_next: float = 0.0


def _fill_at(state: BucketState, t: float, rate: float) -> float:
    if t <= state.at:
        return state.fill
    return max(0.0, state.fill - rate * (t - state.at))


def _used(state: BucketState, index: int) -> float:
    if index == state.window:
        return state.used
    if index == state.window + 1:
        return state.used_next
    return 0.0  # a later window, or one before the count (within the skew only)


def _advance(state: BucketState, index: int) -> None:
    """Make ``index`` the counted window (never backwards)."""
    if index == state.window + 1:
        state.window, state.used, state.used_next = index, state.used_next, 0.0
    elif index > state.window + 1:
        state.window, state.used, state.used_next = index, 0.0, 0.0


def _fit(
    state: BucketState, weight: float, windows: Windows, start: float
) -> tuple[float, int, int]:
    """The earliest start from ``start`` whose window (or both, on a boundary) has room for
    ``weight``, with the first and last window the request may be counted in."""
    length, skew = windows.length_s, windows.skew_s
    # A window holds the heaviest request even when the cap is below it (a cut rate).
    cap = max(windows.cap, weight)
    while True:
        exchange = start + windows.offset_s
        first = math.floor((exchange - skew) / length)
        last = math.floor((exchange + skew) / length)
        if _used(state, first) + weight > cap:
            full = first
        elif last != first and _used(state, last) + weight > cap:
            full = last
        else:
            return start, first, last
        # Past the full window's end by the skew: the exchange counts it no more.
        start = max(start, (full + 1) * length + skew - windows.offset_s) + 1e-4


def reserve(
    state: BucketState,
    weight: float,
    rate: float,
    burst: float,
    now: float,
    now_ms: int,
    max_delay: float,
    windows: Windows | None = None,
) -> Grant:
    """Reserve ``weight`` if it can start within ``max_delay`` seconds; mutates ``state``."""
    if state.banned_until_ms > now_ms:
        return Grant(False, (state.banned_until_ms - now_ms) / 1000, state.banned_until_ms)
    start = max(now, state.at, state.paused_until)
    fill = _fill_at(state, start, rate)
    excess = fill + weight - burst
    if excess > 0:
        start += excess / rate
        fill = burst - weight
    first = last = 0
    if windows is not None:
        later, first, last = _fit(state, weight, windows, start)
        if later > start:
            start, fill = later, min(fill, _fill_at(state, later, rate))
    delay = start - now
    if delay > max_delay:
        return Grant(False, delay)
    state.fill = fill + weight
    state.at = start
    if windows is not None:
        _advance(state, first)
        for index in {first, last}:
            if index == state.window:
                state.used += weight
            elif index == state.window + 1:
                state.used_next += weight
    return Grant(True, delay)


def sync_window(state: BucketState, used: float, index: int) -> bool:
    """Raise window ``index``'s count to the exchange's ``used``; True if it changed."""
    if index < state.window:
        return False
    _advance(state, index - 1 if index > state.window else index)
    if index == state.window and used > state.used:
        state.used = used
        return True
    if index == state.window + 1 and used > state.used_next:
        state.used_next = used
        return True
    return False


def sync_usage(
    state: BucketState,
    used: float,
    limit_eff: float,
    remaining: float,
    rate: float,
    burst: float,
    now: float,
) -> bool:
    """Raise fill so that the rest of the exchange's window fits; True if it changed."""
    if state.at < now:
        state.fill = _fill_at(state, now, rate)
        state.at = now
    target = burst + rate * remaining - (limit_eff - used) - rate * (state.at - now)
    if target > state.fill:
        state.fill = target
        return True
    return False
