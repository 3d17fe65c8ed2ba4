"""Each client's share of the exchange's budget, so that one runaway bot cannot starve the
others (issue 13, item 5; off unless ``client_share_pct`` is given).

Clients are told apart by an ``X-Mystic-Client`` header, else by their bearer token (kept
as a digest, never as sent), else by their address. The header lets several cooperating bots
behind one address be counted apart; a client that changes its name at will escapes its
share that way, so a deployment that cannot trust its clients leaves the header unset in its
proxy and counts by address.

Counting: a request's client is put in a context variable as its handler starts, and every
request Mystic sends to the exchange is charged, as the throttler comes to admit it, to the
client in whose context it is asked: the request itself, or a refresh it started (asyncio
tasks copy the context). The weight is the throttler's for the request (Binance's for the
path and parameters), a retry charged again, as the exchange charges it. The seam is the
throttler's admission gate (``Throttler.add_gate``), which MarketData's provider and the
forwarder both pass through: a refused request is refused before any weight is reserved or
it queues, so it costs the budget nothing.

**Across workers.** With Redis configured (``mystic serve --workers N`` requires it), the
counts are Redis's: one counter per client and window, checked and added to by one script
as each request is sent, so a client's share is one for the deployment whichever workers
serve it (counted per worker, N workers would let it cause N shares). A Redis that fails
mid-window leaves each worker counting on its own, asked again every 5 s, until it answers
(logged once each way).

A client that has caused ``client_share_pct`` % of the exchange's limit in the exchange's
current window is served only what needs nothing from the exchange: memory, Redis and the
store answer it, stale if need be (MarketData's stale-if-error path: the refusal is a
``ThrottleError``); a request that would have to reach the exchange is refused before it is
sent, with 429, ``Retry-After`` (the seconds left in the window) and Binance's -1003 body.
Other clients are not affected.
"""

from __future__ import annotations

import contextvars
import hashlib
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from mystic_trading.errors import ConfigError, ThrottleError

if TYPE_CHECKING:
    from mystic_trading.api._state import ApiState

__all__ = ["CLIENT_HEADER", "ClientShares", "ShareExceeded", "client_of", "share_pct"]

CLIENT_HEADER = "x-mystic-client"
# Clients counted apart in one window; past this, new names are counted by their address
# (a client inventing names cannot grow the table without bound).
MAX_CLIENTS = 10_000
MAX_NAME_CHARS = 64
# How long a failed Redis is left alone before the counts are shared again.
REDIS_RETRY_S = 5.0

Handler = Callable[[Request], Awaitable[Response]]

log = logging.getLogger(__name__)

# KEYS[1]: a client's counter for one window; ARGV: the weight, the share, the counter's
# lifetime (ms: the window's rest, and a second). Adds the weight unless the client is at
# its share already: {taken (1/0), the count after}.
_CHARGE = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used >= tonumber(ARGV[2]) then
  return {0, used}
end
used = redis.call('INCRBY', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {1, used}
"""

_client: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "mystic_api_client", default=None
)


class ShareExceeded(ThrottleError):
    """The client has used its share of the exchange's budget in this window and what it
    asked for is not held: nothing is sent for it until the window ends."""

    def __init__(self, client: str, used: int, share: int, retry_after: int) -> None:
        # The message goes to whoever waited on the refused fetch (another client may have
        # joined it), so it names no client.
        super().__init__(
            f"the client that asked has caused {used} request weight, its share of the "
            f"exchange's budget is {share} a window, and Mystic holds no answer for this "
            "request"
        )
        self.client = client
        self.used = used
        self.share = share
        self.retry_after = retry_after


def share_pct(value: float | None) -> float | None:
    """``client_share_pct`` checked: None (off) or more than 0 and at most 100."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(
            f"client_share_pct must be a number, got {value!r}",
            setting="client_share_pct",
            value=value,
        )
    if not (0 < value <= 100) or math.isnan(value):
        raise ConfigError(
            f"client_share_pct must be more than 0 and at most 100, got {value!r}",
            setting="client_share_pct",
            value=value,
        )
    return float(value)


def client_of(request: Request) -> str:
    """Who is asking: ``name:<X-Mystic-Client>``, ``token:<digest>`` or ``addr:<host>``."""
    headers = request.headers
    name = headers.get(CLIENT_HEADER)
    if name:
        return "name:" + name[:MAX_NAME_CHARS]
    auth = headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        digest = hashlib.sha256(token.strip().encode()).hexdigest()[:16]
        return "token:" + digest
    peer = request.client
    return "addr:" + (peer.host if peer is not None else "unknown")


