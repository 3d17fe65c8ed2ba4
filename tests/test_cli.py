"""The `mystic` command line, run as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mystic_trading.sandbox import SandboxServer


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


# -- log level (new-user D4) ------------------------------------------------------------------


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("level", ["debug", "Debug", "DEBUG"])
def test_log_level_debug_adds_debug_lines(mystic_cli: Any, tmp_path: Path, level: str) -> None:
    """MYSTIC_LOG_LEVEL=debug, in any case, adds Mystic's debug lines (the CLI hard-coded
    WARNING, and lower-case was refused)."""
    quiet = mystic_cli({"XDG_DATA_HOME": str(tmp_path)}, "config", "show", "--json")
    loud = mystic_cli(
        {"XDG_DATA_HOME": str(tmp_path), "MYSTIC_LOG_LEVEL": level}, "config", "show", "--json"
    )
    assert quiet.returncode == 0 and loud.returncode == 0, loud.stderr
    assert "DEBUG" not in quiet.stderr
    assert "DEBUG mystic_trading" in loud.stderr
    assert json.loads(loud.stdout)["log_level"] == "DEBUG"  # stdout stays clean JSON


def test_log_level_error_silences_warning_lines(mystic_cli: Any, tmp_path: Path) -> None:
    """MYSTIC_LOG_LEVEL=ERROR drops the WARNING lines; the error itself is still shown."""
    env = {
        "XDG_DATA_HOME": str(tmp_path),
        "MYSTIC_PROVIDER__BASE_URL": f"http://127.0.0.1:{_closed_port()}",
        "MYSTIC_THROTTLE__MAX_RETRIES": "0",
    }
    default = mystic_cli(env, "ticker", "BTCUSDT")
    errors_only = mystic_cli({**env, "MYSTIC_LOG_LEVEL": "error"}, "ticker", "BTCUSDT")
    assert default.returncode == errors_only.returncode == 1
    assert "WARNING mystic_trading" in default.stderr
    assert "WARNING" not in errors_only.stderr
    assert "UpstreamUnavailable" in errors_only.stderr


def test_a_bad_log_level_exits_2_naming_the_accepted_ones(mystic_cli: Any, tmp_path: Path) -> None:
    """A bad level is a configuration error, exit 2, one line naming what is accepted."""
    result = mystic_cli(
        {"XDG_DATA_HOME": str(tmp_path), "MYSTIC_LOG_LEVEL": "loud"}, "config", "show"
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    line = next(line for line in result.stderr.splitlines() if "log_level" in line)
    for level in ("DEBUG", "INFO", "WARNING", "ERROR", "'loud'"):
        assert level in line


# -- did you mean (new-user D11) --------------------------------------------------------------


def test_a_toml_typo_suggests_the_setting(mystic_cli: Any, tmp_path: Path) -> None:
    """`levle` in [throttle] names throttle.level, on the line of the error."""
    toml = tmp_path / "m.toml"
    toml.write_text('[throttle]\nlevle = "aggressive"\n')
    result = mystic_cli({"XDG_DATA_HOME": str(tmp_path)}, "--config", str(toml), "config", "show")
    assert result.returncode == 2
    line = next(line for line in result.stderr.splitlines() if "throttle.levle" in line)
    assert "did you mean throttle.level (MYSTIC_THROTTLE__LEVEL)?" in line


def test_a_misspelt_variable_suggests_the_right_one(mystic_cli: Any, tmp_path: Path) -> None:
    """MYSTIC_THROTLE__LEVEL names MYSTIC_THROTTLE__LEVEL."""
    result = mystic_cli(
        {"XDG_DATA_HOME": str(tmp_path), "MYSTIC_THROTLE__LEVEL": "aggressive"}, "config", "show"
    )
    assert result.returncode == 2
    assert "did you mean MYSTIC_THROTTLE__LEVEL?" in result.stderr


def test_a_misspelt_symbol_suggests_the_listed_one(
    mystic_cli: Any, shared_exchange: SandboxServer, tmp_path: Path
) -> None:
    """`ticker BTCUSTD` names BTC/USDT, and sends no ticker request."""
    env = {
        "XDG_DATA_HOME": str(tmp_path),
        "MYSTIC_PROVIDER__BASE_URL": shared_exchange.url,
    }
    result = mystic_cli(env, "ticker", "BTCUSTD")
    assert result.returncode == 1
    assert "did you mean BTC/USDT?" in result.stderr
    assert "Traceback" not in result.stderr
