"""What the routes of one app share: MarketData, the forwarder, the controller and the
metrics, set up by the app's lifespan and dropped when it ends; and ``RouteIndex``, which
finds a request's route by its path instead of trying each of the app's routes in turn."""

from __future__ import annotations

import contextlib
import inspect
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING, Any

from redis.exceptions import AuthenticationError, AuthorizationError
from starlette._utils import get_route_path
from starlette.requests import Request
from starlette.routing import BaseRoute, Match, NoMatchFound, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from mystic_trading.api._forward import Forwarder
from mystic_trading.api._metrics import Metrics
from mystic_trading.api._share import ClientShares, share_pct
from mystic_trading.config import Settings
from mystic_trading.marketdata.facade import MarketData
from mystic_trading.monitor._controller import Controller
from mystic_trading.monitor._redis_beats import REDIS_FAILURES, RedisHeartbeats
from mystic_trading.store import Store
from mystic_trading.throttle import Budget, RedisQuota

if TYPE_CHECKING:
    from mystic_trading.api._dashboard import DashboardSampler

__all__ = ["ApiState", "FastLane", "NotStarted", "RouteIndex", "controller_over"]


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

    def __init__(
        self,
        settings: Settings,
        clock: Callable[[], float] = time.monotonic,
        *,
        client_share_pct: float | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.metrics = Metrics()
        self.md_or_none: MarketData | None = None
        self.forwarder: Forwarder | None = None
        self.controller_or_none: Controller | None = None
        # The dashboard's sampler (api/_dashboard.py), started with the service so that a
        # page opened late still shows the last hour.
        self.dashboard: DashboardSampler | None = None
        # Each client's share of the exchange's budget (api/_share.py); None: off.
        pct = share_pct(client_share_pct)
        self.shares = None if pct is None else ClientShares(self, pct)
        self._header_of: tuple[Budget | None, bytes] = (None, b"x-mbx-used-weight-1m")

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
        """The exchange's own count of weight used in its current window
        (``Throttler.used_weight``: it counts every process behind this IP, so it is the
        deployment's usage); 0 before the service has started or when none came."""
        md = self.md_or_none
        return 0 if md is None else md.throttler.used_weight()

    def weight_header_raw(self) -> bytes:
        """``weight_header()`` as sent: lower case, in bytes (made once per window size)."""
        md = self.md_or_none
        budget = None if md is None else md.throttler.budget
        seen, raw = self._header_of
        if budget is not seen:
            header = "x-mbx-used-weight-1m" if budget is None else budget.header
            raw = header.lower().encode("latin-1")
            self._header_of = (budget, raw)
        return raw

    def weight_header(self) -> str:
        """The usage header's name for the exchange's window, e.g. ``X-MBX-USED-WEIGHT-1M``."""
        md = self.md_or_none
        if md is None:
            return "X-MBX-USED-WEIGHT-1M"
        return md.throttler.budget.header.upper()


class FastLane:
    """The innermost middleware: a GET or HEAD whose route ``RouteIndex`` finds, and whose
    endpoint is an async function of a Request, is answered here, the rest passed on.

    That is what the router would do for it, less Starlette's ExceptionMiddleware and the
    route's own exception layer (a wrapper around every send and a Request each) and the
    router's scope handling: about a fifth of a cached ticker's time in the app, which is
    what ``bench/http_service.py`` holds against a bare app. Those layers answer only
    ``HTTPException`` (no GET endpoint of the service raises one: each turns its errors
    into its API's error bodies); anything else raised reaches ServerErrorMiddleware, the
    outermost layer, as before. Everything else, a POST included, takes the full path.
    """

    def __init__(self, app: ASGIApp, index: RouteIndex) -> None:
        self.app = app
        self.index = index

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in _LANE_METHODS:
            route = self.index.direct(scope)
            if route is not None:
                response = await route.endpoint(Request(scope, receive, send))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


_LANE_METHODS = frozenset({"GET", "HEAD"})


class RouteIndex(BaseRoute):
    """The app's routes looked up by path: put first in the app's route list, it hands a
    request to its route after one dict lookup, where Starlette's router tries every route
    in turn (a path regex each: the cached ticker was the eleventh route tried, /api/v1's
    the fifteenth, at about a microsecond each).

    It answers only what the list would answer the same: a route without parameters by its
    exact path, and a route ending in one plain parameter (``/api/v1/ticker/{symbol}``) by
    the path up to its last slash; either only when no route before it could match its paths
    (a parameter route, a mount, anything unknown whose fixed start overlaps). Anything
    else, a wrong method included (405), is left to the list, as without the index.
    """

    def __init__(self, routes: Sequence[BaseRoute]) -> None:
        self._exact: dict[str, list[Route]] = {}
        self._prefixed: dict[str, list[Route]] = {}
        # Endpoints that are async functions of a Request (what request_response wraps).
        self._direct = {
            r.endpoint
            for r in routes
            if isinstance(r, Route) and inspect.iscoroutinefunction(r.endpoint)
        }
        earlier: list[str] = []  # fixed starts of earlier routes the index cannot stand for
        for route in routes:
            path = getattr(route, "path", None)
            if not isinstance(path, str):
                earlier.append("")  # no path to reason about: nothing after it is indexed
                continue
            head, brace, tail = path.partition("{")
            if isinstance(route, Route) and not brace:
                if not any(path.startswith(start) for start in earlier):
                    self._exact.setdefault(path, []).append(route)
                continue
            plain = tail.endswith("}") and not any(c in tail for c in "/:{")
            if (
                isinstance(route, Route)
                and head.endswith("/")
                and plain
                and not any(head.startswith(s) or s.startswith(head) for s in earlier)
            ):
                self._prefixed.setdefault(head, []).append(route)
            earlier.append(head)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http":
            return Match.NONE, {}
        # The router sets scope["route"] to this index, then updates the scope with the child
        # scope returned here: the handlers and the metrics see the route itself.
        path = get_route_path(scope)
        exact = self._exact.get(path)
        if exact is not None:
            for route in exact:  # what Route.matches finds for a path without parameters
                if not route.methods or scope["method"] in route.methods:
                    params = dict(scope.get("path_params", {}))
                    child = {"endpoint": route.endpoint, "path_params": params, "route": route}
                    return Match.FULL, child
            return Match.NONE, {}
        found = self._prefixed.get(path[: path.rfind("/") + 1])
        if found is not None:
            for route in found:
                match, found_scope = route.matches(scope)
                if match is Match.FULL:
                    return Match.FULL, {**found_scope, "route": route}
        return Match.NONE, {}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        route: Route = scope["route"]
        await route.handle(scope, receive, send)

    def direct(self, scope: Scope) -> Route | None:
        """The route of ``scope`` when it is indexed and its endpoint an async function of a
        Request (what Starlette wraps in ``request_response``), with the scope updated as
        the router would update it; else None."""
        match, child = self.matches(scope)
        if match is not Match.FULL:
            return None
        route: Route = child["route"]
        if route.endpoint not in self._direct:
            return None
        scope.update(child)
        return route

    def url_path_for(self, name: str, /, **path_params: Any) -> Any:
        raise NoMatchFound(name, path_params)  # the routes themselves follow in the list
