"""The slow-query log: routine background writes at INFO, the rest at WARNING.

Routine requests printed ``WARNING … slow query coverage.save: 484.2 ms`` into backfill's
progress bar (new-user D11): under any load SQLite's one writer makes every write wait for
the one before it, so a slow routine write is news for whoever looks (INFO), not a warning.
Time is injected (a timer that ticks), never slept.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from mystic_trading.config import StoreSettings
from mystic_trading.store import QueryMetrics

from .conftest import BTC, MIN, OpenStore, candle

P = "binance"


def _ticking(step: float) -> Callable[[], float]:
    now = [0.0]

    def timer() -> float:
        now[0] += step
        return now[0]

    return timer


def _levels(caplog: pytest.LogCaptureFixture, kind: str) -> list[str]:
    return [r.levelname for r in caplog.records if f"slow query {kind}" in r.getMessage()]


async def test_a_slow_routine_write_is_info_and_a_slow_control_write_a_warning(
    make_store: OpenStore, caplog: pytest.LogCaptureFixture
) -> None:
    """Saving fetched candles with their coverage is routine: INFO. A level change that is
    slow is not: WARNING. Both are counted as slow."""
    store = await make_store(timer=_ticking(0.5), slow_query_ms=100)
    with caplog.at_level(logging.DEBUG, logger="mystic_trading.store"):
        await store.candles.save_range(P, BTC, "1m", 0, 2 * MIN, [candle(0), candle(MIN)])
        await store.control.save_level(P, "moderate", actor="ops", reason="why")
    assert _levels(caplog, "coverage.save") == ["INFO"]
    assert _levels(caplog, "control.save_level") == ["WARNING"]
    queries = store.stats()["queries"]
    assert queries["coverage.save"]["slow"] == 1
    assert queries["control.save_level"]["slow"] == 1


@pytest.mark.parametrize(
    "kind", ["coverage.save", "candles.upsert", "ticker.save", "book.save", "info.save"]
)
def test_every_routine_write_logs_at_info(caplog: pytest.LogCaptureFixture, kind: str) -> None:
    """The write-behind and bookkeeping writes never log above INFO."""
    metrics = QueryMetrics(slow_query_ms=100, timer=lambda: 100.0)
    with caplog.at_level(logging.DEBUG, logger="mystic_trading.store"):
        metrics.observe(kind, 5.0)
    assert _levels(caplog, kind) == ["INFO"]


def test_the_default_threshold_suits_sqlite_under_load() -> None:
    """100 ms was crossed by routine writes under any load; the default is 250 ms."""
    assert StoreSettings().slow_query_ms == 250
