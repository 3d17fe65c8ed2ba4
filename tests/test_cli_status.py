"""`mystic status`, `mystic increase` and `mystic decrease` as real subprocesses on a real
store (and Redis): status works with nothing running, a step shows in the next status,
refused steps and bad input exit non-zero with nothing changed."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mystic_trading.cli import status_cmd
from mystic_trading.config import StoreSettings
from mystic_trading.monitor import HeartbeatPublisher
from mystic_trading.store import open_store
from mystic_trading.throttle import RedisQuota

VENUE = "sandbox-s0-status"

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


def status(run: Run, *args: str) -> dict[str, Any]:
    shown = run("status", "--venue", VENUE, "--json", *args)
    assert shown.returncode == 0, shown.stderr
    data: dict[str, Any] = json.loads(shown.stdout)
    return data


def test_status_json_on_an_empty_store(run: Run) -> None:
    """With nothing ever run, status answers from the settings: the level, its ceiling,
    the fallback budget, no process, no ban, no audit."""
    shown = run("status", "--json")
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert data["venue"] == "binance-compatible@127.0.0.1:9"
    assert data["level"]["name"] == "moderate"
    assert data["level"]["ceiling_weight_per_min"] == pytest.approx(2400)
    assert data["limit"]["weight"] == 6000
    assert data["processes"] == [] and data["audit"] == [] and data["ban"]["banned"] is False


def test_increase_then_status_shows_the_new_level(run: Run) -> None:
    """`increase` prints from, to and the new ceiling per minute and that running processes
    apply it within 2 s; the next status shows the level, who set it and the audit entry."""
    up = run("increase", "--venue", VENUE, "--reason", "quiet market")
    assert up.returncode == 0, up.stderr
    assert "moderate -> aggressive" in up.stdout
    assert "2,400 -> 5,400 weight/min" in up.stdout
    assert "every running process applies it within 2 s" in up.stdout
    data = status(run)
    assert (data["level"]["name"], data["level"]["set_by"]) == ("aggressive", "cli")
    assert data["level"]["ceiling_weight_per_min"] == pytest.approx(5400)
    [entry] = data["audit"]
    assert (entry["field"], entry["to"], entry["reason"]) == ("level", "aggressive", "quiet market")
    text = run("status", "--venue", VENUE)
    assert text.returncode == 0, text.stderr
    assert "aggressive (store, set" in text.stdout and "5,400 weight/min" in text.stdout
    assert "quiet market" in text.stdout


def test_a_step_that_changes_no_ceiling_says_so(run: Run) -> None:
    """aggressive -> unlimited on a budget that caps both at the safe rate: the level is
    recorded (exit 0) and a note says nothing effective changed."""
    assert run("increase").returncode == 0  # moderate -> aggressive
    done = run("increase")
    assert done.returncode == 0, done.stderr
    assert "-> unlimited" in done.stdout
    assert "no effective change" in done.stderr


def test_decrease_at_the_bottom_exits_1_and_changes_nothing(run: Run) -> None:
    """From moderate one decrease reaches conservative; the next is refused with exit 1 and
    a message saying so, and writes no audit entry (also with --json)."""
    down = run("decrease", "--venue", VENUE, "--json")
    assert down.returncode == 0, down.stderr
    assert json.loads(down.stdout)["to"] == "conservative"
    refused = run("decrease", "--venue", VENUE)
    assert refused.returncode == 1
    assert "already at the lowest level (conservative); nothing changed" in refused.stderr
    as_json = run("decrease", "--venue", VENUE, "--json")
    assert as_json.returncode == 1
    assert json.loads(as_json.stdout)["changed"] is False
    assert len(status(run)["audit"]) == 1


def test_increase_past_unlimited_exits_1(run: Run) -> None:
    """Two increases reach unlimited; a third is refused, exit 1, nothing written."""
    for _ in range(2):
        assert run("increase", "--venue", VENUE).returncode == 0
    refused = run("increase", "--venue", VENUE)
    assert refused.returncode == 1
    assert "already at the highest level (unlimited); nothing changed" in refused.stderr
    assert len(status(run)["audit"]) == 2


@pytest.mark.parametrize("command", ["status", "increase", "decrease"])
def test_help(run: Run, command: str) -> None:
    """Every command has --help naming its options."""
    shown = run(command, "--help")
    assert shown.returncode == 0, shown.stderr
    assert "--json" in shown.stdout and "--venue" in shown.stdout
    if command != "status":
        assert "--reason" in shown.stdout and "2 s" in shown.stdout


def test_bad_venue_is_exit_2_naming_it_and_opens_nothing(run: Run, db: Path) -> None:
    """A --venue that is no venue id: exit 2, the option and the rule named, and the store
    not even created."""
    refused = run("increase", "--venue", "no such venue!")
    assert refused.returncode == 2
    assert "--venue" in refused.stderr and "not a venue id" in refused.stderr
    assert not db.exists()


def test_unreachable_store_is_exit_1_naming_it(run: Run) -> None:
    """A PostgreSQL store on a closed port: exit 1 and its address in the message."""
    env = {"MYSTIC_STORE__URL": "postgresql+asyncpg://ops:secret@127.0.0.1:1/nowhere"}
    for command in ("status", "increase"):
        failed = run(command, env=env)
        assert failed.returncode == 1, failed.stdout
        assert "StoreError" in failed.stderr and "127.0.0.1:1/nowhere" in failed.stderr
        assert "secret" not in failed.stderr


def test_a_store_in_a_missing_directory_is_exit_1_and_nothing_is_created(
    run: Run, tmp_path: Path
) -> None:
    """A mistyped SQLite path is not a store to create: status and decrease say there is no
    store there (exit 1), and neither the directory nor the file appears."""
    missing = tmp_path / "no-such-dir" / "mystic.db"
    env = {"MYSTIC_STORE__URL": f"sqlite+aiosqlite:///{missing}"}
    for command in ("status", "decrease"):
        failed = run(command, env=env)
        assert failed.returncode == 1, failed.stdout
        assert "no store at" in failed.stderr and "no-such-dir" in failed.stderr
    assert not missing.parent.exists()


def test_status_text_shows_a_running_process(run: Run, db: Path) -> None:
    """A process beating into the store (every 60 s, so alive for three minutes) is listed
    alive with its host, pid and figures, and totalled."""

    async def beat() -> str:
        async with await open_store(StoreSettings(url=f"sqlite+aiosqlite:///{db}")) as store:
            figures = {"requests": 1234, "upstream_calls": 56, "upstream_weight": 112}
            publisher = HeartbeatPublisher(
                store, lambda: figures, venue=VENUE, heartbeat_s=60.0, host="bot-1", pid=4242
            )
            await publisher.beat_once()
            return publisher.process_id

    process_id = asyncio.run(beat())
    shown = run("status", "--venue", VENUE)
    assert shown.returncode == 0, shown.stderr
    [row] = [line for line in shown.stdout.splitlines() if process_id[:8] in line]
    for cell in ("alive", "bot-1", "4242", "1,234", "56", "112"):
        assert cell in row
    assert "processes: 1 alive, 0 gone" in shown.stdout
    [total] = [
        line.split() for line in shown.stdout.splitlines() if line.strip().startswith("total")
    ]
    assert total == ["total", "1,234", "56", "112", "0.0", "0/0"]


@pytest.mark.redis
def test_status_shows_a_ban_in_redis_as_a_utc_time(run: Run, redis_url: str) -> None:
    """A ban in the shared quota only: status shows it banned until a UTC time, from Redis."""
    venue = f"{VENUE}-{uuid.uuid4().hex[:8]}"
    until = time.time_ns() // 1_000_000 + 3_600_000

    async def ban(clear: bool) -> None:
        quota = RedisQuota(redis_url, prefix="mystic:throttle")
        try:
            await (quota.clear_ban(venue) if clear else quota.ban(venue, until))
        finally:
            await quota.aclose()

    asyncio.run(ban(clear=False))
    try:
        env = {"MYSTIC_REDIS_URL": redis_url}
        shown = run("status", "--venue", venue, "--json", env=env)
        assert shown.returncode == 0, shown.stderr
        data = json.loads(shown.stdout)
        assert data["redis"]["available"] is True
        assert (data["ban"]["banned"], data["ban"]["in_redis"]) == (True, True)
        assert data["ban"]["until"].endswith(" UTC")
        text = run("status", "--venue", venue, env=env)
        assert "ban      until " in text.stdout and "Redis reachable" in text.stdout
    finally:
        asyncio.run(ban(clear=True))


def test_status_text_shows_health_checks_worst_first(capsys: pytest.CaptureFixture[str]) -> None:
    """With `health` in the status data, the text output lists the checks that are not ok,
    critical before warning, with value, unit, process and reason (brackets in a reason
    shown as written, not taken for markup), and names the ok ones on one line."""
    data = {
        "overall": "critical",
        "checks": [
            {"name": "store", "status": "ok", "value": 1.25, "unit": "ms", "reason": "fine",
             "process": None},
            {"name": "loop_lag", "status": "warning", "value": 120.0, "unit": "ms",
             "reason": "p99 [120 ms] above 100 ms", "process": "0123456789abcdef"},
            {"name": "upstream", "status": "critical", "value": 41.5, "unit": "%",
             "reason": "41.5 % of answers failed", "process": None},
        ],
    }  # fmt: skip
    status_cmd._print_health(data)
    out = capsys.readouterr().out
    assert "health: critical" in out
    rows = [line for line in out.splitlines() if line.split()[:1] in (["store"], ["loop_lag"],
            ["upstream"])]  # fmt: skip
    assert [row.split()[0] for row in rows] == ["upstream", "loop_lag"]
    assert "41.5 %" in rows[0] and "deployment" in rows[0]
    assert "120 ms" in rows[1] and "01234567" in rows[1] and "[120 ms]" in rows[1]
    assert "ok: store" in out


def test_status_text_sums_up_a_healthy_deployment(capsys: pytest.CaptureFixture[str]) -> None:
    """Every check ok: one line naming them, no table."""
    checks = [
        {"name": name, "status": "ok", "value": 1.0, "unit": "ms", "reason": "fine",
         "process": None}
        for name in ("store_round_trip", "loop_lag")
    ]  # fmt: skip
    status_cmd._print_health({"overall": "ok", "checks": checks})
    out = capsys.readouterr().out
    assert "health: ok (all 2 checks: store_round_trip, loop_lag)" in out
    assert "reason" not in out


def test_status_text_says_when_no_check_has_run(capsys: pytest.CaptureFixture[str]) -> None:
    """No process alive, no round: the health line says so instead of an empty table."""
    status_cmd._print_health({"overall": "ok", "checks": []})
    assert "no check has run" in capsys.readouterr().out


def test_the_command_line_imports_only_what_status_needs() -> None:
    """Importing the CLI (which every `mystic` invocation does) loads neither the sandbox
    server, the market-data facade, pandas nor the health checker: `mystic status` must
    answer within 1 s, start-up included, so command modules import those inside commands."""
    code = (
        "import sys, mystic_trading.cli; "
        "heavy = ['mystic_trading.sandbox', 'mystic_trading.marketdata.facade', 'pandas', "
        "'uvicorn', 'mystic_trading.monitor._health']; "
        "loaded = [m for m in heavy if m in sys.modules]; "
        "assert not loaded, loaded"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
