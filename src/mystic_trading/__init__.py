"""Mystic: the market-data and API-optimization core of the Mystic Trading Platform.

Import what you need from here; the submodules are implementation. Importing this package
creates nothing: no connections, no threads, no settings read.
"""

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
)
from mystic_trading.models import Candle, Interval, OrderBook, Symbol, Ticker

__version__ = "0.1.0"

__all__ = [
    "Banned",
    "Candle",
    "ConfigError",
    "DataError",
    "DeadlinePassed",
    "Interval",
    "InvalidInterval",
    "InvalidRange",
    "InvalidSymbol",
    "MalformedPayload",
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
    "__version__",
    "load_settings",
]
