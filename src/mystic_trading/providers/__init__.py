"""Exchange adapters behind one Protocol; Binance is the one built in."""

from mystic_trading.providers.base import Provider
from mystic_trading.providers.binance import PAGE_LIMIT, BinanceProvider

__all__ = ["PAGE_LIMIT", "BinanceProvider", "Provider"]
