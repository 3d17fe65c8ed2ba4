"""Fault injection: latency, a share of 5xx answers, outages, set at start or while running.

An outage is either ``"refuse"`` (the listener really closes, so connects are refused, and
reopens on the same port when it ends; needs the server runner of ``SandboxServer``/``run``)
or ``"503"`` (every API request answers 503). Outages and latency run on real time
(``time.monotonic``), never on the injected market clock.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Literal

__all__ = ["FaultSettings", "Faults", "OutageMode"]

OutageMode = Literal["refuse", "503"]


@dataclass(frozen=True, slots=True)
class FaultSettings:
    """The faults in force. ``error_statuses`` are drawn in turn for injected errors."""

    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    error_rate: float = 0.0
    error_statuses: tuple[int, ...] = (503, 500)


class Faults:
    """Current faults, changed from any thread; listeners hear about outages."""

    def __init__(self, settings: FaultSettings, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._settings = settings
        self._rng = random.Random(seed)  # noqa: S311 - fault simulation, not security
        self._turn = 0
        self._outage_until = 0.0
        self._outage_mode: OutageMode = "503"
        self._listeners: list[Callable[[], None]] = []

    @property
    def settings(self) -> FaultSettings:
        return self._settings

    def configure(
        self,
        *,
        latency_ms: float | None = None,
        jitter_ms: float | None = None,
        error_rate: float | None = None,
        error_statuses: tuple[int, ...] | None = None,
    ) -> FaultSettings:
        """Change the given settings, keep the rest; returns the settings now in force."""
        changes: dict[str, object] = {}
        for name, value, ok in (
            ("latency_ms", latency_ms, latency_ms is None or latency_ms >= 0),
            ("jitter_ms", jitter_ms, jitter_ms is None or jitter_ms >= 0),
            ("error_rate", error_rate, error_rate is None or 0.0 <= error_rate <= 1.0),
            (
                "error_statuses",
                error_statuses,
                error_statuses is None
                or (len(error_statuses) > 0 and all(500 <= s <= 599 for s in error_statuses)),
            ),
        ):
            if not ok:
                raise ValueError(f"invalid fault setting {name}={value!r}")
            if value is not None:
                changes[name] = value
        with self._lock:
            self._settings = replace(self._settings, **changes)  # type: ignore[arg-type]
            return self._settings

    def start_outage(self, seconds: float, mode: OutageMode = "refuse") -> None:
        """Be down for ``seconds`` from now; ``mode`` "refuse" closes the listener."""
        if seconds <= 0 or mode not in ("refuse", "503"):
            raise ValueError(f"invalid outage: {seconds!r} s, mode {mode!r}")
        with self._lock:
            self._outage_until = time.monotonic() + seconds
            self._outage_mode = mode
            listeners = list(self._listeners)
        for notify in listeners:
            notify()

    def clear(self, settings: FaultSettings | None = None) -> None:
        """End any outage (a closed listener reopens at once); with ``settings``, also
        replace the settings."""
        with self._lock:
            self._outage_until = 0.0
            if settings is not None:
                self._settings = settings
            listeners = list(self._listeners)
        for notify in listeners:
            notify()

    def outage(self) -> tuple[OutageMode, float] | None:
        """(mode, seconds left) while an outage runs, else None."""
        left = self._outage_until - time.monotonic()
        return (self._outage_mode, left) if left > 0 else None

    def add_listener(self, notify: Callable[[], None]) -> None:
        """Call ``notify`` (from any thread) whenever an outage starts."""
        with self._lock:
            self._listeners.append(notify)

    def remove_listener(self, notify: Callable[[], None]) -> None:
        with self._lock:
            if notify in self._listeners:
                self._listeners.remove(notify)

    def draw_delay(self) -> float:
        """Seconds to delay this answer."""
        s = self._settings
        if s.latency_ms <= 0 and s.jitter_ms <= 0:
            return 0.0
        return (s.latency_ms + self._rng.random() * s.jitter_ms) / 1000.0

    def draw_error(self) -> int | None:
        """An HTTP status to inject for this request, or None to serve it."""
        s = self._settings
        if s.error_rate <= 0 or self._rng.random() >= s.error_rate:
            return None
        with self._lock:
            self._turn += 1
            return s.error_statuses[self._turn % len(s.error_statuses)]

    def describe(self) -> dict[str, object]:
        """Settings and outage as JSON-ready data."""
        out: dict[str, object] = asdict(self._settings)
        outage = self.outage()
        out["outage"] = None if outage is None else {"mode": outage[0], "seconds_left": outage[1]}
        return out
