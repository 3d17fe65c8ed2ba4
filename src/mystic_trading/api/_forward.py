"""Public GETs MarketData does not model, sent to the exchange through the throttler and
kept briefly, byte for byte.

``/ticker/24hr`` (its statistics are more than a Ticker holds), ``/avgPrice``, the all-symbol
forms of ``/ticker/price`` and ``/ticker/bookTicker`` (one call of weight 4 beats a hundred
of weight 2), ``/trades``, ``/aggTrades``, the rolling ``/ticker`` and exchangeInfo when the
store has no copy: each goes through ``Throttler.call`` with Binance's weight, so it shares
the deployment's budget, its pauses and its bans with everything else, and its answer is
passed on exactly as the exchange sent it. Answers are kept by the same layered read as
MarketData's (``marketdata.layered.Layers``: memory, single flight, stale-while-revalidate,
stale-if-error, served at once while the throttler is held back), in memory only: Redis
holds only values with a codec (planned: share them across workers).

A 4xx from the exchange (its -1121 for a symbol listed since the listing was read, a -1100)
is passed on as it came and not kept.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx

from mystic_trading.config import CacheSettings, ProviderSettings
from mystic_trading.errors import MysticError, VenueMismatch
from mystic_trading.marketdata.answer import Answer, Layer, stamp_ms
from mystic_trading.marketdata.layered import Layers
from mystic_trading.marketdata.stats import MarketDataStats
from mystic_trading.providers.venue import VENUE_HEADER
from mystic_trading.throttle import Throttler, binance_weight

__all__ = ["Forwarded", "Forwarder", "Passthrough", "forward_weight"]

log = logging.getLogger(__name__)

# Forwarded answers kept at once; the all-symbol ones are about 1 MB each on Binance, and
# the memory cache estimates a non-market value as small, so entries are what bounds it.
MAX_ENTRIES = 512
_PER_SYMBOL_4 = frozenset({"/api/v3/ticker", "/api/v3/ticker/tradingDay"})


@dataclass(frozen=True, slots=True)
class Forwarded:
    """An exchange answer as it came: status, body and content type."""

    status: int
    body: bytes
    content_type: str


class Passthrough(MysticError):
    """The exchange refused the request (a 4xx other than 429/418): pass its answer on."""

    def __init__(self, answer: Forwarded) -> None:
        super().__init__(f"the exchange answered HTTP {answer.status}")
        self.answer = answer


def forward_weight(path: str, params: Mapping[str, str]) -> int:
    """Binance's weight of ``GET path?params`` (rest-api.md at a5e0bc3), including the
    endpoints ``throttle.binance_weight`` does not list yet: ``/aggTrades`` 4, the rolling
    ``/ticker`` and ``/ticker/tradingDay`` 4 a symbol up to 200."""
    if path == "/api/v3/aggTrades":
        return 4
    if path in _PER_SYMBOL_4:
        symbols = 1 if params.get("symbol") else params.get("symbols", "").count(",") + 1
        return min(200, 4 * symbols)
    return binance_weight(path, params)


class Forwarder:
    """Throttled, cached GETs of public endpoints; one per process, closed with aclose()."""

    def __init__(
        self,
        throttler: Throttler,
        provider: ProviderSettings,
        cache: CacheSettings,
        *,
        declared: Callable[[], str | None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.throttler = throttler
        self.declared = declared
        self.layers = Layers(
            cache.model_copy(update={"memory_max_entries": MAX_ENTRIES}),
            None,
            MarketDataStats(),
            clock,
            held_back=throttler.held_back,
        )
        self._client = httpx.AsyncClient(
            base_url=str(provider.base_url).rstrip("/"),
            timeout=httpx.Timeout(provider.read_timeout_s, connect=provider.connect_timeout_s),
            headers={"Accept": "application/json", "User-Agent": "mystic-trading"},
        )
        self.calls = 0  # requests sent (retries included), as the provider counts its own
        self.weight = 0

    async def aclose(self) -> None:
        await self.layers.aclose()
        await self._client.aclose()

    async def get(
        self, path: str, params: Sequence[tuple[str, str]], ttl_s: float
    ) -> Answer[Forwarded]:
        """``GET path?params`` from the closest layer that holds it; Passthrough for the
        exchange's 4xx; Banned, RateLimited, UpstreamUnavailable, ThrottleError when nothing
        can be had and nothing is held."""
        ordered = sorted(params)
        key = f"f|{path}?{urlencode(ordered)}"
        weight = forward_weight(path, dict(params))

        async def send() -> httpx.Response:
            self.calls += 1
            self.weight += weight
            return await self._client.get(path, params=list(params))

        async def fetch() -> Answer[Any]:
            response = await self.throttler.call(path, weight, send)
            declared = self.declared()
            found = response.headers.get(VENUE_HEADER)
            if declared is not None and found != declared:
                raise VenueMismatch(
                    f"the exchange now identifies as {found or 'no declared venue'}, not "
                    f"{declared}; nothing it answers is served",
                    expected=declared,
                    found=found or "",
                )
            answer = Forwarded(
                response.status_code,
                response.content,
                response.headers.get("content-type", "application/json"),
            )
            if response.status_code != 200:
                raise Passthrough(answer)
            return Answer(answer, Layer.UPSTREAM, stamp_ms())

        # Counted as "ticker" in this forwarder's own stats: MarketDataStats knows only
        # MarketData's kinds, and these answers are as short-lived as a ticker.
        return await self.layers.read("ticker", key, ttl_s, fetch)
