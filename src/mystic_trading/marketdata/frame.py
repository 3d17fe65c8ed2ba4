"""Candles to a pandas DataFrame when pandas is installed (the `pandas` extra)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mystic_trading.models import Candle

__all__ = ["COLUMNS", "candles_frame"]

COLUMNS = (
    "open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume",
    "trades", "taker_buy_volume", "taker_buy_quote_volume", "closed",
)  # fmt: skip


def candles_frame(candles: Sequence[Candle], *, exact: bool = False) -> Any:
    """A DataFrame indexed by open time (UTC). Prices are floats unless ``exact=True``, which
    keeps the Decimals (object columns: exact, slower)."""
    try:
        import pandas as pd
    except ImportError:
        raise ImportError(
            "candles_frame needs pandas: pip install 'mystic-trading[pandas]'"
        ) from None
    rows = [[getattr(c, name) for name in COLUMNS] for c in candles]
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    if not exact:
        for name in ("open", "high", "low", "close", "volume", "quote_volume",
                     "taker_buy_volume", "taker_buy_quote_volume"):  # fmt: skip
            frame[name] = frame[name].astype("float64")
    frame.index = pd.to_datetime(frame["open_time"], unit="ms", utc=True)
    frame.index.name = "time"
    return frame
