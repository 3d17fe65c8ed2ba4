"""What the routes of one app share: MarketData, the forwarder, the controller and the
metrics, set up by the app's lifespan and dropped when it ends."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

from redis.exceptions import AuthenticationError, AuthorizationError

from mystic_trading.api._forward import Forwarder
from mystic_trading.api._metrics import Metrics
from mystic_trading.config import Settings
from mystic_trading.marketdata.facade import MarketData
from mystic_trading.monitor._controller import Controller
from mystic_trading.monitor._redis_beats import REDIS_FAILURES, RedisHeartbeats
from mystic_trading.store import Store
from mystic_trading.throttle import RedisQuota

if TYPE_CHECKING:
    from mystic_trading.api._dashboard import DashboardSampler

__all__ = ["ApiState", "NotStarted", "controller_over"]


@contextlib.asynccontextmanager
async def controller_over(settings: Settings, store: Store) -> AsyncIterator[Controller]:
    """A Controller on the app's own store (no second store opened), with Redis's
    heartbeats and shared quota when ``redis_url`` is set, as ``Controller.open`` builds
    them: Redis unreachable is read as "store only" and said in ``status``; credentials it
    refuses are the quota's ConfigError at start."""
    async with contextlib.AsyncExitStack() as stack:
        beats = quota = error = None
        if settings.redis_url is not None:
            url = settings.redis_url.get_secret_value()
            beats = RedisHeartbeats(url, prefix="mystic:monitor")
            stack.push_async_callback(beats.aclose)
            try:
                await beats.ping()
            except REDIS_FAILURES as exc:
                if not isinstance(exc, AuthenticationError | AuthorizationError):
                    error = beats.describe(exc)
            if error is None:
                quota = RedisQuota(url, prefix="mystic:throttle")
                stack.push_async_callback(quota.aclose)
                await quota.start()
        yield Controller(settings, store, heartbeats=beats, quota=quota, redis_error=error)


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
        self.controller_or_none: Controller | None = None
        # The dashboard's sampler (api/_dashboard.py), started with the service so that a
        # page opened late still shows the last hour.
        self.dashboard: DashboardSampler | None = None

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

    @property
    def controller(self) -> Controller:
        controller = self.controller_or_none
        if controller is None:
            raise NotStarted("Mystic's controller is not open: serve the app with its lifespan on")
        return controller

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
