"""Budgets and request weights in the exchange's own units.

Binance counts REQUEST_WEIGHT per IP in clock-aligned fixed windows (6000 per 1 MINUTE today)
and publishes the limit in ``exchangeInfo.rateLimits`` (rest-api.md "General Info on Limits";
enums.md "Rate limiters"). Every response carries the IP's usage of the current window in
``X-MBX-USED-WEIGHT-(intervalNum)(intervalLetter)``. Weights below are the current published
ones (rest-api.md at binance-spot-api-docs a5e0bc3, see
shared/exchange-payloads/binance/RATE_LIMITS.md section 1).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mystic_trading.errors import ConfigError

__all__ = [
    "BINANCE_MAX_WEIGHT",
    "Budget",
    "binance_weight",
    "budget_from_exchange_info",
    "burst_for",
]

# The heaviest request in the table below (depth with limit 1001-5000).
BINANCE_MAX_WEIGHT = 250

_INTERVAL_S = {"SECOND": 1, "MINUTE": 60, "HOUR": 3600, "DAY": 86_400}
_LETTERS = ((86_400, "D"), (3_600, "H"), (60, "M"), (1, "S"))

_FIXED = {
    "/api/v3/ping": 1,
    "/api/v3/time": 1,
    "/api/v3/exchangeInfo": 20,
    "/api/v3/klines": 2,
    "/api/v3/uiKlines": 2,
    "/api/v3/avgPrice": 2,
    "/api/v3/trades": 25,
}


@dataclass(frozen=True, slots=True)
class Budget:
    """One provider's budget: ``limit`` weight per fixed ``window_s``, the exchange's numbers.

    ``max_weight`` is the heaviest single request the throttler will admit; it is also the
    burst tolerance (a GCRA cannot admit a request heavier than its tolerance), so it is
    subtracted from what the steady rate may use (see ``_gcra``).
    """

    limit: int
    window_s: float
    max_weight: int = BINANCE_MAX_WEIGHT

    def __post_init__(self) -> None:
        if not self.limit > 0:
            raise ConfigError(
                f"budget limit must be a positive weight, got {self.limit!r}",
                setting="limit",
                value=self.limit,
            )
        if not self.window_s > 0:
            raise ConfigError(
                f"budget window must be a positive number of seconds, got {self.window_s!r}",
                setting="window_s",
                value=self.window_s,
            )
        if not 0 < self.max_weight < self.limit:
            raise ConfigError(
                f"max_weight must be positive and below the limit {self.limit}, "
                f"got {self.max_weight!r}",
                setting="max_weight",
                value=self.max_weight,
            )

    @property
    def header(self) -> str:
        """The usage header for this window, e.g. ``x-mbx-used-weight-1m`` (lower case)."""
        seconds = int(self.window_s)
        for size, letter in _LETTERS:
            if seconds % size == 0:
                return f"x-mbx-used-weight-{seconds // size}{letter.lower()}"
        raise AssertionError("unreachable: every whole number of seconds has a letter")


def budget_from_exchange_info(
    info: Mapping[str, Any], *, fallback_limit: int = 6000, max_weight: int = BINANCE_MAX_WEIGHT
) -> Budget:
    """The REQUEST_WEIGHT budget of a parsed exchangeInfo, else ``fallback_limit`` a minute.

    Where several REQUEST_WEIGHT limiters are listed, the one with the lowest weight per second
    is the binding one. A small advertised budget is the budget: its burst (the heaviest
    request admitted) scales down to a quarter of it (:func:`burst_for`) instead of the
    budget being replaced by 6,000 a minute (faults 6: 200 a minute was ignored, 260 raised
    ConfigError on every call).
    """
    best: Budget | None = None
    for item in info.get("rateLimits") or ():
        if not isinstance(item, Mapping) or item.get("rateLimitType") != "REQUEST_WEIGHT":
            continue
        try:
            window = _INTERVAL_S[str(item["interval"])] * int(item.get("intervalNum", 1))
            limit = int(item["limit"])
        except (KeyError, TypeError, ValueError):
            continue
        if limit < 2 or window <= 0:
            continue
        candidate = Budget(
            limit=limit, window_s=float(window), max_weight=burst_for(limit, max_weight)
        )
        if best is None or limit / window < best.limit / best.window_s:
            best = candidate
    if best is not None:
        return best
    return Budget(
        limit=fallback_limit, window_s=60.0, max_weight=burst_for(fallback_limit, max_weight)
    )


def burst_for(limit: int, max_weight: int = BINANCE_MAX_WEIGHT) -> int:
    """The burst tolerance for a budget of ``limit``: the heaviest request the exchange
    allows (``max_weight``), but at most a quarter of the budget, so that a small budget
    keeps three quarters for the steady rate. A request heavier than it is refused by the
    throttler with a clear error, as it could never fit anyway."""
    return max(1, min(max_weight, limit // 4))


def _symbols_count(params: Mapping[str, Any]) -> int | None:
    raw = params.get("symbols")
    if raw is None:
        return None
    if isinstance(raw, (list, tuple)):
        return len(raw)
    text = str(raw).strip().strip("[]")
    return len([part for part in text.split(",") if part.strip()])


def binance_weight(path: str, params: Mapping[str, Any] | None = None) -> int:
    """The request weight of ``GET path?params`` on Binance spot; 1 for an unknown path."""
    params = params or {}
    path = "/" + path.lstrip("/")
    fixed = _FIXED.get(path)
    if fixed is not None:
        return fixed
    if path == "/api/v3/depth":
        limit = int(params.get("limit", 100))
        if limit <= 100:
            return 5
        if limit <= 500:
            return 25
        return 50 if limit <= 1000 else 250
    if path == "/api/v3/ticker/24hr":
        if params.get("symbol") is not None:
            return 2
        count = _symbols_count(params)
        if count is None or count > 100:
            return 80
        return 2 if count <= 20 else 40
    if path in ("/api/v3/ticker/price", "/api/v3/ticker/bookTicker"):
        return 2 if params.get("symbol") is not None else 4
    return 1
