"""Fixed-window admission: spend each exchange window's budget, corrected by its usage header.

Binance counts REQUEST_WEIGHT in fixed windows aligned to the epoch ("10 SECOND interval
resets at 00, 10, 20... seconds", web-socket-api.md; RATE_LIMITS.md section 3), and every
answer carries the IP's count of the window it was counted in (``X-MBX-USED-WEIGHT-1M``). So
the exact rule is per window: what the exchange counted plus what we have sent since must
stay within the limit. A continuous-rate limiter (GCRA, a leaky bucket) has to keep one burst
per window aside and loses whatever a stall left unused; this rule loses neither.

Per window ``k`` (``[k*W, (k+1)*W)`` on the metering backend's wall clock) we keep:

- ``charged``: weight admitted into it by everyone sharing the quota;
- ``inflight``: the part of it not answered yet;
- ``used``, ``known``: the highest usage header accepted for the window, and the latest start
  time of a request whose header was accepted. The exchange's count only grows within a
  window, so every request answered before ``known`` was counted in ``used`` (or never);
- ``pending``, ``pending_at``: weight answered without an accepted header (sent near a
  boundary, 5xx, timeout), which the exchange may or may not have counted, and the latest
  such answer. It is forgotten once a header from a request started after it is accepted.

The estimate of the exchange's count is ``used + inflight + pending`` once a header is known
(this corrects our count downward as well as upward: weight the exchange did not count is
freed, foreign weight on the same IP is counted), and ``charged`` before. A request of weight
``w`` may start at ``t`` in window ``k`` when ``estimate + w <= min(limit, limit * (t - k*W) /
(W - guard) + burst)``: the window's budget is spread along it (so a queue drains evenly, not
in one burst per window) but a stall's unused share may be caught up (the line is a cap, not
a rate; how fast is the GCRA's business). The line reaches the limit ``guard`` before the
window ends, because inside the guard band little more may start (below). ``limit`` is the
exchange's limit less the safety margin.

Guard band: a request starting within ``guard`` of a boundary may be counted in either
window, so it is charged to both, and its header is accepted only when ``[start - guard,
answered + guard]`` lies inside one window (then it is settled exactly in both). ``guard``
covers the clock offset to the exchange and the time from admission to arrival (see
``Throttler``). Just after a boundary nothing starts until the previous window's estimate
leaves room or ``guard`` has passed, which only delays: the new window's cap catches up.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["WindowCount", "charge", "earliest_start", "settle", "windows_at"]

# Earliest-start search: each step moves the start forward past one constraint; three
# windows at most are involved (the one before, the current one, the one after), so a few
# steps always settle it. The bound only guards against a degenerate float case.
_MAX_STEPS = 8


@dataclass(slots=True)
class WindowCount:
    """What one exchange window has been charged and told (see the module docstring)."""

    charged: float = 0.0
    inflight: float = 0.0
    used: float = -1.0
    known: float = -math.inf
    pending: float = 0.0
    pending_at: float = -math.inf

    def estimate(self) -> float:
        """Our best upper estimate of the exchange's count for this window."""
        if self.used < 0:
            return self.charged
        return self.used + self.inflight + self.pending


def windows_at(t: float, window_s: float, guard_s: float) -> tuple[int, ...]:
    """The windows a request starting at ``t`` may be counted in (one, or two at a boundary)."""
    first = math.floor((t - guard_s) / window_s)
    last = math.floor((t + guard_s) / window_s)
    return (first,) if first == last else (first, last)


def allowance(
    index: int, t: float, limit: float, burst: float, window_s: float, guard_s: float = 0.0
) -> float:
    """The most window ``index`` may have been charged by ``t``: a line up to ``limit``,
    reached ``guard_s`` before the window ends (in the guard band little more may start)."""
    span = max(window_s - guard_s, window_s / 2)
    return min(limit, limit * (t - index * window_s) / span + burst)


def earliest_start(
    count: Callable[[int], WindowCount],
    weight: float,
    t0: float,
    *,
    limit: float,
    burst: float,
    window_s: float,
    guard_s: float,
) -> float:
    """The earliest ``t >= t0`` at which ``weight`` fits every window it may be counted in."""
    t = t0
    for _ in range(_MAX_STEPS):
        moved = False
        for index in windows_at(t, window_s, guard_s):
            estimate = count(index).estimate()
            need = estimate + weight
            if need > limit and estimate > 0:
                # Full: wait for the next window, past the guard band of this one's end.
                t = max(t, (index + 1) * window_s + guard_s)
                moved = True
                break
            if need > allowance(index, t, limit, burst, window_s, guard_s):
                span = max(window_s - guard_s, window_s / 2)
                t = max(t, index * window_s + (need - burst) * span / limit)
                moved = True
                break
        if not moved:
            return t
    return t


def charge(
    count: Callable[[int], WindowCount],
    weight: float,
    start: float,
    *,
    window_s: float,
    guard_s: float,
) -> None:
    """Count ``weight`` starting at ``start`` in every window it may land in."""
    for index in windows_at(start, window_s, guard_s):
        item = count(index)
        item.charged += weight
        item.inflight += weight


def settle(
    count: Callable[[int], WindowCount],
    weight: float,
    start: float,
    answered: float,
    used: float | None,
    *,
    window_s: float,
    guard_s: float,
    sent: bool = True,
) -> int | None:
    """Account an answer (or a request never sent); the window its header was accepted for."""
    indexes = windows_at(start, window_s, guard_s)
    accepted = None
    if sent and used is not None:
        first = math.floor((start - guard_s) / window_s)
        if first == math.floor((answered + guard_s) / window_s):
            accepted = first
    for index in indexes:
        item = count(index)
        item.inflight = max(0.0, item.inflight - weight)
        if not sent:
            item.charged = max(0.0, item.charged - weight)
        elif index == accepted:
            assert used is not None
            item.used = max(item.used, used)
            item.known = max(item.known, start)
        elif accepted is None:
            item.pending += weight
            item.pending_at = max(item.pending_at, answered)
        # else: the header put it in another window, so this one never counted it.
        if item.pending and item.known >= item.pending_at:
            item.pending, item.pending_at = 0.0, -math.inf
    return accepted
