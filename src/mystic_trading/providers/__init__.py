"""Exchange adapters behind one Protocol; Binance is the one built in."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mystic_trading._lazy import lazy_exports

if TYPE_CHECKING:  # the names as type checkers see them; loaded on first use below
    from mystic_trading.providers.base import Provider
    from mystic_trading.providers.binance import PAGE_LIMIT, BinanceProvider

# Loaded on first use (PEP 562): providers.venue (the Controller's) need not import httpx
# and aiohttp with the Binance adapter.
_LAZY = {
    "BinanceProvider": "mystic_trading.providers.binance",
    "PAGE_LIMIT": "mystic_trading.providers.binance",
    "Provider": "mystic_trading.providers.base",
}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)

__all__ = ["PAGE_LIMIT", "BinanceProvider", "Provider"]
