"""`mystic throttle level` and `mystic throttle ban show|clear` as real subprocesses on a
real store (and Redis): a stale ban is lifted without SQL, bans are shown as times."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mystic_trading.config import StoreSettings
from mystic_trading.store import open_store
from mystic_trading.throttle import RedisQuota

VENUE = "sandbox-s0-test"


Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def run(tmp_path: Path, mystic_cli: Any) -> Run:
    """`mystic ARGS` on this test's own store."""
    base = {
        "MYSTIC_STORE__URL": f"sqlite+aiosqlite:///{tmp_path / 't.db'}",
        "MYSTIC_PROVIDER__BASE_URL": "http://127.0.0.1:9",
        "XDG_DATA_HOME": str(tmp_path / "xdg"),
    }

    def call(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return mystic_cli({**base, **(env or {})}, *args, timeout_s=120)

    return call


def store_settings(tmp_path: Path) -> StoreSettings:
    return StoreSettings(url=f"sqlite+aiosqlite:///{tmp_path / 't.db'}")


def test_level_shows_the_setting_then_what_is_stored(run: Run, tmp_path: Path) -> None:
    """With nothing stored the setting is the level; a set level is stored with its audit
    entry and shown as the level in force."""
    shown = run("throttle", "level", "--venue", VENUE, "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["level"] == "moderate"
    assert json.loads(shown.stdout)["source"].startswith("setting")
    changed = run("throttle", "level", "AGGRESSIVE", "--venue", VENUE, "--reason", "quiet day")
    assert changed.returncode == 0, changed.stderr
    data = json.loads(run("throttle", "level", "--venue", VENUE, "--json").stdout)
    assert (data["level"], data["source"], data["updated_by"]) == ("aggressive", "store", "cli")

    async def audit() -> list[tuple[str, str | None, str]]:
        async with await open_store(store_settings(tmp_path)) as store:
            return [(c.field, c.to_value, c.reason) for c in await store.control.audit(VENUE)]

    assert ("level", "aggressive", "quiet day") in asyncio.run(audit())


def test_a_bad_level_is_exit_2_and_names_the_accepted_ones(run: Run, tmp_path: Path) -> None:
    """`mystic throttle level turbo` changes nothing and says what is accepted."""
    result = run("throttle", "level", "turbo", "--venue", VENUE)
    assert result.returncode == 2
    assert "conservative" in result.stderr


def test_a_stale_ban_is_shown_as_a_time_and_lifted_without_sql(
    run: Run, tmp_path: Path, redis_url: str
) -> None:
    """A ban in the store and in Redis shows its end as a UTC time, not epoch ms; `clear`
    needs --yes, then lifts both (audited) and the next `show` finds none."""
    venue = f"{VENUE}-{uuid.uuid4().hex[:8]}"
    until = time.time_ns() // 1_000_000 + 3_600_000

    async def ban() -> None:
        async with await open_store(store_settings(tmp_path)) as store:
            await store.control.save_ban(venue, until, "HTTP 418 on /api/v3/depth")
        quota = RedisQuota(redis_url, prefix="mystic:throttle")
        await quota.ban(venue, until)
        await quota.aclose()

    asyncio.run(ban())
    env = {"MYSTIC_REDIS_URL": redis_url}
    shown = run("throttle", "ban", "show", "--venue", venue, env=env)
    assert shown.returncode == 0, shown.stderr
    assert "banned until" in shown.stdout and "UTC" in shown.stdout
    assert str(until) not in shown.stdout
    refused = run("throttle", "ban", "clear", "--venue", venue, env=env)
    assert refused.returncode == 2
    lifted = run("throttle", "ban", "clear", "--venue", venue, "--yes", env=env)
    assert lifted.returncode == 0, lifted.stderr
    assert "ban lifted" in lifted.stdout
    data = json.loads(run("throttle", "ban", "show", "--venue", venue, "--json", env=env).stdout)
    assert data["banned"] is False
    assert data["until"] is None

    async def left() -> int | None:
        quota = RedisQuota(redis_url, prefix="mystic:throttle")
        try:
            return await quota.banned_until(venue)
        finally:
            await quota.aclose()

    assert asyncio.run(left()) is None
