"""What the routes of one app share: MarketData, the forwarder and the metrics, set up by
the app's lifespan and dropped when it ends."""

from __future__ import annotations

import time
from collections.abc import Callable

from mystic_trading.api._forward import Forwarder
from mystic_trading.api._metrics import Metrics
from mystic_trading.config import Settings
from mystic_trading.marketdata.facade import MarketData

__all__ = ["ApiState", "NotStarted"]


class NotStarted(RuntimeError):
    """A route ran outside the app's lifespan (the server was started with lifespan off)."""


class ApiState:
    """One app's MarketData, forwarder and metrics."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.clock = clock
        self.metrics = Metrics()
        self.md_or_none: MarketData | None = None
        self.forwarder: Forwarder | None = None

    @property
    def md(self) -> MarketData:
        md = self.md_or_none
        if md is None:
            raise NotStarted("Mystic's MarketData is not open: serve the app with its lifespan on")
        return md

    @property
    def forward(self) -> Forwarder:
        forwarder = self.forwarder
        if forwarder is None:
            raise NotStarted("Mystic's forwarder is not open: serve the app with its lifespan on")
        return forwarder

    def used_weight(self) -> int:
        """The exchange's own count of weight used in its current window, as its last
        ``X-MBX-USED-WEIGHT`` header in this window said (it counts every process behind
        this IP, so it is the deployment's usage); 0 when none came this window.

        Reads the throttler's private record of that header: ``Throttler`` has no public
        accessor for it yet (asked of the lead: ``Throttler.used_weight()``).
        """
        md = self.md_or_none
        if md is None:
            return 0
        throttler = md.throttler
        index, used = throttler._window_used
        window = throttler.budget.window_s
        return used if index == int(throttler.wall_ms() / 1000 // window) else 0

    def weight_header(self) -> str:
        """The usage header's name for the exchange's window, e.g. ``X-MBX-USED-WEIGHT-1M``."""
        md = self.md_or_none
        if md is None:
            return "X-MBX-USED-WEIGHT-1M"
        return md.throttler.budget.header.upper()
