"""Retry policy: which outcomes are retried, how long to wait, and how many retries at most.

- Only idempotent requests (Mystic's GETs) are retried, and only for a 429, a 5xx, a timeout
  or a transport error. A 418 stops everything (a ban); any other 4xx is the caller's error
  and would fail the same way again.
- The wait is exponential backoff with full jitter, ``U(0, min(cap, base * 2**attempt))``
  (AWS Architecture Blog, "Exponential Backoff and Jitter", 2015): it spreads the retries of
  many clients instead of synchronising them. It is never shorter than the Retry-After the
  exchange asked for (RFC 9110 section 10.2.3; Binance rest-api.md "IP Limits").
- A retry budget keeps retries under ``ratio`` (10 %) of the requests of the last
  ``window_s``, plus a small ``reserve`` so a lone request may still retry; an outage then
  costs at most 10 % extra traffic, never a retry storm (Google SRE book, "Handling
  Overload": per-client retry budget of 10 %).
"""

from __future__ import annotations

import math
import random
from collections import deque
from email.utils import parsedate_to_datetime

__all__ = ["RETRYABLE", "Backoff", "RetryBudget", "parse_retry_after"]

RETRYABLE = frozenset({"rate_limited", "server_error", "timeout", "transport"})


def parse_retry_after(value: str | None, *, now_epoch_s: float) -> float | None:
    """Seconds to wait from a Retry-After value (delay-seconds or an HTTP-date), or None."""
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = float(parsedate_to_datetime(text).timestamp())
        except (TypeError, ValueError, IndexError):
            return None
        return max(0.0, when - now_epoch_s)
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


class Backoff:
    """Exponential backoff with full jitter, floored at the exchange's Retry-After."""

    def __init__(
        self, *, base_s: float = 0.1, cap_s: float = 10.0, rng: random.Random | None = None
    ) -> None:
        if not (base_s > 0 and cap_s >= base_s):
            raise ValueError(f"need 0 < base_s <= cap_s, got {base_s!r}, {cap_s!r}")
        self.base_s = base_s
        self.cap_s = cap_s
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not security

    def ceiling(self, attempt: int) -> float:
        """The largest jittered wait before retry number ``attempt`` (0-based)."""
        return min(self.cap_s, self.base_s * 2.0 ** min(attempt, 62))

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry ``attempt``: jittered, at least ``retry_after``."""
        jittered = self._rng.uniform(0.0, self.ceiling(attempt))
        return max(jittered, retry_after or 0.0)


class RetryBudget:
    """Retries at most ``ratio`` of requests over a sliding ``window_s`` (+ ``reserve``)."""

    def __init__(
        self, *, ratio: float = 0.1, window_s: float = 10.0, reserve: int = 2, buckets: int = 10
    ) -> None:
        if not 0 <= ratio <= 1:
            raise ValueError(f"ratio must be within [0, 1], got {ratio!r}")
        self.ratio = ratio
        self.reserve = reserve
        self._width = window_s / buckets
        self._buckets = buckets
        self._slots: deque[list[int]] = deque()  # [bucket index, requests, retries]

    def _bucket(self, now: float) -> list[int]:
        index = math.floor(now / self._width)
        while self._slots and self._slots[0][0] <= index - self._buckets:
            self._slots.popleft()
        if not self._slots or self._slots[-1][0] != index:
            self._slots.append([index, 0, 0])
        return self._slots[-1]

    def record_request(self, now: float) -> None:
        """Count a first attempt."""
        self._bucket(now)[1] += 1

    def try_spend(self, now: float) -> bool:
        """Take one retry from the budget if it allows one."""
        bucket = self._bucket(now)
        requests = sum(slot[1] for slot in self._slots)
        retries = sum(slot[2] for slot in self._slots)
        if retries + 1 > self.ratio * requests + self.reserve:
            return False
        bucket[2] += 1
        return True
