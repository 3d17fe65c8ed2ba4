"""The exchange's listing: symbols are checked before any quota is spent on them.

exchangeInfo (weight 20) is kept in the store per venue with its age and shared by every
process and CLI call of a deployment: a process that finds a copy younger than an hour uses
it and spends nothing (seven CLI calls spent 140 of 152 weight on it, new-user D6). It is
refreshed in the background once an hour (noticed on the next request that misses the
cache), on demand when a name is not in the listing (at most once a minute, so a new listing
is usable without a restart, review M1), and every call goes through single flight. It also
sets the throttler's budget from its ``rateLimits``.

A name is resolved to a listed Symbol from it; one that is not listed is refused at once, and
one the exchange itself rejects (-1121) is remembered for ``negative_ttl_s`` (a negative
cache), so a typo in a bot's loop costs nothing. When exchangeInfo cannot be had (the
exchange is down), names are parsed but not checked, so the layers below can still serve
what they hold, and loading is tried again every ``RETRY_S`` (a process started during an
outage never loaded it, faults 3).
"""

from __future__ import annotations

import asyncio
import difflib
import json
import logging
from collections.abc import Callable
from typing import Any

from mystic_trading.errors import (
    InvalidSymbol,
    MalformedPayload,
    StoreError,
    ThrottleError,
    UnknownSymbol,
    UpstreamError,
)
from mystic_trading.marketdata.singleflight import SingleFlight
from mystic_trading.models import Symbol, symbol_text
from mystic_trading.providers.base import Provider
from mystic_trading.providers.binance_parse import ExchangeInfo, parse_exchange_info
from mystic_trading.store import Store
from mystic_trading.throttle import budget_from_exchange_info

__all__ = ["SymbolBook"]

log = logging.getLogger(__name__)

INFO_TTL_S = 3600.0  # the listing is refreshed once an hour
RECHECK_S = 60.0  # a name not listed refreshes it at most this often
RETRY_S = 10.0  # while it cannot be had, loading is tried again this often
# A refused name suggests at most this many listed symbols, each at least this alike
# (difflib's ratio: BTCUSTD and BTCUSDT are 0.86 alike, BTCUSDT and ETHUSDT 0.71).
SUGGEST_AT_MOST = 3
SUGGEST_CUTOFF = 0.75


