"""BinanceProvider: Binance's spot REST API for public market data, through the Throttler.

Every request goes through ``Throttler.call`` with its published weight (``binance_weight``),
so retries, 429 pauses and 418 bans are handled there; this module turns answers into
Mystic's values (``binance_parse``) and errors into Mystic's errors. The base URL is a
setting: the built-in sandbox by default, ``https://api.binance.com`` (or
``https://data-api.binance.vision`` for public data) in production.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from mystic_trading.errors import (
    DataError,
    MalformedPayload,
    ThrottleError,
    UpstreamError,
    UpstreamUnavailable,
    VenueMismatch,
)
from mystic_trading.models import Interval, OrderBook, Symbol, Ticker
from mystic_trading.providers._clock import ExchangeClock
from mystic_trading.providers._http import pooled_transport
from mystic_trading.providers.base import KlinePage
from mystic_trading.providers.binance_parse import (
    PROVIDER,
    ExchangeInfo,
    error_from_response,
    parse_book_ticker,
    parse_depth,
    parse_exchange_info,
    parse_klines,
    parse_ticker_24hr,
)
from mystic_trading.providers.venue import (
    VENUE_HEADER,
    is_declared_venue,
    venue_from_url,
    venue_of,
)
from mystic_trading.throttle import Priority, Throttler, binance_weight

__all__ = ["BULK_DEADLINE_S", "DEFAULT_FINAL_GRACE_MS", "PAGE_LIMIT", "BinanceProvider"]

log = logging.getLogger(__name__)

PAGE_LIMIT = 1000  # /api/v3/klines "limit: Default 500; Maximum: 1000"
# How long after its close a candle may still change at the exchange (its own late
# aggregation); a candle is final only once the exchange's clock is certainly past it.
DEFAULT_FINAL_GRACE_MS = 2000


# The throttle-queue deadline of a background (bulk) request: a backfill's or a long candle
# walk's page yields to every interactive request and waits out 429 pauses, so the
# interactive default (throttle.default_deadline_s, 30 s) ended long jobs with DeadlinePassed
# while the exchange answered (new-user D3). It bounds each request's wait, not the job; a
# ban, an outage or a full queue still fail as for any request.
BULK_DEADLINE_S = 600.0

# Answers whose body carries the exchange's clock in ``serverTime``.
_STAMPED = frozenset({"/api/v3/time", "/api/v3/exchangeInfo"})


@dataclass(frozen=True, slots=True)
class _Reply:
    data: Any
    sent: float  # local monotonic ms when the answering attempt left, after the grant


class BinanceProvider:
    """One Binance endpoint set behind one throttler; create per process, close with aclose().

    ``venue`` is the id its data is keyed by (``providers/venue.py``); when given, every
    answer must come from that venue (its ``X-Sandbox-Venue`` header is ``declared``), else
    :class:`VenueMismatch`. Without it the venue is the base URL's and nothing is checked.
    """

    name = PROVIDER
    page_limit = PAGE_LIMIT

    def __init__(
        self,
        base_url: str,
        throttler: Throttler,
        *,
        venue: str | None = None,
        declared: str | None = None,
        clock: ExchangeClock | None = None,
        final_grace_ms: int = DEFAULT_FINAL_GRACE_MS,
        connect_timeout_s: float = 3.0,
        read_timeout_s: float = 10.0,
        max_connections: int = 32,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.throttler = throttler
        self.venue = venue if venue is not None else venue_from_url(self.base_url)
        self._check_venue = venue is not None
        self._declared = declared
        # Unconfirmed: the exchange could not be asked who it is when the process opened;
        # its first answer says, before anything of it is kept.
        self.confirmed = True
        self.on_identified: Callable[[str], None] = lambda venue: None
        self.clock = clock if clock is not None else ExchangeClock()
        self.final_grace_ms = final_grace_ms
        self._next_sync_try = float("-inf")
        self._syncing: asyncio.Future[None] | None = None
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=httpx.Timeout(read_timeout_s, connect=connect_timeout_s),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            headers={"Accept": "application/json", "User-Agent": "mystic-trading"},
            transport=transport or pooled_transport(max_connections),
        )
        self.calls = 0
        self.weight = 0

    async def aclose(self) -> None:
        if self._syncing is not None and not self._syncing.done():
            self._syncing.cancel()
            await asyncio.gather(self._syncing, return_exceptions=True)
        await self._client.aclose()

    def now_ms(self) -> int:
        """The exchange's clock now, as well as round trips have measured it."""
        return self.clock.now_ms()

    @property
    def declared(self) -> str | None:
        """What the exchange declares itself (``X-Sandbox-Venue``), if anything."""
        return self._declared

    def _identify(self, declared: str | None) -> None:
        """The first answer of an exchange that could not be asked at start names its venue:
        key everything by it from now on (nothing of its answers was kept before)."""
        self._declared = declared
        self.venue = venue_of(self.base_url, declared)
        self.confirmed = True
        log.warning("the exchange at %s identifies as %s", self.base_url, self.venue)
        self.on_identified(self.venue)

    async def sync_clock(self, *, force: bool = False) -> None:
        """Measure the exchange's clock (``/api/v3/time``, weight 1) if it is due: before the
        first sample, after a step, and every ``resync_s``.

        Only a clock with no bound at all is waited for; a due re-measurement of a bounded
        one runs in the background (its bounds, widened for drift, are already safe), so a
        saturated throttle never makes a cached answer wait or fail. One measurement at a
        time; a failed one is tried again ``resync_s`` later."""
        clock = self.clock
        if not (force or clock.needs_sync):
            return
        if not force and clock.local() < self._next_sync_try:
            return
        if self._syncing is None or self._syncing.done():
            self._syncing = asyncio.ensure_future(self._measure_clock())
        if force or not clock.bounded:
            await asyncio.shield(self._syncing)

    async def _measure_clock(self) -> None:
        try:
            await self._get("/api/v3/time", {}, priority=Priority.INTERACTIVE)
        except (UpstreamError, ThrottleError, DataError) as exc:
            # Date headers and the grace still bound the clock; try again in a while.
            self._next_sync_try = self.clock.local() + self.clock.resync_ms
            log.warning("could not measure the exchange's clock (%s)", exc)

    async def _get(self, path: str, params: Mapping[str, Any], **how: Any) -> Any:
        """The decoded answer of :meth:`_request` (same keyword arguments)."""
        return (await self._request(path, params, **how)).data

    async def _request(
        self,
        path: str,
        params: Mapping[str, Any],
        *,
        priority: Priority = Priority.INTERACTIVE,
        symbol: str = "",
        interval: str = "",
    ) -> _Reply:
        weight = binance_weight(path, params)
        endpoint = path.removeprefix("/api/v3/")
        local = self.clock.local
        sent = 0.0

        async def send() -> httpx.Response:
            # Stamped per attempt, after the throttler's grant: the clock is measured from
            # the round trip alone, never from queue waits or earlier attempts. Counted here
            # too: a retry is a call, a request refused before it left (a ban, a full queue,
            # a passed deadline) is none.
            nonlocal sent
            sent = local()
            self.calls += 1
            self.weight += weight
            return await self._client.get(path, params=params)

        bulk = priority is Priority.BACKGROUND
        deadline_s = max(BULK_DEADLINE_S, self.throttler.settings.default_deadline_s)
        response = await self.throttler.call(
            path, weight, send, priority=priority, deadline_s=deadline_s if bulk else None
        )
        received = local()
        headers = response.headers
        if self._check_venue:
            found = headers.get(VENUE_HEADER)
            if (
                found != self._declared
                and not self.confirmed
                and (found is None or is_declared_venue(found))
            ):
                self._identify(found)
            elif found != self._declared:
                raise VenueMismatch(
                    f"the exchange at {self.base_url} now identifies as "
                    f"{found or 'no declared venue'}, but this process keys its data by "
                    f"{self.venue}; nothing it answers is used. Restart Mystic so that it "
                    "keys data by the exchange it talks to.",
                    expected=self.venue,
                    found=found or "",
                )
        server_time: int | None = None
        if path in _STAMPED and response.status_code == 200:
            server_time = _server_time(response.content)
        self.clock.observe(sent, received, server_time=server_time, date=headers.get("date"))
        if response.status_code >= 400:
            raise error_from_response(
                response.status_code,
                response.content,
                response.headers,
                endpoint,
                symbol=symbol,
                interval=interval,
                now_ms=self.now_ms(),
            )
        content_type = response.headers.get("content-type", "")
        if "json" not in content_type:
            raise MalformedPayload(
                f"malformed {endpoint} payload from {PROVIDER}: expected JSON, got "
                f"{content_type or 'no content type'} ({response.content[:80]!r})",
                provider=PROVIDER,
                endpoint=endpoint,
            )
        try:
            return _Reply(json.loads(response.content), sent)
        except (ValueError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
            raise MalformedPayload(
                f"malformed {endpoint} payload from {PROVIDER}: not JSON ({exc}; "
                f"{len(response.content)} bytes, starts {response.content[:80]!r})",
                provider=PROVIDER,
                endpoint=endpoint,
            ) from exc

    async def exchange_info_raw(self) -> dict[str, Any]:
        """The exchangeInfo document as sent (the throttler reads its rateLimits); its
        ``serverTime`` is also a sample of the exchange's clock."""
        reply = await self._request("/api/v3/exchangeInfo", {})
        data = reply.data
        if not isinstance(data, dict):
            raise MalformedPayload(
                f"malformed exchangeInfo payload from {PROVIDER}: expected an object",
                provider=PROVIDER,
                endpoint="exchangeInfo",
            )
        return data

    async def exchange_info(self) -> ExchangeInfo:
        """Symbols, filters and rate limits; also sets the clock offset to the exchange."""
        return parse_exchange_info(await self.exchange_info_raw())

    async def ticker(self, symbol: Symbol, *, priority: Priority = Priority.INTERACTIVE) -> Ticker:
        """Last price with 24-hour statistics and best bid/ask (``/ticker/24hr``, weight 2)."""
        data = await self._get(
            "/api/v3/ticker/24hr",
            {"symbol": symbol.exchange},
            priority=priority,
            symbol=str(symbol),
        )
        (ticker,) = parse_ticker_24hr(data, {symbol.exchange: symbol})
        return ticker

    async def tickers(
        self, symbols: Sequence[Symbol], *, priority: Priority = Priority.INTERACTIVE
    ) -> list[Ticker]:
        """Several tickers in one call (``symbols=[...]``; weight 2 up to 20 symbols)."""
        if not symbols:
            return []
        names = json.dumps([s.exchange for s in symbols], separators=(",", ":"))
        data = await self._get(
            "/api/v3/ticker/24hr",
            {"symbols": names},
            priority=priority,
            symbol=",".join(str(s) for s in symbols),
        )
        if not isinstance(data, list):
            raise MalformedPayload(
                f"malformed ticker/24hr payload from {PROVIDER}: expected a list for symbols=",
                provider=PROVIDER,
                endpoint="ticker/24hr",
            )
        return parse_ticker_24hr(data, {s.exchange: s for s in symbols})

    async def klines(
        self,
        symbol: Symbol,
        interval: Interval,
        start: int,
        end: int,
        *,
        priority: Priority = Priority.INTERACTIVE,
    ) -> KlinePage:
        """One page of candles opening in [start, end), at most ``PAGE_LIMIT`` of them.

        A candle is ``closed`` (final) only when its close time plus ``final_grace_ms`` is
        before a certain lower bound of the exchange's clock when it answered: the moment the
        request left, mapped to the exchange's clock, less the mapping's error. The open
        candle, and one that closed less than the grace ago, come back ``closed=False``.
        """
        if end <= start:
            return KlinePage([], start)
        await self.sync_clock()
        reply = await self._request(
            "/api/v3/klines",
            {
                "symbol": symbol.exchange,
                "interval": interval.value,
                "startTime": start,
                "endTime": end - 1,
                "limit": PAGE_LIMIT,
            },
            priority=priority,
            symbol=str(symbol),
            interval=interval.value,
        )
        # Read after the answer: a Date header that showed a step has already moved it.
        final_before = self.clock.lower_bound(reply.sent) - self.final_grace_ms
        candles = parse_klines(reply.data, symbol, interval, now_ms=final_before)
        if candles and not (start <= candles[0].open_time and candles[-1].open_time < end):
            raise MalformedPayload(
                f"malformed klines payload from {PROVIDER}: rows outside the asked window "
                f"[{start}, {end})",
                provider=PROVIDER,
                endpoint="klines",
            )
        return KlinePage(candles, max(start, interval.floor(final_before)))

    async def depth(
        self, symbol: Symbol, limit: int = 100, *, priority: Priority = Priority.INTERACTIVE
    ) -> OrderBook:
        """An order-book snapshot of ``limit`` levels a side (weight by limit tier)."""
        data = await self._get(
            "/api/v3/depth",
            {"symbol": symbol.exchange, "limit": limit},
            priority=priority,
            symbol=str(symbol),
        )
        return parse_depth(data, symbol, self.now_ms())

    async def book_ticker(
        self, symbol: Symbol, *, priority: Priority = Priority.INTERACTIVE
    ) -> Ticker:
        """Best bid and ask only (``/ticker/bookTicker``, weight 2); price is the midpoint."""
        data = await self._get(
            "/api/v3/ticker/bookTicker",
            {"symbol": symbol.exchange},
            priority=priority,
            symbol=str(symbol),
        )
        (ticker,) = parse_book_ticker(data, self.now_ms(), {symbol.exchange: symbol})
        return ticker

    async def ping(self) -> None:
        """Reachability check (weight 1); raises UpstreamUnavailable when down."""
        data = await self._get("/api/v3/ping", {})
        if data != {}:
            raise UpstreamUnavailable(f"{PROVIDER} ping answered {data!r}", provider=PROVIDER)


def _server_time(body: bytes) -> int | None:
    """``serverTime`` of a /api/v3/time answer, or None when it has none."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return None
    value = data.get("serverTime") if isinstance(data, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None
