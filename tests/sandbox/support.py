"""Helpers of the sandbox tests: the real payloads, the test clock's start, kline arithmetic."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "binance"

# serverTime of the real 2025-06-21 capture (time_2025-06-21.json): mid-minute, mid-window.
NOW = 1_750_478_331_191


def fixture(name: str) -> Any:
    """A real Binance payload from tests/fixtures/binance/."""
    return json.loads((FIXTURES / name).read_text())


def aggregate(rows: list[list[Any]]) -> tuple[Any, ...]:
    """The candle made of kline ``rows`` (Binance 12-field form), as exact numbers."""
    assert rows, "nothing to aggregate"
    d = [[Decimal(r[i]) for i in (1, 2, 3, 4, 5, 7, 9, 10)] + [r[8]] for r in rows]
    return (
        d[0][0],
        max(x[1] for x in d),
        min(x[2] for x in d),
        d[-1][3],
        sum(x[4] for x in d),
        sum(x[5] for x in d),
        sum(x[6] for x in d),
        sum(x[7] for x in d),
        sum(x[8] for x in d),
    )


def as_numbers(row: list[Any]) -> tuple[Any, ...]:
    """One kline row in the order of :func:`aggregate`."""
    return aggregate([row])
