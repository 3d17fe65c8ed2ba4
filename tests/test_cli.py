"""The `mystic` command line, run as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def mystic(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("MYSTIC_")}
    base.update(env or {})
    base["COLUMNS"] = "200"
    return subprocess.run(
        [sys.executable, "-m", "mystic_trading", *args],
        capture_output=True,
        text=True,
        env=base,
        timeout=60,
        check=False,
    )


def test_help_lists_the_commands() -> None:
    """`mystic --help` explains the tool and lists its commands."""
    result = mystic("--help")
    assert result.returncode == 0, result.stderr
    for command in ("config", "db", "sandbox"):
        assert command in result.stdout


def test_config_show_json_masks_secrets(tmp_path: Path) -> None:
    """`mystic config show --json` prints the effective settings with secrets masked."""
    result = mystic(
        "config",
        "show",
        "--json",
        env={
            "MYSTIC_STORE__URL": "postgresql+asyncpg://bot:s3cret@127.0.0.1/test",
            "MYSTIC_API__ADMIN_TOKEN": "tok-abcdef",
        },
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["store"]["url"] == "postgresql+asyncpg://bot:***@127.0.0.1/test"
    assert data["api"]["admin_token"] == "***"
    assert "s3cret" not in result.stdout and "tok-abcdef" not in result.stdout


def test_config_show_reads_the_config_option(tmp_path: Path) -> None:
    """--config FILE feeds the settings shown."""
    toml = tmp_path / "m.toml"
    toml.write_text('[throttle]\nlevel = "aggressive"\n')
    result = mystic("--config", str(toml), "config", "show")
    assert result.returncode == 0, result.stderr
    assert "aggressive" in result.stdout


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"MYSTIC_THROTTLE__LEVEL": "turbo"}, "throttle.level"),
        ({"MYSTIC_STORE__POOL_SIZE": "-2"}, "store.pool_size"),
    ],
)
def test_invalid_setting_stops_at_start_with_exit_2(env: dict[str, str], needle: str) -> None:
    """An invalid setting exits 2 with the setting named on stderr and no traceback."""
    result = mystic("config", "show", env=env)
    assert result.returncode == 2
    assert needle in result.stderr
    assert "Traceback" not in result.stderr


def test_sandbox_command_serves_binance_api() -> None:
    """`mystic sandbox --port 0` starts the exchange on loopback and answers /ticker/price."""
    import httpx

    env = {k: v for k, v in os.environ.items() if not k.startswith("MYSTIC_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mystic_trading", "sandbox", "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
        env={**env, "COLUMNS": "300"},
    )
    try:
        assert proc.stderr is not None
        url = ""
        for line in proc.stderr:
            if "ready at" in line:
                url = line.split("ready at", 1)[1].strip()
                break
        assert url.startswith("http://127.0.0.1:")
        answer = httpx.get(f"{url}/api/v3/ticker/price", params={"symbol": "BTCUSDT"})
        assert answer.status_code == 200
        assert set(answer.json()) == {"symbol", "price"}
        assert "x-mbx-used-weight-1m" in answer.headers
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stderr is not None:
            proc.stderr.close()


def test_sandbox_refuses_a_public_bind() -> None:
    """Binding 0.0.0.0 without --allow-remote is refused with exit 2 and the reason."""
    result = mystic("sandbox", "--host", "0.0.0.0", "--port", "0")
    assert result.returncode == 2
    assert "loopback" in result.stderr
