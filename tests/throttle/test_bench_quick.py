"""bench/throttle.py --quick --json: Mystic sends no 429 or 418 at the benchmark's settings,
in one process and four sharing Redis, and every figure the README quotes is reported."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "throttle.py"

# Shares of the exchange's limit, and the counts of 429 and 418 answers, per phase.
UTILISATIONS = (
    "util_1proc",
    "util_4proc_redis",
    "util_4proc_limits_redis",
    "util_4proc_pyrate_redis",
    "util_defaults",
    "util_defaults_unlimited",
)
COUNTS = tuple(
    f"{kind}_{phase}"
    for kind in ("n429", "n418")
    for phase in (
        "1proc",
        "4proc_redis",
        "4proc_limits_redis",
        "4proc_pyrate_redis",
        "defaults",
        "defaults_unlimited",
        "halving",
    )
)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@pytest.fixture(scope="module")
def quick(redis_url: str) -> dict[str, Any]:
    done = subprocess.run(
        # -P: bench/ not first on sys.path (a module there may be named like a stdlib one).
        [sys.executable, "-P", str(BENCH), "--quick", "--json", "--redis-url", redis_url],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.mark.redis
@pytest.mark.slow
def test_mystic_spends_the_budget_without_429_or_418(quick: dict[str, Any]) -> None:
    """At the benchmark's settings Mystic is never refused, alone or as four processes
    sharing Redis, and it did send traffic in both (the sandbox counted weight)."""
    for phase in ("1proc", "4proc_redis"):
        assert quick[f"n429_{phase}"] == 0, phase
        assert quick[f"n418_{phase}"] == 0, phase
        assert quick[f"util_{phase}"] > 0, phase
    assert quick["n429_1proc"] == 0
    # The shipped defaults are slower, never less safe.
    for phase in ("defaults", "defaults_unlimited"):
        assert quick[f"n429_{phase}"] == 0, phase
        assert quick[f"n418_{phase}"] == 0, phase
        assert quick[f"util_{phase}"] > 0, phase


@pytest.mark.redis
@pytest.mark.slow
def test_halving_the_budget_earns_no_ban(quick: dict[str, Any]) -> None:
    """An unannounced halving of the exchange's budget costs at most a few 429s, never a
    418: the first 429 pauses every caller and cuts the rate."""
    assert quick["n418_halving"] == 0
    assert quick["n429_halving"] <= 5


@pytest.mark.redis
@pytest.mark.slow
def test_every_figure_is_reported(quick: dict[str, Any]) -> None:
    """The new four-process anchors, the shipped defaults and the earlier figures are all in
    the JSON as numbers: utilisations are shares of the limit, counts whole and >= 0."""
    for key in UTILISATIONS:
        assert _number(quick[key]), key
        assert 0 <= quick[key] <= 1.1, key
    for key in COUNTS:
        assert isinstance(quick[key], int) and quick[key] >= 0, key
    # The anchors did run against the same budget: they spent some of it.
    assert quick["util_4proc_limits_redis"] > 0
    assert quick["util_4proc_pyrate_redis"] > 0
    assert quick["defaults"] == {"level": "moderate", "safety_margin": 0.1, "max_weight": 250}
    assert quick["settings"] == {"level": "unlimited", "safety_margin": 0.02, "max_weight": 50}
    for key in ("acquire_us_memory", "acquire_us_redis"):
        assert _number(quick[key]) and quick[key] > 0, key
    assert quick["recovery_s"] is None or _number(quick["recovery_s"])
    assert set(quick["anchors"]) == {"aiolimiter", "ccxt", "pyrate", "limits"}
    for name, found in quick["anchors"].items():
        assert {"util", "n429", "n418", "acquire_us_memory"} <= set(found), name
        assert _number(found["util"]) and found["util"] > 0, name


@pytest.mark.redis
@pytest.mark.slow
def test_the_run_leaves_no_redis_keys(quick: dict[str, Any], redis_url: str) -> None:
    """Every key the run wrote (Mystic's, limits' and pyrate-limiter's) is deleted at the end."""
    import redis

    prefix = quick["redis_prefix"]
    assert prefix.startswith("bench:throttle:")
    client = redis.Redis.from_url(redis_url)
    try:
        assert list(client.scan_iter(match=f"{prefix}*", count=1000)) == []
    finally:
        client.close()
