"""``bench/store.py --quick --json`` runs and reports every figure (timings never asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "store.py"
SQLITE_KEYS = (
    "sqlite_point_ratio",
    "sqlite_range_ratio",
    "sqlite_range_all_same_output_ratio",
    "sqlite_upsert_100k_s",
)
PG_KEYS = ("pg_point_ratio", "pg_range_ratio", "pg_range_all_same_output_ratio")


@pytest.mark.slow
def test_quick_bench_reports_positive_figures() -> None:
    """Every ratio and median is a positive number; PostgreSQL ones when it is reachable."""
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    keys = SQLITE_KEYS + (PG_KEYS if result["pg_reachable"] else ())
    keys += tuple(k for k in result if k.endswith("_median_us"))
    for key in keys:
        value = result[key]
        assert isinstance(value, float) and value > 0, (key, value)
