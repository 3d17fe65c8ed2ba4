"""The public market-data endpoints under /api/v3: parameters in, Binance's JSON bytes out.

Parameter rules (rest-api.md): ``symbol`` must match '^[A-Z0-9-_.]{1,20}$' (-1100) and be
listed (-1121); a missing mandatory parameter is -1102; ``symbol`` with ``symbols`` is -1128;
integers (``limit``, ``startTime``, ``endTime``) must be digits (-1100); a timestamp of 16+
digits is read as microseconds, as Binance accepts both. A symbol listed after ``now`` does
not exist yet and is -1121.

Each handler gets two times: ``now``, the exchange's clock (``serverTime``), and ``cutoff``,
the latest trade time its market data shows (``SandboxExchange.read_clock``). A symbol is
listed by the later of the two, so a listing never disappears when the clock steps back.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import numpy as np

from mystic_trading.models import Interval
from mystic_trading.sandbox import _errors as err
from mystic_trading.sandbox._catalog import UNIT, SymbolSpec, _mix, format_units
from mystic_trading.sandbox._limiter import window_label
from mystic_trading.sandbox._market import Market

__all__ = ["Handler", "MarketApi"]

_SYMBOL = re.compile(r"^[A-Z0-9_.-]{1,20}$")
_DIGITS = re.compile(r"^[0-9]{1,20}$")
_MICROS = 10**15

Params = Mapping[str, str]
# (query, clock, data cutoff, weight limit, window seconds) -> JSON body
Handler = Callable[[Params, int, int, int, int], bytes]


def _dump(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


class MarketApi:
    """Answers the /api/v3 market-data endpoints from a :class:`Market`."""

    def __init__(self, market: Market, *, raw_requests_limit: int = 61_000) -> None:
        self.market = market
        self.raw_requests_limit = raw_requests_limit
        self._price_cache: dict[str, tuple[int, int, bytes]] = {}
        self.handlers: dict[str, Handler] = {
            "ping": lambda p, now, cutoff, limit, window: b"{}",
            "time": lambda p, now, cutoff, limit, window: b'{"serverTime":%d}' % now,
            "exchangeInfo": self.exchange_info,
            "klines": self.klines,
            "uiKlines": self.klines,
            "depth": self.depth,
            "avgPrice": self.avg_price,
            "ticker/price": self.ticker_price,
            "ticker/24hr": self.ticker_24hr,
            "ticker/bookTicker": self.book_ticker,
        }

    # -- parameters ----------------------------------------------------------------------

    def _symbol(self, params: Params, now: int, *, required: bool = True) -> SymbolSpec | None:
        raw = params.get("symbol")
        if raw is None or raw == "":
            if required:
                raise err.mandatory("symbol")
            return None
        if not _SYMBOL.match(raw):
            raise err.illegal_chars("symbol", err.SYMBOL_PATTERN)
        if not self.market.is_listed(raw, now):
            raise err.invalid_symbol()
        return self.market.spec(raw)

    def _selection(self, params: Params, now: int) -> list[SymbolSpec] | None:
        """``symbol`` or ``symbols`` (JSON array), or None for "every symbol"."""
        if "symbol" in params and "symbols" in params:
            raise err.optional_combination()
        if "symbol" in params:
            spec = self._symbol(params, now)
            assert spec is not None
            return [spec]
        raw = params.get("symbols")
        if raw is None:
            return None
        if raw == "":
            raise err.mandatory("symbols")
        try:
            names = json.loads(raw)
        except ValueError:
            raise err.illegal_chars("symbols", err.SYMBOLS_PATTERN) from None
        if not isinstance(names, list) or not all(
            isinstance(n, str) and _SYMBOL.match(n) for n in names
        ):
            raise err.illegal_chars("symbols", err.SYMBOLS_PATTERN)
        if not names:
            raise err.mandatory("symbols")
        specs: list[SymbolSpec] = []
        for name in names:
            if not self.market.is_listed(name, now):
                raise err.invalid_symbol()
            specs.append(self.market.spec(name))
        return specs

    @staticmethod
    def _int(params: Params, name: str) -> int | None:
        raw = params.get(name)
        if raw is None:
            return None
        if not _DIGITS.match(raw):
            raise err.illegal_chars(name, "^[0-9]{1,20}$")
        return int(raw)

    def _time(self, params: Params, name: str) -> int | None:
        value = self._int(params, name)
        if value is not None and value >= _MICROS:
            value //= 1000
        return value

    # -- endpoints -----------------------------------------------------------------------

    def exchange_info(
        self, params: Params, now: int, cutoff: int, limit: int, window_s: int
    ) -> bytes:
        """rest-api.md "Exchange information", shaped like the 2025-06 capture."""
        selected = self._selection(params, max(now, cutoff))
        specs = self.market.listed(max(now, cutoff)) if selected is None else selected
        num, name, _ = window_label(window_s)
        return _dump(
            {
                "timezone": "UTC",
                "serverTime": now,
                "rateLimits": [
                    {
                        "rateLimitType": "REQUEST_WEIGHT",
                        "interval": name,
                        "intervalNum": num,
                        "limit": limit,
                    },
                    {
                        "rateLimitType": "ORDERS",
                        "interval": "SECOND",
                        "intervalNum": 10,
                        "limit": 100,
                    },
                    {
                        "rateLimitType": "ORDERS",
                        "interval": "DAY",
                        "intervalNum": 1,
                        "limit": 200000,
                    },
                    {
                        "rateLimitType": "RAW_REQUESTS",
                        "interval": "MINUTE",
                        "intervalNum": 5,
                        "limit": self.raw_requests_limit,
                    },
                ],
                "exchangeFilters": [],
                "symbols": [_symbol_info(s) for s in specs],
            }
        )

    def klines(self, params: Params, now: int, cutoff: int, limit: int, window_s: int) -> bytes:
        spec = self._symbol(params, max(now, cutoff))
        assert spec is not None
        raw_interval = params.get("interval")
        if not raw_interval:
            raise err.mandatory("interval")
        try:
            interval = Interval(raw_interval)
        except ValueError:
            raise err.invalid_interval() from None
        start = self._time(params, "startTime")
        end = self._time(params, "endTime")
        count = self._int(params, "limit")
        if start is not None and end is not None and start > end:
            return b"[]"
        rows = self.market.klines(
            spec.symbol, interval, start, end, 500 if count is None else count, now=cutoff
        )
        return _dump(rows)

    def depth(self, params: Params, now: int, cutoff: int, limit: int, window_s: int) -> bytes:
        """rest-api.md "Order book": limit default 100; above 5000 only 5000 are returned."""
        spec = self._symbol(params, max(now, cutoff))
        assert spec is not None
        n = self._int(params, "limit")
        n = 100 if n is None else max(1, min(5000, n))
        i = self.market.index(spec.symbol)
        price = self.market.price(spec.symbol, cutoff) // spec.tick
        rng = np.random.default_rng(_mix(self.market.seed, i, cutoff // 1000, 0xB00C))
        gaps_bid = np.cumsum(1 + (rng.random(n) < 0.4) * rng.integers(1, 4, n))
        gaps_ask = np.cumsum(1 + (rng.random(n) < 0.4) * rng.integers(1, 4, n))
        bids = np.maximum(price - gaps_bid + 1, 1)
        asks = price + gaps_ask
        qty_steps = np.floor(spec.minute_volume * UNIT / spec.step * 0.02 * rng.random((2, n)) ** 3)
        qty = (qty_steps.astype(np.int64) + 1) * spec.step
        last_id = cutoff // 10 * 7 + i
        return _dump(
            {
                "lastUpdateId": last_id,
                "bids": [
                    [format_units(p * spec.tick), format_units(q)]
                    for p, q in zip(bids.tolist(), qty[0].tolist(), strict=True)
                ],
                "asks": [
                    [format_units(p * spec.tick), format_units(q)]
                    for p, q in zip(asks.tolist(), qty[1].tolist(), strict=True)
                ],
            }
        )

    def avg_price(self, params: Params, now: int, cutoff: int, limit: int, window_s: int) -> bytes:
        """rest-api.md "Current average price": mins 5, price, closeTime (last trade time)."""
        spec = self._symbol(params, max(now, cutoff))
        assert spec is not None
        _, last = self.market.last_trade(spec.symbol, cutoff)
        price = self.market.avg_5m(spec.symbol, cutoff)
        return _dump({"mins": 5, "price": format_units(price), "closeTime": last})

    def ticker_price(
        self, params: Params, now: int, cutoff: int, limit: int, window_s: int
    ) -> bytes:
        selected = self._selection(params, max(now, cutoff))
        if selected is not None and len(selected) == 1 and "symbol" in params:
            # The hot path of benchmarks: one body per symbol for as long as its price holds
            # (until the next print, at most a second).
            symbol = selected[0].symbol
            cached = self._price_cache.get(symbol)
            if cached is not None and cached[0] <= cutoff < cached[1]:
                return cached[2]
            price, until = self.market.price_until(symbol, cutoff)
            body = _dump({"symbol": symbol, "price": format_units(price)})
            self._price_cache[symbol] = (cutoff, until, body)
            return body
        specs = self.market.listed(max(now, cutoff)) if selected is None else selected
        return _dump([self._price(s, cutoff) for s in specs])

    def _price(self, spec: SymbolSpec, now: int) -> dict[str, str]:
        return {"symbol": spec.symbol, "price": format_units(self.market.price(spec.symbol, now))}

    def book_ticker(
        self, params: Params, now: int, cutoff: int, limit: int, window_s: int
    ) -> bytes:
        selected = self._selection(params, max(now, cutoff))
        if selected is not None and "symbol" in params:
            return _dump(self._book(selected[0], cutoff))
        specs = self.market.listed(max(now, cutoff)) if selected is None else selected
        return _dump([self._book(s, cutoff) for s in specs])

    def _book(self, spec: SymbolSpec, now: int) -> dict[str, str]:
        bid, bid_qty, ask, ask_qty = self._top(spec, now)
        return {
            "symbol": spec.symbol,
            "bidPrice": format_units(bid),
            "bidQty": format_units(bid_qty),
            "askPrice": format_units(ask),
            "askQty": format_units(ask_qty),
        }

    def _top(self, spec: SymbolSpec, now: int) -> tuple[int, int, int, int]:
        """Best bid at the last price, best ask one tick above; sizes from the seed."""
        price = self.market.price(spec.symbol, now)
        h = _mix(self.market.seed, self.market.index(spec.symbol), now // 1000, 0x70B)
        lot = max(1, int(spec.minute_volume * UNIT / spec.step * 0.01))
        return (
            price,
            (1 + h % lot) * spec.step,
            price + spec.tick,
            (1 + (h >> 32) % lot) * spec.step,
        )

    def ticker_24hr(
        self, params: Params, now: int, cutoff: int, limit: int, window_s: int
    ) -> bytes:
        """rest-api.md "24hr ticker price change statistics" (rolling 24 h to ``cutoff``)."""
        kind = params.get("type", "FULL")
        if kind not in ("FULL", "MINI"):
            raise err.illegal_chars("type", "^(FULL|MINI)$")
        selected = self._selection(params, max(now, cutoff))
        if selected is not None and "symbol" in params:
            return _dump(self._stats(selected[0], cutoff, kind == "FULL"))
        specs = self.market.listed(max(now, cutoff)) if selected is None else selected
        return _dump([self._stats(s, cutoff, kind == "FULL") for s in specs])

    def _stats(self, spec: SymbolSpec, now: int, full: bool) -> dict[str, Any]:
        agg, prev_close = self.market.rolling_24h(spec.symbol, now)
        last = self.market.price(spec.symbol, now)
        o, h, lo, vol, quote, count = (
            (agg[0], agg[1], agg[2], agg[4], agg[5], agg[6]) if agg else (last, last, last, 0, 0, 0)
        )
        window_start = now - 86_400_000
        minutes = max(0, (window_start - spec.listed_ms) // 60_000)
        first_id = minutes * spec.trades_per_minute if count else -1
        last_id = first_id + count - 1 if count else -1
        out: dict[str, Any] = {"symbol": spec.symbol}
        if full:
            bid, bid_qty, ask, ask_qty = self._top(spec, now)
            change = last - o
            pct = (
                (Decimal(change) * 100 / Decimal(o)).quantize(Decimal("0.001"), ROUND_HALF_UP)
                if o
                else Decimal("0.000")
            )
            out |= {
                "priceChange": format_units(change),
                "priceChangePercent": f"{pct:.3f}",
                "weightedAvgPrice": format_units(quote * UNIT // vol if vol else 0),
                "prevClosePrice": format_units(prev_close),
                "lastPrice": format_units(last),
                "lastQty": format_units(min(bid_qty, vol) if vol else 0),
                "bidPrice": format_units(bid),
                "bidQty": format_units(bid_qty),
                "askPrice": format_units(ask),
                "askQty": format_units(ask_qty),
            }
        out |= {
            "openPrice": format_units(o),
            "highPrice": format_units(h),
            "lowPrice": format_units(lo),
        }
        if not full:
            out["lastPrice"] = format_units(last)
        out |= {
            "volume": format_units(vol),
            "quoteVolume": format_units(quote),
            "openTime": window_start,
            "closeTime": now,
            "firstId": first_id,
            "lastId": last_id,
            "count": count,
        }
        return out


def _symbol_info(spec: SymbolSpec) -> dict[str, Any]:
    """One exchangeInfo symbol entry, keys and order as the 2025-06 ETHBTC capture."""
    max_price = 922_327 * UNIT if spec.quote != "USDT" else 1_000_000 * UNIT
    return {
        "symbol": spec.symbol,
        "status": "TRADING",
        "baseAsset": spec.base,
        "baseAssetPrecision": 8,
        "quoteAsset": spec.quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        "orderTypes": [
            "LIMIT",
            "LIMIT_MAKER",
            "MARKET",
            "STOP_LOSS",
            "STOP_LOSS_LIMIT",
            "TAKE_PROFIT",
            "TAKE_PROFIT_LIMIT",
        ],
        "icebergAllowed": True,
        "ocoAllowed": True,
        "otoAllowed": True,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": True,
        "cancelReplaceAllowed": True,
        "amendAllowed": True,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": True,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": format_units(spec.tick),
                "maxPrice": format_units(max_price),
                "tickSize": format_units(spec.tick),
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": format_units(spec.step),
                "maxQty": format_units(9_000_000 * UNIT),
                "stepSize": format_units(spec.step),
            },
            {
                "filterType": "NOTIONAL",
                "minNotional": format_units(spec.min_notional),
                "applyMinToMarket": True,
                "maxNotional": format_units(9_000_000 * UNIT),
                "applyMaxToMarket": False,
                "avgPriceMins": 5,
            },
        ],
        "permissions": [],
        "permissionSets": [],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": [
            "EXPIRE_TAKER",
            "EXPIRE_MAKER",
            "EXPIRE_BOTH",
            "DECREMENT",
        ],
    }
