"""Throttle statistics per provider and endpoint, kept as counters and bounded samples.

Recording is O(1) (counters and ``deque(maxlen=...)`` samples); percentiles are computed
when stats are read, so the hot path stays cheap. ``snapshot()`` returns plain data (dicts of
numbers and strings) for the CLI, the API and Prometheus.
"""

from __future__ import annotations

from collections import Counter, deque
from typing import Any

__all__ = ["EndpointStats", "ThrottleStats", "UsageStats", "percentile"]

SAMPLES = 4096


def percentile(samples: list[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) of ``samples`` by nearest rank; None when empty."""
    if not samples:
        return None
    ordered = sorted(samples)
    rank = max(0, min(len(ordered) - 1, round(q * len(ordered) + 0.5) - 1))
    return ordered[rank]


class EndpointStats:
    """Counters and samples for one endpoint (or the whole provider)."""

    __slots__ = (
        "failures",
        "latencies",
        "n418",
        "n429",
        "requests",
        "retries",
        "successes",
        "waits",
        "weight",
    )

    def __init__(self) -> None:
        self.requests = 0
        self.weight = 0
        self.successes = 0
        self.failures: Counter[str] = Counter()
        self.retries = 0
        self.n429 = 0
        self.n418 = 0
        self.waits: deque[float] = deque(maxlen=SAMPLES)
        self.latencies: deque[float] = deque(maxlen=SAMPLES)

    def snapshot(self) -> dict[str, Any]:
        """Plain data; times in milliseconds."""
        waits = list(self.waits)
        latencies = list(self.latencies)
        finished = self.successes + sum(self.failures.values())

        def ms(value: float | None) -> float | None:
            return None if value is None else round(value * 1000, 3)

        return {
            "requests": self.requests,
            "weight": self.weight,
            "successes": self.successes,
            "failures": dict(self.failures),
            "retries": self.retries,
            "n429": self.n429,
            "n418": self.n418,
            "success_rate": None if finished == 0 else self.successes / finished,
            "wait_ms": {
                "p50": ms(percentile(waits, 0.5)),
                "p95": ms(percentile(waits, 0.95)),
                "p99": ms(percentile(waits, 0.99)),
            },
            "latency_ms": {
                "p50": ms(percentile(latencies, 0.5)),
                "p95": ms(percentile(latencies, 0.95)),
                "p99": ms(percentile(latencies, 0.99)),
            },
        }


class ThrottleStats:
    """One provider's stats: the total and one :class:`EndpointStats` per endpoint."""

    def __init__(self, window_s: float) -> None:
        self.total = EndpointStats()
        self.endpoints: dict[str, EndpointStats] = {}
        self._window_s = window_s
        self._admitted: deque[tuple[float, int]] = deque()
        self._admitted_weight = 0

    def _pair(self, endpoint: str) -> tuple[EndpointStats, EndpointStats]:
        stats = self.endpoints.get(endpoint)
        if stats is None:
            stats = self.endpoints[endpoint] = EndpointStats()
        return self.total, stats

    def _trim(self, now: float) -> None:
        horizon = now - self._window_s
        while self._admitted and self._admitted[0][0] <= horizon:
            self._admitted_weight -= self._admitted.popleft()[1]

    def admitted(self, endpoint: str, weight: int, wait_s: float, now: float) -> None:
        """A request got its slot after waiting ``wait_s``."""
        for stats in self._pair(endpoint):
            stats.requests += 1
            stats.weight += weight
            stats.waits.append(wait_s)
        self._admitted.append((now, weight))
        self._admitted_weight += weight
        if len(self._admitted) > SAMPLES:
            self._trim(now)

    def finished(self, endpoint: str, kind: str, latency_s: float | None) -> None:
        """A request's outcome: ``kind`` is "ok" or a failure kind."""
        for stats in self._pair(endpoint):
            if kind == "ok":
                stats.successes += 1
            else:
                stats.failures[kind] += 1
                if kind == "rate_limited":
                    stats.n429 += 1
                elif kind == "banned":
                    stats.n418 += 1
            if latency_s is not None:
                stats.latencies.append(latency_s)

    def retried(self, endpoint: str) -> None:
        """A retry was scheduled."""
        for stats in self._pair(endpoint):
            stats.retries += 1

    def current_rate(self, now: float) -> float:
        """Weight admitted per second over the last window."""
        self._trim(now)
        return self._admitted_weight / self._window_s

    def snapshot(self, now: float) -> dict[str, Any]:
        """The total and every endpoint, as plain data."""
        data = self.total.snapshot()
        data["current_rate"] = self.current_rate(now)
        data["endpoints"] = {name: s.snapshot() for name, s in sorted(self.endpoints.items())}
        return data


class UsageStats:
    """The exchange's usage header against the weight this process sent, per exchange window.

    The exchange counts every request from an IP in its fixed windows and says the count in
    each answer (``X-MBX-USED-WEIGHT-1M``, rest-api.md "IP Limits"). What it counted beyond
    what this process sent in that window is weight other clients behind the same IP spent
    (``foreign_weight``): per window, the largest header less what this process had sent
    when the header came, summed over windows. What this process sent is counted when it is
    admitted, before it reaches the exchange, and weight sent within ``skew_s`` before a
    window began counts in that window too (the exchange may have dated it there): both can
    only make the foreign weight smaller, never invent some. Headers are given only when
    the throttler trusts which window they count (``Throttler._window_of``).
    """

    __slots__ = (
        "_carry",
        "_foreign_done",
        "_foreign_index",
        "_foreign_max",
        "_own",
        "_own_index",
        "_tail",
        "skew_s",
    )

    def __init__(self, skew_s: float) -> None:
        self.skew_s = skew_s
        self._own_index = -1
        self._own = 0  # sent in window _own_index
        self._tail = 0  # of which within skew_s of its end
        self._carry = 0  # sent within skew_s before window _own_index began
        self._foreign_index = -1
        self._foreign_max = 0  # the largest foreign weight seen in window _foreign_index
        self._foreign_done = 0  # summed over the windows before it

    def sent(self, exchange_s: float, weight: int, window_s: float) -> None:
        """This process sent ``weight`` at ``exchange_s`` (the exchange's clock, seconds)."""
        index = int(exchange_s // window_s)
        if index > self._own_index:
            self._carry = self._tail if index == self._own_index + 1 else 0
            self._own_index, self._own, self._tail = index, 0, 0
        self._own += weight
        if index == self._own_index and (index + 1) * window_s - exchange_s <= self.skew_s:
            self._tail += weight

    def header(self, index: int, used: int) -> None:
        """The exchange counted ``used`` in its window ``index`` when it answered."""
        if index != self._own_index:
            return  # nothing of ours known in that window: no comparison to make
        foreign = used - self._own - self._carry
        if index != self._foreign_index:
            self._foreign_done += self._foreign_max
            self._foreign_index, self._foreign_max = index, 0
        if foreign > self._foreign_max:
            self._foreign_max = foreign

    def own_in(self, index: int) -> int:
        """What this process sent in window ``index`` (0 unless it is the latest)."""
        return self._own if index == self._own_index else 0

    @property
    def foreign_weight(self) -> int:
        """Weight the exchange counted that this process did not send, over all windows."""
        return self._foreign_done + self._foreign_max
