"""The synchronous wrapper and the DataFrame export, over the real sandbox and SQLite."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

import mystic_trading
from mystic_trading import Layer, MarketDataSync, candles_frame
from mystic_trading.sandbox import SandboxServer

from .conftest import settings


def test_sync_wrapper_serves_without_an_event_loop(
    shared_exchange: SandboxServer, tmp_path: Path
) -> None:
    """MarketDataSync answers from a plain function, with the same layers and provenance."""
    with MarketDataSync(settings(shared_exchange, f"sqlite+aiosqlite:///{tmp_path}/s.db")) as md:
        first = md.ticker("BTC/USDT")
        second = md.ticker("BTCUSDT")
        candles = md.candles("ETHBTC", "1d", start="2024-01-01", end="2024-01-11")
        book = md.order_book("BTCUSDT", 5)
        stats = md.stats()
    assert (first.layer, second.layer) == (Layer.UPSTREAM, Layer.MEMORY)
    assert len(candles.value) == 10
    assert len(book.value.bids) == 5
    assert stats["requests"] == 4


def test_sync_wrapper_refuses_use_outside_with() -> None:
    """Using it before `with` is a clear error, not a hang."""
    md = MarketDataSync(mystic_trading.Settings())
    with pytest.raises(RuntimeError, match="with"):
        md.ticker("BTCUSDT")


def test_candles_to_dataframe(shared_exchange: SandboxServer, tmp_path: Path) -> None:
    """candles_frame gives one row per candle indexed by UTC time; exact=True keeps Decimals."""
    with MarketDataSync(settings(shared_exchange, f"sqlite+aiosqlite:///{tmp_path}/f.db")) as md:
        candles = md.candles("BTCUSDT", "1h", start="2024-03-01", end="2024-03-02").value
    frame = candles_frame(candles)
    assert len(frame) == 24
    assert str(frame.index[0]) == "2024-03-01 00:00:00+00:00"
    assert frame["close"].dtype == "float64"
    assert frame["close"].iloc[-1] == float(candles[-1].close)
    exact = candles_frame(candles, exact=True)
    assert exact["close"].iloc[-1] == candles[-1].close
    assert isinstance(exact["close"].iloc[-1], Decimal)
