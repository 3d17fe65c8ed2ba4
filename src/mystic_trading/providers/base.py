"""The Provider protocol: what MarketData needs from an exchange adapter.

One small seam, as httpx's transport is: an adapter turns the exchange's REST answers into
Mystic's values and its errors into Mystic's errors, and sends every request through its
Throttler. ``BinanceProvider`` is the one adapter today.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from mystic_trading.models import Candle, Interval, OrderBook, Symbol, Ticker
from mystic_trading.providers._clock import ExchangeClock
from mystic_trading.throttle import Priority, Throttler

__all__ = ["KlinePage", "Provider"]


@dataclass(frozen=True, slots=True)
class KlinePage:
    """One klines answer: its candles, and ``final_end``, the open time before which every
    candle is final at the exchange (``closed=True``). Open times in [start, final_end) the
    page did not return do not exist; nothing is known past ``final_end``."""

    candles: list[Candle]
    final_end: int


class Provider(Protocol):
    """An exchange's public market data behind one throttler."""

    name: str
    venue: str  # the id everything it answers is keyed by (providers/venue.py)
    page_limit: int  # candles per klines page
    throttler: Throttler
    clock: ExchangeClock  # the exchange's clock, bounded from round trips
    final_grace_ms: int  # a candle is final this long after the exchange's clock passed it
    calls: int  # requests sent (retries included, refused ones not), for stats
    weight: int  # their weight, in the exchange's units

    def now_ms(self) -> int:
        """The exchange's clock (UTC epoch ms), as well as it is known."""
        ...

    async def sync_clock(self, *, force: bool = False) -> None:
        """Measure the exchange's clock if that is due (cheap when it is not)."""
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
    ) -> KlinePage:
        """One page of candles opening in [start, end); only final ones have closed=True."""
        ...

    async def depth(
        self, symbol: Symbol, limit: int = ..., *, priority: Priority = ...
    ) -> OrderBook: ...

    async def aclose(self) -> None: ...
