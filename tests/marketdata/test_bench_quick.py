"""bench/marketdata.py --quick runs, so the benchmark never rots; behaviour figures checked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "marketdata.py"


@pytest.mark.slow
def test_quick_benchmark_reports_every_figure() -> None:
    """The quick run prints one JSON object with every figure the issue names.

    Call counts are behaviour, not timing: the stampede is one call and a restart re-reads
    closed ranges with none. Timings are only checked to be positive numbers.
    """
    result = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--json"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout)
    for key in ("l1_hit_us", "l1_anchor_cachetools_get_us", "cold_warm_speedup_pct"):
        assert figures[key] > 0, key
    assert figures["stampede_upstream_calls"] == 1
    assert figures["restart_first_run_calls"] > 0
    assert figures["restart_closed_range_calls"] == 0
    assert figures["zipf_mystic_errors"] == 0
    assert figures["zipf_calls_over_minimum"] > 0
    assert figures["zipf_no_cache_calls"] >= figures["zipf_requests"]
