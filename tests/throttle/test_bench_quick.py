"""bench/throttle.py --quick --json runs and reports every figure (values are not judged)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "throttle.py"


@pytest.mark.redis
@pytest.mark.slow
def test_quick_bench_reports_its_figures(redis_url: str) -> None:
    """The quick run prints one JSON object with Mystic's and each anchor's figures."""
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--json", "--redis-url", redis_url],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result = json.loads(done.stdout)
    for key in ("util_1proc", "util_4proc_redis", "acquire_us_memory", "acquire_us_redis"):
        assert isinstance(result[key], float), key
    for key in ("n429_1proc", "n429_4proc_redis"):
        assert isinstance(result[key], int), key
    assert result["recovery_s"] is None or isinstance(result["recovery_s"], float)
    assert set(result["anchors"]) == {"aiolimiter", "ccxt", "pyrate", "limits"}
    for figures in result["anchors"].values():
        assert {"util", "n429", "n418", "acquire_us_memory"} <= set(figures)
