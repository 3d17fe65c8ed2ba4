"""Request weight per endpoint, from the current Binance docs (RATE_LIMITS.md section 1).

Weight is computed from the raw query before validation, as Binance charges malformed
requests too; an unreadable ``limit`` or ``symbols`` is charged as its default.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

__all__ = ["ENDPOINT_WEIGHTS", "weight_of"]

# Fixed weights; the endpoints missing here depend on their parameters.
ENDPOINT_WEIGHTS: dict[str, int] = {
    "ping": 1,
    "time": 1,
    "exchangeInfo": 20,
    "klines": 2,
    "uiKlines": 2,
    "avgPrice": 2,
}


def _depth_weight(limit: str | None) -> int:
    # rest-api.md "Order book": 1-100 -> 5; 101-500 -> 25; 501-1000 -> 50; 1001-5000 -> 250.
    try:
        n = int(limit) if limit is not None else 100
    except ValueError:
        n = 100
    if n <= 100:
        return 5
    if n <= 500:
        return 25
    if n <= 1000:
        return 50
    return 250


def _symbols_count(raw: str) -> int:
    try:
        value = json.loads(raw)
    except ValueError:
        return raw.count(",") + 1
    return len(value) if isinstance(value, list) else 1


def weight_of(endpoint: str, params: Mapping[str, str]) -> int:
    """The weight Binance charges for ``GET /api/v3/<endpoint>`` with ``params``."""
    fixed = ENDPOINT_WEIGHTS.get(endpoint)
    if fixed is not None:
        return fixed
    if endpoint == "depth":
        return _depth_weight(params.get("limit"))
    if endpoint == "ticker/24hr":
        # 24hr: symbol -> 2; symbols 1-20 -> 2, 21-100 -> 40, 101+ -> 80; neither -> 80.
        if "symbol" in params:
            return 2
        if "symbols" in params:
            n = _symbols_count(params["symbols"])
            return 2 if n <= 20 else 40 if n <= 100 else 80
        return 80
    if endpoint in ("ticker/price", "ticker/bookTicker"):
        # symbol -> 2; omitted or symbols (any count) -> 4.
        return 2 if "symbol" in params else 4
    return 1
