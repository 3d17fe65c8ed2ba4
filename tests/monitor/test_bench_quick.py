"""bench/monitor.py --quick runs, so the benchmark never rots; behaviour figures checked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "monitor.py"


@pytest.mark.slow
def test_quick_benchmark_reports_every_figure() -> None:
    """The quick run prints one JSON object with every figure the issue names.

    Behaviour, not timing: health rounds ran during the run with monitoring on and none with
    it off, the round and status saw the 8 processes, no request failed. Timings are only
    checked to be positive, and shares to be fractions.
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
    for key in (
        "cpu_per_request_on_over_off",
        "upstream_calls_on_over_off",
        "health_round_ms",
        "status_wall_s",
        "startup_s",
        "interpreter_s",
    ):
        assert figures[key] > 0, key
    assert 0 < figures["interpreter_share"] < figures["startup_share"]
    assert figures["upstream_calls_off"] > 0 and figures["zipf_errors"] == 0
    assert figures["health_rounds_during_zipf_on"] >= 1
    assert figures["health_rounds_during_zipf_off"] == 0
    # Eight beating processes, plus the round's own in the round.
    assert figures["status_processes_alive"] == 8
    assert figures["processes_alive_in_round"] == 9
    assert figures["health_checks"] > 0
