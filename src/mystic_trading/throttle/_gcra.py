"""GCRA admission: exact, O(1), weighted, in its continuous-state leaky-bucket form.

ITU-T I.371 defines the Generic Cell Rate Algorithm twice, as "virtual scheduling" (one
theoretical arrival time, TAT) and as a "continuous-state leaky bucket" (a fill level and
the time it was last updated); the two admit exactly the same traffic at a fixed rate. We
keep the leaky-bucket form because it stays correct when the rate changes between calls (the
adaptive controller and the level move it): the tolerance is held in *weight* (``burst``),
not in seconds, so a slower rate never widens the burst.

State: ``fill`` (weight) at time ``at``. A request of weight ``w`` may start at the earliest
``t >= now`` with ``fill(t) + w <= burst``, where ``fill(t) = max(0, fill - rate * (t - at))``.

Why this never trips a fixed-window counter. Weight admitted in any interval ``[a, b]`` is at
most ``rate * (b - a) + burst`` (fill never exceeds ``burst`` after an admission and drains
at most ``rate`` per second). Binance counts in clock-aligned fixed windows of length ``W``,
so a window sees at most ``rate * W + burst``. With ``rate = (limit * (1 - margin) - burst)
/ W`` that is ``limit * (1 - margin)`` whatever the alignment of our clock to theirs: no 429
even across a boundary, and no assumption on clock skew. The price is ``burst`` per window
in steady state, which is why ``burst`` is the heaviest admissible request and no more. The
margin covers network jitter between admission and arrival.

Header sync (upward only): the exchange reports ``used`` in a window that ends ``remaining``
seconds from now. We may still admit ``burst - fill + rate * remaining`` in it; if that is
more than ``limit_eff - used``, fill is raised to ``burst + rate * remaining - (limit_eff -
used)``. Usage by other clients behind the same IP is then counted.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BucketState", "Grant", "reserve", "sync_usage"]


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
    start = max(now, state.at, state.paused_until)
    fill = _fill_at(state, start, rate)
    excess = fill + weight - burst
    if excess > 0:
        start += excess / rate
        fill = burst - weight
    delay = start - now
    if delay > max_delay:
        return Grant(False, delay)
    state.fill = fill + weight
    state.at = start
    return Grant(True, delay)


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
