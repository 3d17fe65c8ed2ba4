"""The exchange's listing: symbols are checked before any quota is spent on them.

exchangeInfo (weight 20) is loaded once an hour through single flight, and also sets the
throttler's budget from its ``rateLimits``. A name is resolved to a listed Symbol from it; one
that is not listed is refused at once, and one the exchange itself rejects (-1121) is
remembered for ``negative_ttl_s`` (a negative cache), so a typo in a bot's loop costs nothing.
When exchangeInfo cannot be had (the exchange is down), names are parsed but not checked, so
the layers below can still serve what they hold.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from mystic_trading.errors import ThrottleError, UnknownSymbol, UpstreamError
from mystic_trading.marketdata.singleflight import SingleFlight
from mystic_trading.models import Symbol
from mystic_trading.providers.base import Provider
from mystic_trading.providers.binance_parse import ExchangeInfo, parse_exchange_info
from mystic_trading.throttle import budget_from_exchange_info

__all__ = ["SymbolBook"]

log = logging.getLogger(__name__)

INFO_TTL_S = 3600.0


class SymbolBook:
    """Resolves names to listed symbols; keeps exchangeInfo and the negative cache."""

    def __init__(
        self,
        provider: Provider,
        *,
        negative_ttl_s: float,
        clock: Callable[[], float],
        on_reload: Callable[[], None] = lambda: None,
    ) -> None:
        self.provider = provider
        self.negative_ttl_s = negative_ttl_s
        self.clock = clock
        self.on_reload = on_reload
        self.negative_hits = 0
        self._flight: SingleFlight[ExchangeInfo] = SingleFlight()
        self._info: ExchangeInfo | None = None
        self._info_at = -INFO_TTL_S
        self._names: dict[str | Symbol, Symbol] = {}
        self._negative: dict[str, float] = {}

    async def info(self, *, refresh: bool = False) -> ExchangeInfo:
        """The exchange's symbols and limits, fetched at most once an hour."""
        if refresh or self._info is None or self.clock() - self._info_at > INFO_TTL_S:
            # Single flight: the first requests of a fresh process all want it at once.
            return await self._flight.do("exchangeInfo", self._load)
        return self._info

    async def _load(self) -> ExchangeInfo:
        raw = await self.provider.exchange_info_raw()
        info = parse_exchange_info(raw)
        throttler = self.provider.throttler
        throttler.set_budget(
            budget_from_exchange_info(
                raw, fallback_limit=throttler.settings.fallback_weight_per_minute
            )
        )
        self._info, self._info_at = info, self.clock()
        self._names.clear()
        self.on_reload()
        return info

    async def resolve(self, name: str | Symbol) -> Symbol:
        """``name`` as a listed Symbol; InvalidSymbol or UnknownSymbol spend no quota."""
        known = self._names.get(name)
        if known is not None:
            return known
        info = self._info
        if info is None:
            try:
                info = await self.info()
            except (UpstreamError, ThrottleError) as exc:
                log.warning("exchangeInfo unavailable (%s); symbols are not checked", exc)
        glued = (name if isinstance(name, str) else name.exchange).strip().upper()
        if info is not None and glued in info.symbols:
            sym = info.symbols[glued].symbol
        else:
            sym = Symbol.parse(name)
        expiry = self._negative.get(sym.exchange)
        if expiry is not None and expiry > self.clock():
            self.negative_hits += 1
            raise UnknownSymbol(f"unknown symbol {sym} (remembered)", symbol=str(sym))
        if info is not None and sym.exchange not in info.symbols:
            self.negative_hits += 1
            raise UnknownSymbol(
                f"unknown symbol {sym}: not listed on {self.provider.name}", symbol=str(sym)
            )
        self._names[name] = sym
        return sym

    def remember_unknown(self, sym: Symbol) -> None:
        """The exchange said -1121 for ``sym``: refuse it locally for a while."""
        self._negative[sym.exchange] = self.clock() + self.negative_ttl_s
        self._names = {k: v for k, v in self._names.items() if v != sym}

    def forget_unknown(self) -> None:
        self._negative.clear()