class ClientShares:
    """The weight each client caused in the exchange's current window, and the check."""

    def __init__(self, state: ApiState, pct: float, *, prefix: str = "mystic:shares") -> None:
        self.state = state
        self.pct = pct
        self.prefix = prefix
        self._window = -1
        # The weight each client caused this window: this worker's count, or without Redis
        # the whole count; with Redis, the deployment's count as Redis last said it.
        self._used: dict[str, int] = {}
        self.refused = 0
        self._gated: object = None  # the throttler the charge is a gate of
        self._redis: Any = None
        self._script: Any = None
        # While Redis fails, it is asked again only after REDIS_RETRY_S (monotonic), so a
        # dead Redis does not add its timeout to every request sent.
        self._redis_retry_at: float | None = None

    # -- the window ---------------------------------------------------------------------

    def _now(self) -> int:
        """The ms left in the exchange's current window (whose counts start at 0)."""
        throttler = self.state.md.throttler
        window_ms = int(throttler.budget.window_s * 1000)
        now = int(throttler.exchange_ms())  # the exchange's windows follow its clock
        index = now // window_ms
        if index != self._window:
            self._window, self._used = index, {}
        return window_ms - now % window_ms

    def share(self) -> int:
        """The weight one client may cause in a window (at least 1)."""
        return max(1, math.floor(self.state.md.throttler.budget.limit * self.pct / 100))

    def used(self, client: str) -> int:
        """The weight ``client`` has caused in the current window."""
        self._now()
        return self._used.get(client, 0)

    def clients(self) -> dict[str, int]:
        """The weight each client counted has caused in the current window."""
        self._now()
        return dict(self._used)

    async def charge(self, weight: int) -> None:
        """Count ``weight`` sent now to the client of this context; refuse it first when
        that client is over its share."""
        client = _client.get()
        if client is None:
            return  # not sent for a request (the start-up listing, the dashboard sampler)
        left_ms = self._now()
        share = self.share()
        if client not in self._used and len(self._used) >= MAX_CLIENTS:
            return  # counted nowhere: see MAX_CLIENTS (its address is counted next time)
        shared = await self._charge_shared(client, weight, share, left_ms)
        if shared is not None:
            taken, used = shared
            self._used[client] = used
        else:
            used = self._used.get(client, 0)
            taken = used < share
            if taken:
                self._used[client] = used + weight
        if not taken:
            self.refused += 1
            raise ShareExceeded(client, used, share, max(1, math.ceil(left_ms / 1000)))

    async def _charge_shared(
        self, client: str, weight: int, share: int, left_ms: int
    ) -> tuple[bool, int] | None:
        """Check and add ``weight`` in Redis: (taken, the client's count); None without
        Redis or while it fails (the caller counts locally)."""
        url = self.state.settings.redis_url
        if url is None:
            return None
        retry_at = self._redis_retry_at
        if retry_at is not None and time.monotonic() < retry_at:
            return None
        failing = retry_at is not None
        from redis.exceptions import RedisError  # imported with Redis only

        if self._redis is None:
            import redis.asyncio as aioredis

            self._redis = aioredis.Redis.from_url(
                url.get_secret_value(), socket_timeout=0.25, socket_connect_timeout=0.25
            )
            self._script = self._redis.register_script(_CHARGE)
        venue = self.state.md.provider.venue
        key = f"{self.prefix}:{venue}:{self._window}:{client}"
        try:
            taken, used = await self._script(keys=[key], args=[weight, share, left_ms + 1000])
        except (RedisError, OSError) as exc:
            if not failing:
                log.warning("client shares: Redis failed (%s); each worker counts alone", exc)
            self._redis_retry_at = time.monotonic() + REDIS_RETRY_S
            return None
        if failing:
            log.warning("client shares: Redis answers again; the counts are shared")
            self._redis_retry_at = None
        return bool(taken), int(used)

    async def aclose(self) -> None:
        redis, self._redis = self._redis, None
        if redis is not None:
            await redis.aclose()

    # -- wiring -------------------------------------------------------------------------

    def hook(self) -> None:
        """Put the charge at the door of the throttler that talks to the exchange (once per
        throttler: a restarted service's MarketData brings a new one)."""
        throttler = self.state.md.throttler
        if throttler is not self._gated:
            throttler.add_gate(self._gate)
            self._gated = throttler

    async def _gate(self, endpoint: str, weight: int) -> None:
        await self.charge(weight)

    def bind(self, handler: Handler) -> Handler:
        """``handler`` run with its request's client in the context."""

        async def endpoint(request: Request) -> Response:
            if self.state.md_or_none is not None:
                self.hook()
            name = client_of(request)
            if len(self._used) >= MAX_CLIENTS and name not in self._used:
                peer = request.client
                name = "addr:" + (peer.host if peer is not None else "unknown")
            token = _client.set(name)
            try:
                return await handler(request)
            finally:
                _client.reset(token)

        return endpoint
