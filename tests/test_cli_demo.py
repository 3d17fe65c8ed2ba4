"""`mystic demo`, run twice as a real subprocess: the second run shows what its help promises
(new-user D7), and `--json` gives the report to scripts."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

SHORT = ("demo", "--bots", "2", "--latency-ms", "5")


@pytest.fixture(scope="module")
def runs(
    tmp_path_factory: pytest.TempPathFactory, mystic_cli: Any
) -> list[subprocess.CompletedProcess[str]]:
    """Two short demo runs on one demo store, each printing its report as JSON.

    The bots' requests are the same seeded sequence every run, cut where time runs out; the
    second run is the shorter, so it asks nothing the first did not (no chance in the test).
    """
    env = {"XDG_DATA_HOME": str(tmp_path_factory.mktemp("demo") / "xdg")}
    return [
        mystic_cli(env, *SHORT, "--seconds", seconds, "--json", timeout_s=120)
        for seconds in ("2", "1")
    ]


def test_json_report_is_one_document_on_stdout(
    runs: list[subprocess.CompletedProcess[str]],
) -> None:
    """stdout holds the report and nothing else; the figures agree with one another."""
    for result in runs:
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        kinds = report["by_kind"]
        assert set(kinds) == {"ticker", "candles", "book"}
        assert report["requests"] == sum(k["requests"] for k in kinds.values())
        for k in kinds.values():
            layers = ("memory", "redis", "store", "upstream")
            assert sum(k[layer] for layer in layers) == k["requests"]
        assert report["http_429"] == report["http_418"] == 0


def test_second_run_answers_closed_candles_from_the_store(
    runs: list[subprocess.CompletedProcess[str]],
) -> None:
    """The first run fetches closed candles; the second answers them from the demo store:
    store share above 0 and no closed candle fetched again. The only closed candles the
    second run fetches are the few that closed in between, at most a handful for each of
    its 24 series (12 symbols, 1m and 1h), where the first fetched thousands."""
    first, second = (json.loads(r.stdout) for r in runs)
    assert first["by_kind"]["candles"]["store"] == 0  # a fresh demo store holds nothing
    assert first["closed_candles_fetched"] > 1000
    assert second["by_kind"]["candles"]["store"] > 0
    assert second["closed_candles_fetched"] <= 3 * 24
    assert second["closed_candles_in_store"] >= first["closed_candles_in_store"]
    history = "candles 1h, a past week"
    assert first["cold_warm"][history]["first_from"] == "upstream"
    assert second["cold_warm"][history]["first_from"] == "store"


def test_level_line_tells_sustained_from_burst(
    runs: list[subprocess.CompletedProcess[str]],
) -> None:
    """40 weight/s beside about 60 used read as an overshoot: the report gives the
    sustained rate and the burst, and what was used stays within what they allow."""
    report = json.loads(runs[0].stdout)
    throttle = report["throttle"]
    assert throttle["level"] == "moderate"
    assert throttle["sustained_weight_per_s"] == 40
    assert throttle["burst_weight"] > 0
    assert report["weight"] <= throttle["allowance_weight"]


def test_table_report_headers_are_whole_at_80_columns(tmp_path: Path, mystic_cli: Any) -> None:
    """No header is cut off (`reques…`) in an 80-column terminal, and the bar's request
    count is the table's."""
    env = {"XDG_DATA_HOME": str(tmp_path / "xdg"), "COLUMNS": "80"}
    result = mystic_cli(env, *SHORT, "--seconds", "1", timeout_s=120)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "…" not in out
    for heading in ("Where answers came from", "requests", "upstream", "coalesced", "calls saved"):
        assert heading in out
    assert "moderate: 40 weight/s sustained, bursts up to" in out
    bar = next(line for line in out.splitlines() if "bots polling" in line)
    served = next(line for line in out.splitlines() if "requests served" in line)
    assert bar.split("requests")[0].split()[-1] == served.split()[-2].replace(",", "")
