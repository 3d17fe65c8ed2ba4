"""`mystic demo` keeps to its own store, and `mystic db venues` shows and repairs venues."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def run(tmp_path: Path, mystic_cli: Any) -> Run:
    """`mystic ARGS` on this test's own store."""
    base = {
        "MYSTIC_STORE__URL": f"sqlite+aiosqlite:///{tmp_path / 'mine.db'}",
        "XDG_DATA_HOME": str(tmp_path / "xdg"),
    }

    def call(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return mystic_cli({**base, **(env or {})}, *args)

    return call


def candle_venues(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as conn:
        return dict(conn.execute("SELECT provider, COUNT(*) FROM candles GROUP BY provider"))


@pytest.mark.slow
def test_demo_never_touches_the_configured_store(run: Run, tmp_path: Path) -> None:
    """The Quickstart's demo writes only to demo.db, keyed by the sandbox's venue; the
    user's store stays as it was, and `mystic db venues list` names what demo.db holds."""
    result = run("demo", "--seconds", "1", "--bots", "2", "--latency-ms", "5")
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "mine.db").exists()
    demo_db = tmp_path / "xdg" / "mystic" / "demo.db"
    venues = candle_venues(demo_db)
    assert venues, "the demo stored no candle"
    assert all(v.startswith("sandbox-s0-") for v in venues)
    listed = run(
        "db",
        "venues",
        "list",
        "--json",
        env={"MYSTIC_STORE__URL": f"sqlite+aiosqlite:///{demo_db}"},
    )
    assert listed.returncode == 0, listed.stderr
    data = json.loads(listed.stdout)
    (venue,) = data["venues"]
    assert data["venues"][venue]["rows"]["candles"] == sum(venues.values())
    assert data["base_urls"][0]["venue"] == venue


def test_venue_changes_need_yes(run: Run, tmp_path: Path) -> None:
    """move and drop change nothing without --yes, and say so (exit 2)."""
    for args in (("move", "binance", "binance-spot"), ("drop", "binance")):
        result = run("db", "venues", *args)
        assert result.returncode == 2
        assert "--yes" in result.stdout


def test_moving_onto_a_venue_that_holds_rows_is_refused(run: Run, tmp_path: Path) -> None:
    """Two origins never mix: a move into a venue with rows fails and changes nothing."""
    db = tmp_path / "mine.db"
    assert run("db", "upgrade").returncode == 0
    with sqlite3.connect(db) as conn:
        for venue in ("binance", "binance-spot"):
            conn.execute(
                "INSERT INTO bans (provider, until_ms, reason, created_at) VALUES (?, 1, 'x', 1)",
                (venue,),
            )
    result = run("db", "venues", "move", "binance", "binance-spot", "--yes")
    assert result.returncode == 1
    assert "already holds rows" in result.stderr
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM bans").fetchone() == (2,)
    dropped = run("db", "venues", "drop", "binance", "--yes")
    assert dropped.returncode == 0, dropped.stderr
    moved = run("db", "venues", "move", "binance-spot", "binance-spot-2", "--yes")
    assert moved.returncode == 0, moved.stderr
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT provider FROM bans").fetchall() == [("binance-spot-2",)]
        audit = conn.execute("SELECT field, from_value, to_value FROM control_audit").fetchall()
    assert ("venue", "binance", None) in audit
    assert ("venue", "binance-spot", "binance-spot-2") in audit
