"""BinanceProvider: Binance's spot REST API for public market data, through the Throttler.

Every request goes through ``Throttler.call`` with its published weight (``binance_weight``),
so retries, 429 pauses and 418 bans are handled there; this module turns answers into
Mystic's values (``binance_parse``) and errors into Mystic's errors. The base URL is a
setting: the built-in sandbox by default, ``https://api.binance.com`` (or
``https://data-api.binance.vision`` for public data) in production.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from mystic_trading.errors import MalformedPayload, UpstreamUnavailable
from mystic_trading.models import Candle, Interval, OrderBook, Symbol, Ticker
from mystic_trading.providers._http import pooled_transport
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
from mystic_trading.throttle import Priority, Throttler, binance_weight

__all__ = ["PAGE_LIMIT", "BinanceProvider"]

PAGE_LIMIT = 1000  # /api/v3/klines "limit: Default 500; Maximum: 1000"
DEPTH_LIMITS = (5, 10, 20, 50, 100, 500, 1000, 5000)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class BinanceProvider:
    """One Binance endpoint set behind one throttler; create per process, close with aclose()."""

    name = PROVIDER
    page_limit = PAGE_LIMIT

    def __init__(
        self,
        base_url: str,
        throttler: Throttler,
        *,
        connect_timeout_s: float = 3.0,
        read_timeout_s: float = 10.0,
        max_connections: int = 32,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.throttler = throttler
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=httpx.Timeout(read_timeout_s, connect=connect_timeout_s),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            headers={"Accept": "application/json", "User-Agent": "mystic-trading"},
            transport=transport or pooled_transport(max_connections),
        )
        self._clock_offset_ms = 0
        self.calls = 0
        self.weight = 0

    async def aclose(self) -> None:
        await self._client.aclose()

    def now_ms(self) -> int:
        """The exchange's clock, estimated from the local one and the last server time seen."""
        return _now_ms() + self._clock_offset_ms

    async def _get(
        self,
        path: str,
        params: Mapping[str, Any],
        *,
        priority: Priority = Priority.INTERACTIVE,
        symbol: str = "",
        interval: str = "",
    ) -> Any:
        weight = binance_weight(path, params)
        endpoint = path.removeprefix("/api/v3/")
        self.calls += 1
        self.weight += weight
        response = await self.throttler.call(
            path,
            weight,
            lambda: self._client.get(path, params=params),
            priority=priority,
        )
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
            return json.loads(response.content)
        except ValueError as exc:
            raise MalformedPayload(
                f"malformed {endpoint} payload from {PROVIDER}: not JSON ({exc}; "
                f"{len(response.content)} bytes, starts {response.content[:80]!r})",
                provider=PROVIDER,
                endpoint=endpoint,
            ) from exc

    async def exchange_info_raw(self) -> dict[str, Any]:
        """The exchangeInfo document as sent (the throttler reads its rateLimits)."""
        sent = _now_ms()
        data = await self._get("/api/v3/exchangeInfo", {})
        if not isinstance(data, dict):
            raise MalformedPayload(
                f"malformed exchangeInfo payload from {PROVIDER}: expected an object",
                provider=PROVIDER,
                endpoint="exchangeInfo",
            )
        server_time = data.get("serverTime")
        if isinstance(server_time, int):
            self._clock_offset_ms = server_time - (sent + _now_ms()) // 2
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
    ) -> list[Candle]:
        """One page of candles opening in [start, end), at most ``PAGE_LIMIT`` of them.

        The candle open at the exchange's ``now`` comes back with ``closed=False``.
        """
        if end <= start:
            return []
        data = await self._get(
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
        candles = parse_klines(data, symbol, interval, now_ms=self.now_ms())
        if candles and not (start <= candles[0].open_time and candles[-1].open_time < end):
            raise MalformedPayload(
                f"malformed klines payload from {PROVIDER}: rows outside the asked window "
                f"[{start}, {end})",
                provider=PROVIDER,
                endpoint="klines",
            )
        return candles

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
