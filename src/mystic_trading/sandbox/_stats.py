"""What reached the sandbox: request, weight and outcome counters, in total, per endpoint and per
client IP. Read in process (``SandboxStats``) or over HTTP (``GET /sandbox/stats``)."""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass

__all__ = ["Counters", "SandboxStats"]


@dataclass(slots=True)
class Counters:
    """Counts for one slice of traffic. ``weight`` is the weight charged (served requests)."""

    requests: int = 0
    weight: int = 0
    ok: int = 0
    http_400: int = 0
    http_429: int = 0
    http_418: int = 0
    injected_5xx: int = 0

    def add(self, status: int, weight: int, injected: bool) -> None:
        self.requests += 1
        self.weight += weight
        if injected:
            self.injected_5xx += 1
        elif status == 200:
            self.ok += 1
        elif status == 429:
            self.http_429 += 1
        elif status == 418:
            self.http_418 += 1
        elif 400 <= status < 500:
            self.http_400 += 1


class SandboxStats:
    """Thread-safe counters: the server thread writes, tests and benchmarks read."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.total = Counters()
        self.by_endpoint: dict[str, Counters] = {}
        self.by_ip: dict[str, Counters] = {}

    def record(
        self, endpoint: str, ip: str, status: int, weight: int, *, injected: bool = False
    ) -> None:
        """Count one answered API request."""
        with self._lock:
            self.total.add(status, weight, injected)
            ep = self.by_endpoint.get(endpoint)
            if ep is None:
                ep = self.by_endpoint[endpoint] = Counters()
            ep.add(status, weight, injected)
            per_ip = self.by_ip.get(ip)
            if per_ip is None:
                per_ip = self.by_ip[ip] = Counters()
            per_ip.add(status, weight, injected)

    def endpoint(self, name: str) -> Counters:
        """A copy of the counters of ``name`` (e.g. "klines", "ticker/price")."""
        with self._lock:
            c = self.by_endpoint.get(name)
            return Counters(**asdict(c)) if c is not None else Counters()

    def snapshot(self) -> dict[str, object]:
        """Every counter as plain JSON-ready data."""
        with self._lock:
            return {
                "total": asdict(self.total),
                "by_endpoint": {k: asdict(v) for k, v in sorted(self.by_endpoint.items())},
                "by_ip": {k: asdict(v) for k, v in sorted(self.by_ip.items())},
            }

    def reset(self) -> None:
        """Zero every counter."""
        with self._lock:
            self.total = Counters()
            self.by_endpoint.clear()
            self.by_ip.clear()
