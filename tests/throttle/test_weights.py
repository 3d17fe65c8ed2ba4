"""Binance weights and the budget read from exchangeInfo."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mystic_trading.config import ThrottleSettings
from mystic_trading.errors import ConfigError
from mystic_trading.throttle import Budget, Throttler, binance_weight, budget_from_exchange_info

PAYLOADS = Path("/work/shared/exchange-payloads/binance")


@pytest.mark.parametrize(
    ("path", "params", "weight"),
    [
        ("/api/v3/depth", {}, 5),
        ("/api/v3/depth", {"limit": 100}, 5),
        ("/api/v3/depth", {"limit": 500}, 25),
        ("/api/v3/depth", {"limit": 1000}, 50),
        ("/api/v3/depth", {"limit": 5000}, 250),
        ("/api/v3/ticker/24hr", {"symbol": "BTCUSDT"}, 2),
        ("/api/v3/ticker/24hr", {}, 80),
        ("/api/v3/ticker/24hr", {"symbols": json.dumps(["A"] * 20)}, 2),
        ("/api/v3/ticker/24hr", {"symbols": json.dumps(["A"] * 21)}, 40),
        ("/api/v3/ticker/24hr", {"symbols": ["A"] * 101}, 80),
        ("/api/v3/ticker/price", {"symbol": "BTCUSDT"}, 2),
        ("/api/v3/ticker/price", {}, 4),
        ("/api/v3/ticker/bookTicker", {"symbols": '["A","B"]'}, 4),
        ("/api/v3/klines", {"symbol": "BTCUSDT", "interval": "1m"}, 2),
        ("/api/v3/exchangeInfo", None, 20),
        ("/api/v3/avgPrice", {"symbol": "BTCUSDT"}, 2),
        ("/api/v3/ping", None, 1),
        ("api/v3/time", None, 1),
    ],
)
def test_published_weights(path: str, params: dict[str, object] | None, weight: int) -> None:
    """Each endpoint weighs what Binance's current docs publish."""
    assert binance_weight(path, params) == weight


def test_budget_from_a_real_exchange_info() -> None:
    """The 2025 capture's REQUEST_WEIGHT limiter is 6000 per minute, header 1m."""
    info = json.loads((PAYLOADS / "exchangeInfo_2025-06_ETHBTC.json").read_text())
    budget = budget_from_exchange_info(info)
    assert (budget.limit, budget.window_s, budget.header) == (6000, 60.0, "x-mbx-used-weight-1m")


def test_budget_falls_back_when_absent() -> None:
    """Without rateLimits the configured fallback per minute is used."""
    assert budget_from_exchange_info({}, fallback_limit=1200).limit == 1200


def test_budget_picks_the_binding_limiter() -> None:
    """With two REQUEST_WEIGHT limiters the lower weight per second wins."""
    info = {
        "rateLimits": [
            {
                "rateLimitType": "REQUEST_WEIGHT",
                "interval": "MINUTE",
                "intervalNum": 1,
                "limit": 6000,
            },
            {
                "rateLimitType": "REQUEST_WEIGHT",
                "interval": "SECOND",
                "intervalNum": 10,
                "limit": 500,
            },
        ]
    }
    budget = budget_from_exchange_info(info, max_weight=50)
    assert (budget.limit, budget.window_s, budget.header) == (500, 10.0, "x-mbx-used-weight-10s")


@pytest.mark.parametrize(
    ("kwargs", "setting"),
    [
        ({"limit": -5, "window_s": 60}, "limit"),
        ({"limit": 100, "window_s": 0}, "window_s"),
        ({"limit": 100, "window_s": 60, "max_weight": 100}, "max_weight"),
    ],
)
def test_bad_budget_is_a_named_config_error(kwargs: dict[str, float], setting: str) -> None:
    """A negative rate, a zero window or a burst as big as the budget names the setting."""
    with pytest.raises(ConfigError) as info:
        Budget(**kwargs)  # type: ignore[arg-type]
    assert info.value.setting == setting


@pytest.mark.parametrize(
    ("limit", "burst"),
    [(6000, 250), (1200, 250), (277, 69), (260, 65), (251, 62), (200, 50), (40, 10)],
)
def test_a_small_advertised_budget_is_used_with_a_scaled_burst(limit: int, burst: int) -> None:
    """200 a minute was replaced by 6,000 and 251-277 raised ConfigError on every call
    (faults 6): an advertised budget is the budget, its burst at most a quarter of it."""
    info = {
        "rateLimits": [
            {
                "rateLimitType": "REQUEST_WEIGHT",
                "interval": "MINUTE",
                "intervalNum": 1,
                "limit": limit,
            }
        ]
    }
    budget = budget_from_exchange_info(info)
    assert (budget.limit, budget.max_weight) == (limit, burst)
    throttler = Throttler("test", Budget(limit=6000, window_s=60))
    throttler.set_budget(budget)  # no ConfigError at the default 10 % margin
    assert 0 < throttler.safe_rate < limit / 60


def test_a_margin_that_leaves_no_room_for_the_burst_shrinks_it() -> None:
    """A large margin on a small budget keeps a quarter of what is left as the burst."""
    throttler = Throttler(
        "test", Budget(limit=6000, window_s=60), settings=ThrottleSettings(safety_margin=0.8)
    )
    throttler.set_budget(Budget(limit=260, window_s=60, max_weight=65))
    assert throttler.budget.max_weight == 13
    assert throttler.safe_rate > 0
