"""The market-data path: MarketData and the layers under it (memory, Redis, store, upstream)."""

from mystic_trading.marketdata.answer import Answer, Layer
from mystic_trading.marketdata.facade import MarketData
from mystic_trading.marketdata.frame import candles_frame
from mystic_trading.marketdata.sync import MarketDataSync

__all__ = ["Answer", "Layer", "MarketData", "MarketDataSync", "candles_frame"]
