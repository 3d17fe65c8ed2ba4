"""bench/http_service.py --quick --json: every figure the issue asks for is reported, and through
Mystic the bots earn no 429 or 418, and the load phase sees no error (never timings)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "http_service.py"
RATIOS = (
    "ticker_v3_over_bare",
    "ticker_v1_over_bare",
    "bots_weight_saved_pct",
    "load_rss_growth_mb",
)
COUNTS = ("bots_429", "bots_418", "load_errors", "bots_direct_429", "bots_direct_418")


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@pytest.fixture(scope="module")
def quick() -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--json"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_reports_every_figure(quick: dict[str, Any]) -> None:
    """The keys the issue names are all there, numbers where measured."""
    for key in (*RATIOS, *COUNTS, "ticker_v3_rps", "ticker_bare_rps", "load_p50_ms"):
        assert _number(quick[key]), (key, quick[key])
    assert quick["load_generator"] in ("wrk", "aiohttp")
    assert quick["ticker_generator"] in ("wrk", "aiohttp")
    for key in COUNTS:
        assert isinstance(quick[key], int) and quick[key] >= 0


def test_through_mystic_no_429_no_418_and_less_weight(quick: dict[str, Any]) -> None:
    """The bots through Mystic are never refused by the exchange, and it charges less than
    the same bots going straight to it."""
    assert quick["bots_429"] == 0
    assert quick["bots_418"] == 0
    assert 0 < quick["bots_weight"] < quick["bots_direct_asked"]
    assert set(quick["bots_answers"]) == {"200"}


def test_load_has_no_errors(quick: dict[str, Any]) -> None:
    """Under the load phase every answer is a 200 or a counted 503 (shedding)."""
    assert quick["load_errors"] == 0
    assert quick["load_requests"] > 0
