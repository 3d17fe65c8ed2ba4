"""What MarketData counts: requests and hits per layer, coalesced waiters, stale answers,
upstream calls and weight, and latency per layer; and the two headline figures, derived
from those counts rather than claimed:

- ``faster_on_hits_pct``: how much faster a memory hit is than an upstream answer for the same
  kind of request (median against median, measured in this process);
- ``fewer_upstream_calls_pct``: how many fewer upstream calls were made than one per request.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from mystic_trading.marketdata.answer import Layer

__all__ = ["LatencySample", "MarketDataStats"]

KINDS = ("ticker", "candles", "book")
_SAMPLES = 4096
# Memory hits are timed one in _HIT_SAMPLE_EVERY, so timing never dominates a ~1 us hit.
HIT_SAMPLE_EVERY = 64


class LatencySample:
    """The last few thousand latencies of one (kind, layer), for percentiles."""

    __slots__ = ("values",)

    def __init__(self) -> None:
        self.values: deque[float] = deque(maxlen=_SAMPLES)

    def add(self, seconds: float) -> None:
        self.values.append(seconds)

    def percentile(self, q: float) -> float | None:
        if not self.values:
            return None
        ordered = sorted(self.values)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class MarketDataStats:
    """Counters of one MarketData; ``snapshot()`` gives plain data."""

    def __init__(self) -> None:
        self.requests = dict.fromkeys(KINDS, 0)
        self.hits: dict[str, dict[Layer, int]] = {k: dict.fromkeys(Layer, 0) for k in KINDS}
        self.stale = dict.fromkeys(KINDS, 0)
        self.coalesced = dict.fromkeys(KINDS, 0)
        self.errors = dict.fromkeys(KINDS, 0)
        self.latency: dict[tuple[str, Layer], LatencySample] = {
            (k, layer): LatencySample() for k in KINDS for layer in Layer
        }

    def answered(self, kind: str, layer: Layer, seconds: float | None, stale: bool) -> None:
        self.requests[kind] += 1
        self.hits[kind][layer] += 1
        if stale:
            self.stale[kind] += 1
        if seconds is not None:
            self.latency[(kind, layer)].add(seconds)

    def snapshot(
        self, upstream_calls: int, upstream_weight: int, negative_hits: int
    ) -> dict[str, Any]:
        requests = sum(self.requests.values())
        per_kind: dict[str, Any] = {}
        for kind in KINDS:
            latency = {}
            for layer in Layer:
                sample = self.latency[(kind, layer)]
                p50, p99 = sample.percentile(0.5), sample.percentile(0.99)
                if p50 is not None and p99 is not None:
                    latency[layer.value] = {"p50_us": p50 * 1e6, "p99_us": p99 * 1e6}
            per_kind[kind] = {
                "requests": self.requests[kind],
                "hits": {layer.value: n for layer, n in self.hits[kind].items()},
                "stale": self.stale[kind],
                "coalesced": self.coalesced[kind],
                "errors": self.errors[kind],
                "latency": latency,
            }
        return {
            "requests": requests,
            "by_kind": per_kind,
            "negative_hits": negative_hits,
            "upstream_calls": upstream_calls,
            "upstream_weight": upstream_weight,
            "calls_saved": max(0, requests - upstream_calls),
            "fewer_upstream_calls_pct": (
                100.0 * (1 - upstream_calls / requests) if requests else None
            ),
            "faster_on_hits_pct": self._faster_on_hits(),
        }

    def _faster_on_hits(self) -> float | None:
        """Memory hit median against upstream median, for the kind with most of both."""
        best: tuple[int, float] | None = None
        for kind in KINDS:
            warm = self.latency[(kind, Layer.MEMORY)]
            cold = self.latency[(kind, Layer.UPSTREAM)]
            w, c = warm.percentile(0.5), cold.percentile(0.5)
            if w is None or c is None or c <= 0:
                continue
            weight = min(len(warm.values), len(cold.values))
            if best is None or weight > best[0]:
                best = (weight, 100.0 * (1 - w / c))
        return None if best is None else best[1]
