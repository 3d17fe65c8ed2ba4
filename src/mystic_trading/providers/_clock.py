"""ExchangeClock: the exchange's clock as known from round trips alone, with its error bound.

A candle is final only once the exchange's own clock has passed its close (plus a grace for
the exchange's late aggregation), and a range of open times is known to be empty only once
that clock has passed it. Both need a *lower bound* of the exchange's clock at the moment it
answered, not a guess: an estimate that runs ahead stores open candles as closed and records
real candles as missing (review C2; a 2 s clock step emptied "the last 3 1s candles").

What is known is an interval of offsets between the local monotonic clock and the exchange's
clock, in the way NTP reasons about a round trip (RFC 5905, section 8): a server time stamped
somewhere inside an exchange that left at local ``t0`` and came back at ``t1`` says

    offset in [server_lo - t1, server_hi - t0]

where ``[server_lo, server_hi)`` is what the stamp pins down: 1 ms for ``serverTime``
(``/api/v3/time``, exchangeInfo), a whole second for an HTTP ``Date`` header (RFC 9110,
section 6.6.1). ``t0`` is taken when the request leaves, after the throttler's grant, so
queue waits and retries never widen or bias the interval (they biased the old midpoint
estimate by half of the wait). Each sample is intersected with what is known; the interval
widens with time by ``drift_ppm`` (two crystals drift apart). A sample that does not meet the
interval at all is a clock step, on either side: the interval is replaced by the sample, the
step is counted and logged, and a precise re-measurement is due.

The local clock is the monotonic one, so a step of this machine's wall clock (an NTP
correction) moves nothing; only the exchange's own steps do, and every answer's ``Date``
header shows a step of more than about a second on the next answer. Smaller steps stay within
the grace period that decides when a candle is final.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from typing import Any

__all__ = ["ExchangeClock", "monotonic_ms", "wall_ms"]

log = logging.getLogger(__name__)


def monotonic_ms() -> float:
    """The local monotonic clock in milliseconds (steps of the wall clock do not move it)."""
    return time.monotonic_ns() / 1_000_000


def wall_ms() -> float:
    """The local wall clock in UTC epoch milliseconds."""
    return time.time_ns() / 1_000_000


class ExchangeClock:
    """Bounds on the exchange's clock; ``lower_bound(t0)`` is certain, ``now_ms()`` the best
    estimate. Feed it every answer's stamps with :meth:`observe`."""

    def __init__(
        self,
        *,
        local: Callable[[], float] = monotonic_ms,
        wall: Callable[[], float] = wall_ms,
        drift_ppm: float = 200.0,
        resync_s: float = 60.0,
    ) -> None:
        self.local = local
        self.resync_ms = resync_s * 1000.0
        self._drift = drift_ppm / 1e6
        # Until the first sample: the local wall clock, with no bound at all.
        self._lo = self._hi = wall() - local()
        self._bounded = False
        self._at = local()
        self._synced_at: float | None = None  # local time of the last serverTime sample
        self.samples = 0
        self.steps = 0
        self.last_step_ms = 0.0  # size of the last step seen, signed (exchange minus us)
        self.date_trusted = True
        self._date_text = ""
        self._date_ms = 0

    # -- reading ----------------------------------------------------------------------------

    def _bounds(self, at: float) -> tuple[float, float] | None:
        if not self._bounded:
            return None
        widen = abs(at - self._at) * self._drift
        return self._lo - widen, self._hi + widen

    @property
    def bounded(self) -> bool:
        """True once any sample (serverTime or Date) has bounded the offset."""
        return self._bounded

    @property
    def synced(self) -> bool:
        """True once a serverTime sample has bounded the offset."""
        return self._synced_at is not None

    @property
    def needs_sync(self) -> bool:
        """True before the first serverTime sample, after a step, and every ``resync_s``."""
        return self._synced_at is None or self.local() - self._synced_at >= self.resync_ms

    def now_ms(self) -> int:
        """The best estimate of the exchange's clock now (UTC epoch ms)."""
        t = self.local()
        bounds = self._bounds(t)
        if bounds is None:
            return int(t + self._lo)
        return int(t + (bounds[0] + bounds[1]) / 2)

    def lower_bound(self, local_t: float) -> int:
        """A time the exchange's clock had certainly reached at local time ``local_t`` (0, the
        epoch, before anything is known)."""
        bounds = self._bounds(self.local())  # widened to now: never less safe than at local_t
        return 0 if bounds is None else int(local_t + bounds[0])

    def error_ms(self) -> float | None:
        """Half the width of the offset interval now (the estimate's error bound), or None
        before any sample."""
        bounds = self._bounds(self.local())
        return None if bounds is None else (bounds[1] - bounds[0]) / 2

    # -- learning ---------------------------------------------------------------------------

    def observe(
        self, t0: float, t1: float, *, server_time: int | None = None, date: str | None = None
    ) -> None:
        """An answer sent at local ``t0`` and received at ``t1`` carried these stamps."""
        if server_time is not None:
            self._sample(t0, t1, server_time, server_time + 1, precise=True)
        if date:
            at = self._date(date)
            if at is None:
                return
            if server_time is not None:
                # Both from one answer: a Date that disagrees with serverTime comes from
                # another clock (a proxy's, a CDN's) and is no evidence of the exchange's.
                trusted = at - 1 <= server_time < at + 1001
                if trusted != self.date_trusted:
                    log.warning(
                        "the exchange's Date header %s its serverTime; Date headers are %s",
                        "agrees with" if trusted else "disagrees with",
                        "used again" if trusted else "ignored from now on",
                    )
                    self.date_trusted = trusted
            elif self.date_trusted:
                self._sample(t0, t1, at, at + 1000, precise=False)

    def _date(self, text: str) -> int | None:
        if text == self._date_text:
            return self._date_ms
        try:
            at = int(parsedate_to_datetime(text).timestamp() * 1000)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        self._date_text, self._date_ms = text, at
        return at

    def _sample(
        self, t0: float, t1: float, server_lo: int, server_hi: int, *, precise: bool
    ) -> None:
        new_lo, new_hi = server_lo - t1, server_hi - t0
        bounds = self._bounds(t1)
        if bounds is None:
            lo, hi = new_lo, new_hi
        elif new_lo <= bounds[1] and bounds[0] <= new_hi:
            lo, hi = max(bounds[0], new_lo), min(bounds[1], new_hi)
        else:
            step = (new_lo + new_hi) / 2 - (bounds[0] + bounds[1]) / 2
            self.steps += 1
            self.last_step_ms = step
            log.warning(
                "the exchange's clock stepped by about %+.0f ms against ours; re-measuring",
                step,
            )
            lo, hi = new_lo, new_hi
            self._synced_at = None  # a precise re-measurement is due
        self._lo, self._hi, self._bounded = lo, hi, True
        self._at = t1
        self.samples += 1
        if precise:
            self._synced_at = t1

    def stats(self, wall: Callable[[], float] = wall_ms) -> dict[str, Any]:
        """Offset of the exchange's clock from this machine's wall clock, its error bound,
        the samples and steps seen, and how old the last precise sample is."""
        t = self.local()
        bounds = self._bounds(t)
        return {
            "synced": self.synced,
            "offset_ms": None if bounds is None else round(t + sum(bounds) / 2 - wall(), 1),
            "error_ms": None if bounds is None else round((bounds[1] - bounds[0]) / 2, 1),
            "samples": self.samples,
            "steps": self.steps,
            "last_step_ms": round(self.last_step_ms, 1),
            "date_header_trusted": self.date_trusted,
            "last_sync_age_s": None
            if self._synced_at is None
            else round((t - self._synced_at) / 1000, 3),
        }
