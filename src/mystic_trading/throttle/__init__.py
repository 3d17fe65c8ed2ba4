"""Upstream rate control: budgets in the exchange's units, GCRA admission, levels, adaptive
rate, a bounded priority queue, retries, 429/418 handling, usage-header sync, a quota shared
through Redis, and stats.

Import from here; the underscored modules are implementation. Nothing is created at import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mystic_trading._lazy import lazy_exports

if TYPE_CHECKING:  # the names as type checkers see them; loaded on first use below
    from mystic_trading.throttle._adaptive import AimdController
    from mystic_trading.throttle._control import (
        ControlStateStore,
        JsonFileControlStore,
        MemoryControlStore,
    )
    from mystic_trading.throttle._gcra import Grant
    from mystic_trading.throttle._levels import (
        LEVELS,
        Level,
        LevelChange,
        level_ceiling,
        parse_level,
    )
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

# Loaded on first use (PEP 562): a process without Redis need not import redis-py for
# RedisQuota, and `mystic status` must start within 1 s.
_LAZY = {
    "AimdController": "mystic_trading.throttle._adaptive",
    "Backoff": "mystic_trading.throttle._retry",
    "BINANCE_MAX_WEIGHT": "mystic_trading.throttle._weights",
    "binance_weight": "mystic_trading.throttle._weights",
    "BucketSpec": "mystic_trading.throttle._quota",
    "Budget": "mystic_trading.throttle._weights",
    "budget_from_exchange_info": "mystic_trading.throttle._weights",
    "burst_for": "mystic_trading.throttle._weights",
    "ControlStateStore": "mystic_trading.throttle._control",
    "Grant": "mystic_trading.throttle._gcra",
    "HttpResponse": "mystic_trading.throttle._slot",
    "JsonFileControlStore": "mystic_trading.throttle._control",
    "Level": "mystic_trading.throttle._levels",
    "level_ceiling": "mystic_trading.throttle._levels",
    "LevelChange": "mystic_trading.throttle._levels",
    "LEVELS": "mystic_trading.throttle._levels",
    "MemoryControlStore": "mystic_trading.throttle._control",
    "MemoryQuota": "mystic_trading.throttle._quota",
    "Outcome": "mystic_trading.throttle._slot",
    "parse_level": "mystic_trading.throttle._levels",
    "parse_retry_after": "mystic_trading.throttle._retry",
    "Priority": "mystic_trading.throttle._queue",
    "Quota": "mystic_trading.throttle._quota",
    "RedisQuota": "mystic_trading.throttle._redis_quota",
    "RetryBudget": "mystic_trading.throttle._retry",
    "Slot": "mystic_trading.throttle._slot",
    "Throttler": "mystic_trading.throttle._throttler",
    "WaitQueue": "mystic_trading.throttle._queue",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


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
