"""The Provider protocol: what MarketData needs from an exchange adapter.

One small seam, as httpx's transport is: an adapter turns the exchange's REST answers into
Mystic's values and its errors into Mystic's errors, and sends every request through its
Throttler. ``BinanceProvider`` is the one adapter today.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from mystic_trading.models import Candle, Interval, OrderBook, Symbol, Ticker
from mystic_trading.throttle import Priority, Throttler

__all__ = ["Provider"]


class Provider(Protocol):
    """An exchange's public market data behind one throttler."""

    name: str
    page_limit: int  # candles per klines page
    throttler: Throttler
    calls: int  # requests sent, for stats
    weight: int  # their weight, in the exchange's units

    def now_ms(self) -> int:
        """The exchange's clock (UTC epoch ms), as well as it is known."""
        ...

    async def exchange_info_raw(self) -> dict[str, Any]:
        """The listing and rate limits, as the exchange sent them."""
        ...

    async def ticker(self, symbol: Symbol, *, priority: Priority = ...) -> Ticker: ...

    async def tickers(
        self, symbols: Sequence[Symbol], *, priority: Priority = ...
    ) -> list[Ticker]: ...

    async def klines(
        self, symbol: Symbol, interval: Interval, start: int, end: int, *, priority: Priority = ...
    ) -> list[Candle]:
        """One page of candles opening in [start, end); the open one has closed=False."""
        ...

    async def depth(
        self, symbol: Symbol, limit: int = ..., *, priority: Priority = ...
    ) -> OrderBook: ...

    async def aclose(self) -> None: ...
