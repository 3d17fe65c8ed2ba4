"""Log lines of the command line: routine slow writes stay out of sight, and a line logged
while a progress bar is drawn lands above it, not inside it (new-user D11)."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mystic_trading.sandbox import SandboxServer

BACKFILL = ("backfill", "BTCUSDT", "--interval", "1d", "--since", "2024-01-01")


def _env(exchange: SandboxServer, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "MYSTIC_PROVIDER__BASE_URL": exchange.url,
        "MYSTIC_STORE__URL": f"sqlite+aiosqlite:///{tmp_path / 'm.db'}",
        "XDG_DATA_HOME": str(tmp_path / "xdg"),
        # Every statement is "slow": what is logged, and at what level, is what is tested.
        "MYSTIC_STORE__SLOW_QUERY_MS": "0.000001",
        **extra,
    }


def test_routine_slow_writes_are_not_warnings(
    mystic_cli: Any, shared_exchange: SandboxServer, tmp_path: Path
) -> None:
    """A backfill's slow coverage.save is an INFO line: shown at MYSTIC_LOG_LEVEL=INFO, not
    by default (it printed WARNING on routine requests)."""
    quiet = mystic_cli(_env(shared_exchange, tmp_path / "a"), *BACKFILL, "--until", "2024-01-05")
    assert quiet.returncode == 0, quiet.stderr
    assert "slow query coverage.save" not in quiet.stderr
    told = mystic_cli(
        _env(shared_exchange, tmp_path / "b", MYSTIC_LOG_LEVEL="info"),
        *BACKFILL,
        "--until",
        "2024-01-05",
    )
    assert told.returncode == 0, told.stderr
    assert "INFO mystic_trading.store: slow query coverage.save" in told.stderr


def _run_on_a_terminal(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    """Run the CLI with stdout on a pseudo-terminal (Rich draws its live bar there) and
    stderr on a pipe; returns the exit code, the terminal's text and stderr."""
    main, child = pty.openpty()
    base = {k: v for k, v in os.environ.items() if not k.startswith("MYSTIC_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mystic_trading", *args],
        stdout=child,
        stderr=subprocess.PIPE,
        env={**base, "COLUMNS": "120", "TERM": "xterm", **env},
    )
    os.close(child)
    chunks: list[bytes] = []
    while True:
        ready, _, _ = select.select([main], [], [], 60)
        if not ready:
            proc.kill()
            break
        try:
            data = os.read(main, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(main)
    assert proc.stderr is not None
    err = proc.stderr.read().decode()
    proc.stderr.close()
    return proc.wait(timeout=60), b"".join(chunks).decode(errors="replace"), err


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_a_line_logged_under_a_progress_bar_goes_through_the_bar(
    shared_exchange: SandboxServer, tmp_path: Path
) -> None:
    """While backfill's bar is live, a log line is printed by the bar's console, above the
    bar; written straight to the original stderr it landed inside the bar."""
    code, terminal, err = _run_on_a_terminal(
        _env(shared_exchange, tmp_path, MYSTIC_LOG_LEVEL="info"),
        *BACKFILL,
        "--until",
        "2024-02-01",
    )
    assert code == 0, err + terminal
    assert "slow query coverage.save" in terminal
    assert "slow query coverage.save" not in err
    assert "BTCUSDT 1d:" in terminal  # the closing line, after the bar
