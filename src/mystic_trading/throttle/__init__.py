"""Upstream rate control: budgets in the exchange's units, GCRA admission, levels, adaptive
rate, a bounded priority queue, retries, 429/418 handling, usage-header sync, a quota shared
through Redis, and stats.

Import from here; the underscored modules are implementation. Nothing is created at import.
"""

from mystic_trading.throttle._adaptive import AimdController
from mystic_trading.throttle._control import (
    ControlStateStore,
    JsonFileControlStore,
    MemoryControlStore,
)
from mystic_trading.throttle._gcra import Grant
from mystic_trading.throttle._levels import LEVELS, Level, LevelChange, level_ceiling, parse_level
from mystic_trading.throttle._queue import Priority, WaitQueue
from mystic_trading.throttle._quota import BucketSpec, MemoryQuota, Quota
from mystic_trading.throttle._redis_quota import RedisQuota
from mystic_trading.throttle._retry import Backoff, RetryBudget, parse_retry_after
from mystic_trading.throttle._slot import HttpResponse, Outcome, Slot
from mystic_trading.throttle._throttler import Throttler
from mystic_trading.throttle._weights import (
    BINANCE_MAX_WEIGHT,
    Budget,
    binance_weight,
    budget_from_exchange_info,
    burst_for,
)

__all__ = [
    "BINANCE_MAX_WEIGHT",
    "LEVELS",
    "AimdController",
    "Backoff",
    "BucketSpec",
    "Budget",
    "ControlStateStore",
    "Grant",
    "HttpResponse",
    "JsonFileControlStore",
    "Level",
    "LevelChange",
    "MemoryControlStore",
    "MemoryQuota",
    "Outcome",
    "Priority",
    "Quota",
    "RedisQuota",
    "RetryBudget",
    "Slot",
    "Throttler",
    "WaitQueue",
    "binance_weight",
    "budget_from_exchange_info",
    "burst_for",
    "level_ceiling",
    "parse_level",
    "parse_retry_after",
]
