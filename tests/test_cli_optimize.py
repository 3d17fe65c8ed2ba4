"""`mystic recommendations` and `mystic optimize` as real subprocesses on a real store: with
nothing run there is nothing to recommend; a process that beat its 429s into the store gets
a step down recommended, shown by a dry run, refused without a terminal to confirm it,
applied with --yes (audited) and, after an operator's increase, held by the cooldown."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mystic_trading.config import StoreSettings
from mystic_trading.monitor import HeartbeatPublisher, heartbeat_figures
from mystic_trading.store import open_store

VENUE = "sandbox-s0-optimize"

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "t.db"


@pytest.fixture
def run(tmp_path: Path, db: Path, mystic_cli: Any) -> Run:
    """`mystic ARGS` on this test's own SQLite store, the exchange nowhere."""
    base = {
        "MYSTIC_STORE__URL": f"sqlite+aiosqlite:///{db}",
        "MYSTIC_PROVIDER__BASE_URL": "http://127.0.0.1:9",
        "XDG_DATA_HOME": str(tmp_path / "xdg"),
    }

    def call(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return mystic_cli({**base, **(env or {})}, *args, timeout_s=120)

    return call


def beat_429s(db: Path, n429: int) -> None:
    """A process beating into the store (every 60 s, so alive for three minutes) whose
    figures show ``n429`` 429s."""

    async def beat() -> None:
        async with await open_store(StoreSettings(url=f"sqlite+aiosqlite:///{db}")) as store:
            figures = heartbeat_figures(
                {"requests": 100, "throttle": {"n429": n429, "level": "moderate"}}
            )
            publisher = HeartbeatPublisher(
                store, lambda: figures, venue=VENUE, heartbeat_s=60.0, host="bot-1", pid=4242
            )
            await publisher.beat_once()

    asyncio.run(beat())


def as_json(shown: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(shown.stdout)
    return data


def test_nothing_to_recommend_on_an_empty_store(run: Run) -> None:
    """No process ever ran: no recommendation, and optimize has nothing to apply (exit 0)."""
    shown = run("recommendations", "--venue", VENUE, "--json")
    assert shown.returncode == 0, shown.stderr
    assert as_json(shown)["recommendations"] == []
    text = run("recommendations", "--venue", VENUE)
    assert "no recommendation" in text.stdout
    nothing = run("optimize", "--venue", VENUE, "--yes")
    assert nothing.returncode == 0, nothing.stderr
    assert "nothing optimize may apply" in nothing.stdout


def test_a_step_down_is_recommended_shown_confirmed_and_cooled_down(run: Run, db: Path) -> None:
    """429s in a heartbeat: recommendations proposes moderate -> conservative with its
    evidence; --dry-run shows it and writes nothing; without --yes and no terminal it is
    refused (exit 1) naming --yes; with --yes it is applied and audited; after an operator's
    increase, the next run is held by the cooldown (exit 1)."""
    beat_429s(db, 4)
    shown = run("recommendations", "--venue", VENUE, "--json")
    assert shown.returncode == 0, shown.stderr
    [lower] = as_json(shown)["recommendations"]
    assert (lower["rule"], lower["from"], lower["to"], lower["applicable"]) == (
        "lower_level",
        "moderate",
        "conservative",
        True,
    )
    assert lower["evidence"]["window"]["basis"] == "since start"
    text = run("recommendations", "--venue", VENUE)
    assert "Lower the throttle level" in text.stdout and "4 x 429" in text.stdout

    dry = run("optimize", "--venue", VENUE, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would move the level moderate -> conservative" in dry.stdout
    asked = run("optimize", "--venue", VENUE)
    assert asked.returncode == 1
    assert "no terminal to confirm it" in asked.stderr and "--yes" in asked.stderr
    status = as_json(run("status", "--venue", VENUE, "--json"))
    assert status["audit"] == [] and status["level"]["name"] == "moderate"

    done = run("optimize", "--venue", VENUE, "--yes", "--json")
    assert done.returncode == 0, done.stderr
    change = as_json(done)["applied"]["change"]
    assert (change["from"], change["to"]) == ("moderate", "conservative")
    [entry] = as_json(run("status", "--venue", VENUE, "--json"))["audit"]
    assert (entry["actor"], entry["to"]) == ("cli optimize", "conservative")
    assert "4 x 429" in entry["reason"]

    assert run("increase", "--venue", VENUE).returncode == 0
    again = run("optimize", "--venue", VENUE, "--yes")
    assert again.returncode == 1
    assert "cooldown" in again.stderr and "by cli" in again.stderr


@pytest.mark.parametrize("command", ["optimize", "recommendations"])
def test_help(run: Run, command: str) -> None:
    """Both commands have --help naming their options."""
    shown = run(command, "--help")
    assert shown.returncode == 0, shown.stderr
    assert "--json" in shown.stdout and "--venue" in shown.stdout
    if command == "optimize":
        for option in ("--dry-run", "--yes", "--watch", "cooldown"):
            assert option in shown.stdout


def test_bad_venue_is_exit_2_naming_it(run: Run, db: Path) -> None:
    """A --venue that is no venue id: exit 2 naming the option, nothing opened."""
    for command in ("optimize", "recommendations"):
        refused = run(command, "--venue", "no such venue!")
        assert refused.returncode == 2
        assert "--venue" in refused.stderr and "not a venue id" in refused.stderr
    assert not db.exists()
