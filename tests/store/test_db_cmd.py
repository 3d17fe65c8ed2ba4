"""``mystic db upgrade`` and ``mystic db status`` on a real SQLite file."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from mystic_trading.cli.db_cmd import app
from mystic_trading.config import Settings, StoreSettings
from mystic_trading.store import head_revision


class _State:
    def __init__(self, url: str) -> None:
        self.settings = Settings(store=StoreSettings(url=url))


def test_status_then_upgrade_then_status(tmp_path: Path) -> None:
    """status --check fails on an empty file; upgrade brings it to head; status agrees."""
    state = _State(f"sqlite:///{tmp_path / 'm.db'}")
    runner = CliRunner()
    behind = runner.invoke(app, ["status", "--check"], obj=state)
    assert behind.exit_code == 1 and "(empty)" in behind.output
    done = runner.invoke(app, ["upgrade", "--json"], obj=state)
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["current"] == head_revision()
    after = runner.invoke(app, ["status", "--check"], obj=state)
    assert after.exit_code == 0 and "up to date" in after.output