class SymbolBook:
    """Resolves names to listed symbols; keeps exchangeInfo and the negative cache."""

    def __init__(
        self,
        provider: Provider,
        *,
        negative_ttl_s: float,
        clock: Callable[[], float],
        on_reload: Callable[[], None] = lambda: None,
        store: Store | None = None,
    ) -> None:
        self.provider = provider
        self.negative_ttl_s = negative_ttl_s
        self.clock = clock
        self.on_reload = on_reload
        self.store = store
        self.negative_hits = 0
        self.fetched = 0  # exchangeInfo documents fetched from the exchange
        self._flight: SingleFlight[ExchangeInfo] = SingleFlight()
        self._info: ExchangeInfo | None = None
        self._info_at = -INFO_TTL_S  # local clock, as if fetched then
        self._info_stamp = -1  # the store's stamp of the copy in use
        self._tried_at = -RETRY_S
        self._background: asyncio.Task[Any] | None = None
        self._names: dict[str | Symbol, Symbol] = {}
        self._negative: dict[str, float] = {}

    async def info(self, *, refresh: bool = False, max_age_s: float = INFO_TTL_S) -> ExchangeInfo:
        """The exchange's symbols and limits: the copy at hand when younger than
        ``max_age_s`` (this process's, else the store's), else fetched (single flight)."""
        if not refresh and self._info is not None and self.clock() - self._info_at < max_age_s:
            return self._info
        # Single flight: the first requests of a fresh process all want it at once.
        return await self._flight.do(
            "exchangeInfo", lambda: self._load(refresh=refresh, max_age_s=max_age_s)
        )

    def age_s(self) -> float | None:
        """How old the listing in use is, or None when there is none."""
        return None if self._info is None else self.clock() - self._info_at

    async def _load(self, *, refresh: bool, max_age_s: float) -> ExchangeInfo:
        self._tried_at = self.clock()
        venue = self.provider.venue
        if not refresh and self.store is not None:
            try:
                kept = await self.store.venues.load_info(venue)
            except StoreError as exc:
                log.warning("could not read the kept exchangeInfo (%s)", exc)
                kept = None
            # Another process's copy, newer than the one in use and young enough.
            if kept is not None and kept[0].fetched_at > self._info_stamp and kept[1] < max_age_s:
                try:
                    info = self._use(json.loads(kept[0].value), kept[1])
                except (ValueError, MalformedPayload) as exc:
                    log.warning("the kept exchangeInfo is unreadable (%s); fetching", exc)
                else:
                    self._info_stamp = kept[0].fetched_at
                    log.debug(
                        "exchangeInfo of %s from the store, %.0f s old (%d symbols)",
                        venue,
                        kept[1],
                        len(info.symbols),
                    )
                    return info
        raw = await self.provider.exchange_info_raw()
        self.fetched += 1
        info = self._use(raw, 0.0)
        log.debug(
            "exchangeInfo of %s fetched from the exchange (%d symbols)",
            self.provider.venue,
            len(info.symbols),
        )
        if self.store is not None:
            body = json.dumps(raw, separators=(",", ":"))
            try:  # the venue after the answer: an unconfirmed one is named by it
                self._info_stamp = await self.store.venues.save_info(self.provider.venue, body)
            except StoreError as exc:
                log.warning("could not keep exchangeInfo in the store (%s)", exc)
        return info

    def _use(self, raw: Any, age_s: float) -> ExchangeInfo:
        info = parse_exchange_info(raw)
        throttler = self.provider.throttler
        throttler.set_budget(
            budget_from_exchange_info(
                raw, fallback_limit=throttler.settings.fallback_weight_per_minute
            )
        )
        self._info, self._info_at = info, self.clock() - age_s
        self._names.clear()
        self.on_reload()
        return info

    def _refresh_in_background(self) -> None:
        if self._background is None or self._background.done():
            self._background = asyncio.ensure_future(self._quiet_refresh())

    async def _quiet_refresh(self) -> None:
        try:
            await self.info()
        except (UpstreamError, ThrottleError) as exc:
            log.warning("exchangeInfo refresh failed (%s); keeping the listing in use", exc)

    async def aclose(self) -> None:
        """Let a background refresh finish."""
        if self._background is not None:
            await asyncio.gather(self._background, return_exceptions=True)

    async def _current(self) -> ExchangeInfo | None:
        """The listing to check a name against, loading it when there is none (tried again
        every ``RETRY_S`` while it cannot be had) and refreshing it in the background when
        it is older than an hour."""
        info = self._info
        now = self.clock()
        if info is None:
            if now - self._tried_at < RETRY_S:
                return None
            try:
                return await self.info()
            except (UpstreamError, ThrottleError) as exc:
                log.warning("exchangeInfo unavailable (%s); symbols are not checked", exc)
                return None
        if now - self._info_at >= INFO_TTL_S:
            self._refresh_in_background()
        return info

    async def resolve(self, name: str | Symbol) -> Symbol:
        """``name`` as a listed Symbol; InvalidSymbol or UnknownSymbol spend no quota."""
        if not isinstance(name, Symbol):
            text = symbol_text(name)  # not a str, control or non-ASCII characters: refused
        known = self._names.get(name)  # hashable now: a str or a Symbol
        if known is not None:
            return known
        info = await self._current()
        glued = (
            (text if not isinstance(name, Symbol) else name.exchange)
            .replace("/", "")
            .replace("-", "")
            .replace("_", "")
        )
        if info is not None and glued in info.symbols:
            sym = info.symbols[glued].symbol
        else:
            try:
                sym = Symbol.parse(name)
            except InvalidSymbol as exc:
                # BTCUSTD splits at no known quote, but a listing can still name what was
                # meant: then it is an unlisted name with a hint, not a lesson in formats.
                hint = "" if info is None else _did_you_mean(glued, info)
                if not hint:
                    raise
                self.negative_hits += 1
                raise UnknownSymbol(
                    f"unknown symbol {text!r}: not listed on {self.provider.venue}{hint}",
                    symbol=text,
                ) from exc
        expiry = self._negative.get(sym.exchange)
        if expiry is not None and expiry > self.clock():
            self.negative_hits += 1
            hint = "" if info is None else _did_you_mean(sym.exchange, info)
            raise UnknownSymbol(
                f"unknown symbol {sym}: not listed on {self.provider.venue} (remembered){hint}",
                symbol=str(sym),
            )
        if info is not None and sym.exchange not in info.symbols:
            # A listing older than a minute may predate a new symbol: look once more.
            if self.clock() - self._info_at >= RECHECK_S:
                try:
                    info = await self.info(max_age_s=RECHECK_S)
                except (UpstreamError, ThrottleError) as exc:
                    log.warning("exchangeInfo refresh failed (%s)", exc)
            if sym.exchange not in info.symbols:
                self.negative_hits += 1
                self._negative[sym.exchange] = self.clock() + min(RECHECK_S, self.negative_ttl_s)
                raise UnknownSymbol(
                    f"unknown symbol {sym}: not listed on {self.provider.venue}"
                    + _did_you_mean(sym.exchange, info),
                    symbol=str(sym),
                )
            sym = info.symbols[sym.exchange].symbol
        if info is not None:  # names checked against no listing are checked again later
            self._names[name] = sym
        return sym

    def remember_unknown(self, sym: Symbol) -> None:
        """The exchange said -1121 for ``sym``: refuse it locally for a while."""
        self._negative[sym.exchange] = self.clock() + self.negative_ttl_s
        self._names = {k: v for k, v in self._names.items() if v != sym}

    def forget_unknown(self) -> None:
        self._negative.clear()


def _did_you_mean(glued: str, info: ExchangeInfo) -> str:
    """``; did you mean BTC/USDT?`` naming the listed symbols closest to ``glued`` (the
    exchange form, BTCUSTD), or empty when none is close.

    difflib finds the candidates; the fewest typing slips among them win (a swap of two
    letters is one slip), so BTCUSTD names BTC/USDT alone, not BTC/USDC beside it, which
    difflib finds just as alike.
    """
    close = difflib.get_close_matches(glued, info.symbols, n=10, cutoff=SUGGEST_CUTOFF)
    if not close:
        return ""
    slips = {name: _slips(glued, name) for name in close}
    fewest = min(slips.values())
    best = [name for name in close if slips[name] == fewest][:SUGGEST_AT_MOST]
    names = [str(info.symbols[name].symbol) for name in best]
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
    return f"; did you mean {listed}?"


def _slips(a: str, b: str) -> int:
    """Letters inserted, deleted, replaced or swapped with a neighbour to turn ``a`` into
    ``b`` (the optimal-string-alignment distance)."""
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        row = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                row[j] = min(row[j], prev2[j - 2] + 1)
        prev2, prev = prev, row
    return prev[-1]
