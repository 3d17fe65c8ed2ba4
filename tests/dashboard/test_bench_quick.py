"""bench/dashboard.py --quick --json: every figure the issue names is reported as a number,
and the history the page loaded was the one taken (never timings)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parents[2] / "bench" / "dashboard.py"


def test_reports_every_figure() -> None:
    """The three figures are finite numbers above zero; the stream sent frames and the
    history held the quick run's 300 samples and more."""
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--json"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    for key in ("dashboard_load_s", "dashboards10_cpu_pct", "stream_bytes_per_s"):
        value = result[key]
        assert isinstance(value, float) and math.isfinite(value) and value > 0, (key, value)
    assert result["load_client"] in ("chromium", "httpx")
    assert result["history_samples"] >= 300
    assert result["stream_frames"] >= 10
