"""The level ladder, its bounds and its ceilings in weight per second."""

from __future__ import annotations

import pytest

from mystic_trading.config import ThrottleSettings
from mystic_trading.errors import ConfigError
from mystic_trading.throttle import (
    Budget,
    JsonFileControlStore,
    Level,
    MemoryControlStore,
    Throttler,
    level_ceiling,
    parse_level,
)


def test_ceilings_map_requests_to_weight_and_clamp() -> None:
    """req/s times the reference weight, never above the exchange's safe rate."""
    assert level_ceiling(Level.CONSERVATIVE, reference_weight=2, safe_rate=90) == 10
    assert level_ceiling(Level.MODERATE, reference_weight=2, safe_rate=90) == 40
    assert level_ceiling(Level.AGGRESSIVE, reference_weight=2, safe_rate=90) == 90
    assert level_ceiling(Level.UNLIMITED, reference_weight=2, safe_rate=90) == 90


def test_unknown_level_is_a_named_config_error() -> None:
    """An unknown level names the setting and lists the accepted ones."""
    with pytest.raises(ConfigError, match="conservative, moderate") as info:
        parse_level("turbo")
    assert info.value.setting == "throttle.level"


def test_unlimited_is_the_limit_less_margin() -> None:
    """Unlimited = limit * (1 - margin) / window (each exchange window is counted, so no burst
    is kept aside), and no level exceeds it."""
    budget = Budget(limit=6000, window_s=60, max_weight=250)
    throttler = Throttler("binance", budget, settings=ThrottleSettings(level="unlimited"))
    assert throttler.ceiling == pytest.approx(6000 * 0.9 / 60)
    assert throttler.rate() <= throttler.ceiling


async def test_increase_and_decrease_walk_the_ladder_and_stop_at_the_ends() -> None:
    """Each step moves one level, is kept in the store, and the ends refuse with a message."""
    store = MemoryControlStore()
    budget = Budget(limit=6000, window_s=60)
    throttler = Throttler(
        "binance", budget, settings=ThrottleSettings(level="aggressive"), control=store
    )
    up = await throttler.increase(actor="test", reason="more")
    assert (up.old, up.new, up.moved) == (Level.AGGRESSIVE, Level.UNLIMITED, True)
    top = await throttler.increase(actor="test")
    assert not top.moved
    assert "highest" in top.message
    for expected in (Level.AGGRESSIVE, Level.MODERATE, Level.CONSERVATIVE):
        assert (await throttler.decrease(actor="test")).new is expected
    bottom = await throttler.decrease(actor="test")
    assert not bottom.moved
    assert "lowest" in bottom.message
    assert await store.load_level("binance") == "conservative"
    assert throttler.ceiling == pytest.approx(10.0)


async def test_level_is_read_back_from_the_store(tmp_path: object) -> None:
    """A new throttler starts at the level kept in a durable store."""
    from pathlib import Path

    path = Path(str(tmp_path)) / "control.json"
    first = Throttler(
        "binance", Budget(limit=6000, window_s=60), control=JsonFileControlStore(path)
    )
    await first.set_level("conservative", actor="test", reason="quiet hours")
    second = Throttler(
        "binance", Budget(limit=6000, window_s=60), control=JsonFileControlStore(path)
    )
    await second.start()
    assert second.level is Level.CONSERVATIVE
    await first.aclose()
    await second.aclose()


def test_negative_reference_weight_is_a_named_config_error() -> None:
    """A negative reference weight (and so a negative rate) is refused by name."""
    with pytest.raises(ConfigError) as info:
        Throttler("binance", Budget(limit=6000, window_s=60), reference_weight=-1)
    assert info.value.setting == "reference_weight"
