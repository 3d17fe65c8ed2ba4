"""GCRA admission: exact, O(1), weighted, in its continuous-state leaky-bucket form.

ITU-T I.371 defines the Generic Cell Rate Algorithm twice, as "virtual scheduling" (one
theoretical arrival time, TAT) and as a "continuous-state leaky bucket" (a fill level and
the time it was last updated); the two admit exactly the same traffic at a fixed rate. We
keep the leaky-bucket form because it stays correct when the rate changes between calls (the
adaptive controller and the level move it): the tolerance is held in *weight* (``burst``),
not in seconds, so a slower rate never widens the burst.

State: ``fill`` (weight) at time ``at``. A request of weight ``w`` may start at the earliest
``t >= now`` with ``fill(t) + w <= burst``, where ``fill(t) = max(0, fill - rate * (t - at))``.

Role. GCRA paces: weight admitted in any interval ``[a, b]`` is at most ``rate * (b - a) +
burst``. The exchange's own budget is enforced per fixed window by ``_window`` (exact,
header-corrected), so no burst is kept aside for it; the GCRA holds a level's ceiling or an
adaptive cut below the exchange's rate, and at full speed bounds how fast a window's unused
share is caught up (``Throttler``: ``CATCH_UP``).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BucketState", "Grant", "gcra_start", "reserve"]


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
    # Where the grant was charged: the planned start on the backend's wall clock (epoch s),
    # which backend ("memory", "redis", "local-fallback") and the guard band it was charged
    # with (so settling finds the same windows); handed back to settle it.
    start: float = 0.0
    source: str = ""
    guard_s: float = 0.0


@dataclass(slots=True)
class BucketState:
    """One budget's shared state; times are on the owning backend's clock, in seconds."""

    fill: float = 0.0
    at: float = 0.0
    paused_until: float = 0.0
    banned_until_ms: int = 0


def _fill_at(state: BucketState, t: float, rate: float) -> float:
    if t <= state.at:
        return state.fill
    return max(0.0, state.fill - rate * (t - state.at))


def gcra_start(
    state: BucketState, weight: float, rate: float, burst: float, not_before: float
) -> tuple[float, float]:
    """The earliest start ``>= not_before`` for ``weight`` and the fill just before it."""
    start = max(not_before, state.at)
    fill = _fill_at(state, start, rate)
    excess = fill + weight - burst
    if excess > 0:
        start += excess / rate
        fill = burst - weight
    return start, fill


def reserve(
    state: BucketState,
    weight: float,
    rate: float,
    burst: float,
    now: float,
    now_ms: int,
    max_delay: float,
) -> Grant:
    """Reserve ``weight`` if it can start within ``max_delay`` seconds; mutates ``state``."""
    if state.banned_until_ms > now_ms:
        return Grant(False, (state.banned_until_ms - now_ms) / 1000, state.banned_until_ms)
    start, fill = gcra_start(state, weight, rate, burst, max(now, state.paused_until))
    delay = start - now
    if delay > max_delay:
        return Grant(False, delay)
    state.fill = fill + weight
    state.at = start
    return Grant(True, delay)
