"""Optimize: which recommendations may be applied, within which bounds, how often, and
how a change is watched and rolled back; and the knobs of the recommendation rules.

Kept outside ``config.py`` beside ``_thresholds.py`` so that ``monitor/`` can import it
without importing every setting. The thresholds a rule shares with a health check (queue
wait, evictions, hit rate, pool waits, clock offset, upstream latency) are the check's, in
``monitor.health``; only what no check judges lives here.

The defaults and why:

- ``cooldown_s`` 300: a level change takes two seconds to reach every process, but its
  effect shows in the figures only over the exchange's window (a minute) and in the latency
  percentiles later still; five minutes lets one change be judged before the next.
- ``watch_s`` 120: two of the exchange's one-minute windows after a change; a 429 caused by
  a higher ceiling shows within the first.
- ``rollback_latency_ratio`` 1.5 and ``rollback_latency_ms`` 250: upstream latency p95
  after a change worse than 1.5 x its value before *and* 250 ms above it rolls the change
  back. Both must hold so that noise on a fast exchange (20 ms to 35 ms) rolls nothing back,
  while a real slowdown does; the adaptive controller cuts at 2 x and 250 ms, and a rollback
  should come before that.
- ``quiet_s`` 300: "no 429 or 5xx for a while" before raising the level means at least five
  minutes of figures without one.
- ``raise_utilisation_pct`` 90: the ceiling binds when the weight admitted is at least 90 %
  of it (the throttle-utilisation check warns at the same point).
- ``min_level`` / ``max_level``: optimize never moves the level out of these (an operator
  still can); ``unlimited`` is the exchange's limit less the safety margin, never more.
- ``backfill_pages`` 20: one series whose cold history took 20 upstream pages (20,000
  candles on Binance) in the window, or any page fetched twice, is worth one backfill.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["LEVEL_NAMES", "OptimizeSettings"]

Seconds = Annotated[float, Field(gt=0)]
LevelName = Literal["conservative", "moderate", "aggressive", "unlimited"]
# The ladder from the most cautious up (throttle/_levels.py, which this module cannot import
# without importing the throttler into the settings).
LEVEL_NAMES: tuple[LevelName, ...] = ("conservative", "moderate", "aggressive", "unlimited")


class OptimizeSettings(BaseModel):
    """``mystic optimize``, the optional auto-optimize mode and the recommendation rules."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Auto-optimize in every long-lived process, one leader deciding (off by default).
    auto: bool = False
    # How often the auto-optimizer reads the deployment's heartbeats and decides.
    interval_s: Seconds = 10.0
    # At least this long between two level changes of a venue (whoever made the last).
    cooldown_s: Seconds = 300.0
    # A change followed by 429s or worse latency within this window is rolled back.
    watch_s: Seconds = 120.0
    rollback_latency_ratio: Annotated[float, Field(ge=1)] = 1.5
    rollback_latency_ms: Annotated[float, Field(ge=0)] = 250.0
    # The levels optimize may move between (inclusive).
    min_level: LevelName = "conservative"
    max_level: LevelName = "unlimited"
    # Raise the level only after this long without a 429, 418 or 5xx.
    quiet_s: Seconds = 300.0
    raise_utilisation_pct: Annotated[float, Field(gt=0, le=100)] = 90.0
    # Backfill a series whose cold history took this many upstream pages in the window.
    backfill_pages: Annotated[int, Field(ge=1)] = 20

    @model_validator(mode="after")
    def _bounds_in_order(self) -> OptimizeSettings:
        if LEVEL_NAMES.index(self.min_level) > LEVEL_NAMES.index(self.max_level):
            raise ValueError(
                f"min_level ({self.min_level}) is above max_level ({self.max_level}): "
                f"the ladder is {', '.join(LEVEL_NAMES)}"
            )
        return self
