"""The market-data path: MarketData and the layers under it (memory, Redis, store, upstream)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mystic_trading._lazy import lazy_exports

if TYPE_CHECKING:  # the names as type checkers see them; loaded on first use below
    from mystic_trading.marketdata.answer import Answer, Layer, Part
    from mystic_trading.marketdata.facade import MarketData
    from mystic_trading.marketdata.frame import candles_frame
    from mystic_trading.marketdata.sync import MarketDataSync

# Loaded on first use (PEP 562): importing one module of the path (control_watch, window)
# does not build the whole facade.
_LAZY = {
    "Answer": "mystic_trading.marketdata.answer",
    "candles_frame": "mystic_trading.marketdata.frame",
    "Layer": "mystic_trading.marketdata.answer",
    "Part": "mystic_trading.marketdata.answer",
    "MarketData": "mystic_trading.marketdata.facade",
    "MarketDataSync": "mystic_trading.marketdata.sync",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


__all__ = ["Answer", "Layer", "MarketData", "MarketDataSync", "Part", "candles_frame"]
