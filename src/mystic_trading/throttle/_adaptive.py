"""Adaptive rate inside the level's ceiling: AIMD on the rate, driven by loss and latency.

The rate (weight/s) moves between ``floor_share * ceiling`` and the ceiling.

Cuts (multiplicative decrease)
- 5xx, timeouts, transport errors, or latency rising past its baseline: ``rate *= 0.9``,
  Netflix concurrency-limits' AIMD backoff ratio. At most one such cut per
  ``LOSS_COOLDOWN_S`` (1 s): one incident seen by many concurrent callers is one signal,
  as TCP cuts once per round trip, not once per lost segment.
- 429: the exchange's counter is full, a stronger signal. When the usage header told us the
  most weight the exchange accepted in the window (``implied`` rate), the rate drops to it,
  but never by less than 10 % nor by more than half; without that information it halves.
  The header-informed cut lands on a halved capacity in one step instead of the several
  blind halvings (and 429s) a plain AIMD needs.

Probe (additive increase)
- After a quiet period without cuts the rate grows by ``PROBE_SHARE_PER_S`` (10 %) of the
  ceiling per second: a loss cut is undone in about a second, a halving in five, inside the
  10 s recovery goal. The quiet period is ``QUIET_S`` (2 s) after a loss cut and at least two
  exchange windows after a 429, doubled for each 429 that follows the previous one within
  its quiet period (up to ``MAX_QUIET_DOUBLINGS``), so a probe above the real capacity costs
  a 429 ever more rarely instead of every few seconds.

Latency baseline: the baseline follows new lows at once and highs slowly (1 % a sample);
a short EWMA (weight 0.3) above twice the baseline and ``LATENCY_FLOOR_S`` (250 ms) above it
counts as rising latency. The absolute floor keeps jitter from cutting anything: 1 ms to 2 ms
is "twice", and in the benchmark event-loop and GC stalls of 50-150 ms on loopback cost 5 %
of the budget with a 50 ms floor; a quarter second on top of the baseline is a real queue
building at the exchange.
"""

from __future__ import annotations

__all__ = ["AimdController"]

LOSS_DECREASE = 0.9
THROTTLE_MIN_DECREASE = 0.9
THROTTLE_MAX_DECREASE = 0.5
LOSS_COOLDOWN_S = 1.0
QUIET_S = 2.0
PROBE_SHARE_PER_S = 0.10
MAX_QUIET_DOUBLINGS = 4
FLOOR_SHARE = 0.02
LATENCY_RATIO = 2.0
LATENCY_FLOOR_S = 0.25
LATENCY_SHORT_WEIGHT = 0.3
LATENCY_BASELINE_RISE = 0.01
LATENCY_MIN_SAMPLES = 20


class AimdController:
    """The adaptive rate of one provider in one process; time is passed in (seconds)."""

    def __init__(self, ceiling: float, *, window_s: float, now: float = 0.0) -> None:
        if not ceiling > 0:
            raise ValueError(f"ceiling must be positive, got {ceiling!r}")
        self._ceiling = ceiling
        self._rate = ceiling
        self._window_s = window_s
        self._updated = now
        self._quiet_until = now
        self._last_loss_cut = -float("inf")
        self._doublings = 0
        self._short: float | None = None
        self._baseline: float | None = None
        self._samples = 0
        self.cuts = 0

    @property
    def ceiling(self) -> float:
        """The level's ceiling, weight per second."""
        return self._ceiling

    def set_ceiling(self, ceiling: float, now: float) -> None:
        """A new ceiling (level or budget change); the rate is clamped under it."""
        if not ceiling > 0:
            raise ValueError(f"ceiling must be positive, got {ceiling!r}")
        self.rate(now)
        self._ceiling = ceiling
        self._rate = min(self._rate, ceiling) if self.cuts else ceiling

    def rate(self, now: float) -> float:
        """The current rate, weight per second, after any probing due by ``now``."""
        if now > self._updated:
            grow_from = max(self._updated, self._quiet_until)
            if now > grow_from and self._rate < self._ceiling:
                step = PROBE_SHARE_PER_S * self._ceiling * (now - grow_from)
                self._rate = min(self._ceiling, self._rate + step)
            self._updated = now
        return self._rate

    def _cut(self, rate: float, now: float, quiet: float) -> None:
        self._rate = max(FLOOR_SHARE * self._ceiling, min(rate, self._ceiling))
        self._updated = now
        self._quiet_until = max(self._quiet_until, now + quiet)
        self.cuts += 1

    def on_failure(self, now: float) -> bool:
        """A 5xx, timeout or transport error; True if the rate was cut."""
        current = self.rate(now)
        if now - self._last_loss_cut < LOSS_COOLDOWN_S:
            return False
        self._last_loss_cut = now
        self._cut(current * LOSS_DECREASE, now, QUIET_S)
        return True

    def on_throttled(self, now: float, implied: float | None = None) -> None:
        """A 429; ``implied`` is the rate the exchange's reported usage says it accepts."""
        current = self.rate(now)
        if now < self._quiet_until + QUIET_S:
            self._doublings = min(MAX_QUIET_DOUBLINGS, self._doublings + 1)
        else:
            self._doublings = 0
        target = current * THROTTLE_MAX_DECREASE
        if implied is not None:
            target = min(
                current * THROTTLE_MIN_DECREASE, max(current * THROTTLE_MAX_DECREASE, implied)
            )
        quiet = max(QUIET_S, 2 * self._window_s) * 2**self._doublings
        self._cut(target, now, quiet)

    def on_latency(self, latency_s: float, now: float) -> bool:
        """A successful call's latency; True if it cut the rate (latency past the baseline)."""
        self._samples += 1
        if self._baseline is None or latency_s < self._baseline:
            self._baseline = latency_s
        else:
            self._baseline += LATENCY_BASELINE_RISE * (latency_s - self._baseline)
        if self._short is None:
            self._short = latency_s
        else:
            self._short += LATENCY_SHORT_WEIGHT * (latency_s - self._short)
        if self._samples < LATENCY_MIN_SAMPLES:
            return False
        rising = (
            self._short > LATENCY_RATIO * self._baseline
            and self._short - self._baseline > LATENCY_FLOOR_S
        )
        return rising and self.on_failure(now)
