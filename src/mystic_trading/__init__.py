"""Mystic: the market-data and API-optimization core of the Mystic Trading Platform.

Import what you need from here; the submodules are implementation. Importing this package
creates nothing: no connections, no threads, no settings read.
"""

from mystic_trading._lazy import lazy_exports
from mystic_trading.config import Settings, load_settings
from mystic_trading.errors import (
    Banned,
    ConfigError,
    DataError,
    DeadlinePassed,
    InvalidInterval,
    InvalidRange,
    InvalidSymbol,
    MalformedPayload,
    MysticError,
    QueueFull,
    RateLimited,
    StoreError,
    ThrottleError,
    UnknownSymbol,
    UpstreamError,
    UpstreamRejected,
    UpstreamUnavailable,
    VenueMismatch,
)
from mystic_trading.models import Candle, Interval, OrderBook, Symbol, Ticker

__version__ = "0.1.0"

# The market-data path pulls in SQLAlchemy, httpx and redis-py: loaded on first use (PEP 562),
# so `import mystic_trading` stays cheap and creates nothing.
_LAZY = {
    "Answer": "mystic_trading.marketdata",
    "Layer": "mystic_trading.marketdata",
    "MarketData": "mystic_trading.marketdata",
    "MarketDataSync": "mystic_trading.marketdata",
    "candles_frame": "mystic_trading.marketdata",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


__all__ = [
    "Answer",
    "Banned",
    "Candle",
    "ConfigError",
    "DataError",
    "DeadlinePassed",
    "Interval",
    "InvalidInterval",
    "InvalidRange",
    "InvalidSymbol",
    "Layer",
    "MalformedPayload",
    "MarketData",
    "MarketDataSync",
    "MysticError",
    "OrderBook",
    "QueueFull",
    "RateLimited",
    "Settings",
    "StoreError",
    "Symbol",
    "ThrottleError",
    "Ticker",
    "UnknownSymbol",
    "UpstreamError",
    "UpstreamRejected",
    "UpstreamUnavailable",
    "VenueMismatch",
    "__version__",
    "candles_frame",
    "load_settings",
]
