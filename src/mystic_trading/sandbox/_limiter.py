"""Binance's REQUEST_WEIGHT limiter: fixed windows per client IP, 429, then escalating 418 bans.

Rules modelled (rest-api.md "IP Limits", RATE_LIMITS.md section 4):

- Each IP has a weight budget per window. Windows are fixed and aligned to the clock ("10
  SECOND interval resets at 00, 10, 20... seconds", web-socket-api.md), i.e. they start at
  multiples of the window length since the epoch.
- A request that would take the IP past the budget gets HTTP 429 with ``Retry-After`` = whole
  seconds until the window ends (at least 1). It is not charged: it was not served.
- After a 429, every further request in the same window counts as "failing to back off";
  the ``ban_after``-th such request earns HTTP 418 and a ban. Bans "scale in duration for
  repeat offenders, from 2 minutes to 3 days": ``ban_base_s`` doubled per earlier ban of the
  IP, capped at ``ban_max_s``. The escalation level is kept until ``reset()``.
- During a ban every request gets 418 with ``Retry-After`` until the ban ends; afterwards the
  IP is served again with its budget as usual.

Time is epoch milliseconds passed in by the caller, so tests drive it with a fake clock.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

__all__ = ["Decision", "WeightLimiter", "window_label"]


def window_label(window_s: int) -> tuple[int, str, str]:
    """(intervalNum, interval, intervalLetter) of a window, as Binance names its limiters."""
    for size, name, letter in ((86_400, "DAY", "D"), (3_600, "HOUR", "H"), (60, "MINUTE", "M")):
        if window_s % size == 0:
            return window_s // size, name, letter
    return window_s, "SECOND", "S"


@dataclass(frozen=True, slots=True)
class Decision:
    """The limiter's answer: ``status`` 200 (serve), 429 or 418."""

    status: int
    used: int
    retry_after: int = 0
    ban_until: int = 0


@dataclass(slots=True)
class _IpState:
    window: int = -1
    used: int = 0
    warned: bool = False
    after_429: int = 0
    ban_until: int = 0
    bans: int = 0


class WeightLimiter:
    """Per-IP fixed-window weight budget with Binance's 429/418 escalation."""

    def __init__(
        self,
        limit: int,
        window_s: int,
        *,
        ban_after: int = 5,
        ban_base_s: float = 120.0,
        ban_max_s: float = 259_200.0,
    ) -> None:
        self._lock = threading.Lock()
        self.limit = limit
        self.window_s = window_s
        self.ban_after = ban_after
        self.ban_base_ms = int(ban_base_s * 1000)
        self.ban_max_ms = int(ban_max_s * 1000)
        self._ips: dict[str, _IpState] = {}

    @property
    def window_ms(self) -> int:
        return self.window_s * 1000

    def set_budget(self, limit: int | None = None, window_s: int | None = None) -> None:
        """Change the budget or window from now on (a changed window starts fresh counts)."""
        with self._lock:
            if limit is not None:
                self.limit = limit
            if window_s is not None and window_s != self.window_s:
                self.window_s = window_s
                for st in self._ips.values():
                    st.window, st.used, st.warned, st.after_429 = -1, 0, False, 0

    def reset(self) -> None:
        """Forget every IP: usage, warnings, bans and escalation levels."""
        with self._lock:
            self._ips.clear()

    def used(self, ip: str, now: int) -> int:
        """Weight ``ip`` has used in the window containing ``now``."""
        with self._lock:
            st = self._ips.get(ip)
            if st is None or st.window != now // self.window_ms:
                return 0
            return st.used

    def acquire(self, ip: str, weight: int, now: int) -> Decision:
        """Charge ``weight`` to ``ip`` at ``now`` or say why not."""
        with self._lock:
            st = self._ips.setdefault(ip, _IpState())
            if st.ban_until > now:
                return Decision(
                    418, self._used(st, now), _seconds(st.ban_until - now), st.ban_until
                )
            window = now // self.window_ms
            if st.window != window:
                st.window, st.used, st.warned, st.after_429 = window, 0, False, 0
            if st.warned:
                st.after_429 += 1
                if st.after_429 >= self.ban_after:
                    duration = min(self.ban_max_ms, self.ban_base_ms * 2**st.bans)
                    st.bans += 1
                    st.ban_until = now + duration
                    st.warned, st.after_429 = False, 0
                    return Decision(418, st.used, _seconds(duration), st.ban_until)
            if st.used + weight > self.limit:
                st.warned = True
                window_end = (window + 1) * self.window_ms
                return Decision(429, st.used, _seconds(window_end - now))
            st.used += weight
            return Decision(200, st.used)

    def _used(self, st: _IpState, now: int) -> int:
        return st.used if st.window == now // self.window_ms else 0


def _seconds(ms: int) -> int:
    """Whole seconds covering ``ms``, at least 1 (Retry-After is an integer, RFC 9110)."""
    return max(1, -(-ms // 1000))
