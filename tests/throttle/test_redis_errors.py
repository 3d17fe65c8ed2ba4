"""Every Redis error leads to the local fallback, never out of the throttler (review M5);
a wrong password is a clear error at start (issue 11 item 2).

Each error is a real one from a redis-server of our own: a user whose permissions are
revoked (NOPERM), a replica (READONLY), a memory limit (OOM), a script that will not end
(BUSY), a password changed under a running process (authentication).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from mystic_trading.config import ThrottleSettings
from mystic_trading.errors import ConfigError
from mystic_trading.throttle import Budget, RedisQuota, Throttler

from .conftest import PrivateRedis

pytestmark = pytest.mark.redis

SETTINGS = ThrottleSettings(level="unlimited", safety_margin=0.1)
BUDGET = Budget(limit=6000, window_s=60.0, max_weight=100)
USER, PASSWORD = "mystic", "s3cret-pass"

StartRedis = Callable[..., PrivateRedis]


async def admitted(throttler: Throttler, n: int = 3) -> None:
    """``n`` weight-1 requests through ``throttler``, each answered 200."""
    for _ in range(n):
        async with throttler.slot("/x", 1) as slot:
            slot.record(200, {})


@pytest.fixture
async def admin(private_redis: StartRedis) -> AsyncIterator[tuple[PrivateRedis, Any]]:
    """A private Redis with a user ``mystic`` allowed everything, and an admin client."""
    server = private_redis()
    client = aioredis.Redis.from_url(server.url())
    await client.execute_command("ACL", "SETUSER", USER, "on", f">{PASSWORD}", "~*", "+@all")
    yield server, client
    await client.aclose()


async def until_busy(client: Any) -> None:
    """Return once Redis answers BUSY (the endless script ran past the threshold)."""
    for _ in range(1000):
        try:
            await client.ping()
        except ResponseError as exc:
            if "BUSY" in str(exc):
                return
            raise
        await asyncio.sleep(0.01)
    raise AssertionError("Redis never got busy")


def fell_back(throttler: Throttler, caplog: pytest.LogCaptureFixture, words: str) -> None:
    """The throttler is on the local share, says why in its stats, and logged it once."""
    quota = throttler.stats()["quota"]
    assert quota["mode"] == "local-fallback"
    assert quota["fallbacks"] == 1
    assert words in quota["last_error"].lower()
    assert PASSWORD not in quota["last_error"]
    lines = [r for r in caplog.records if r.name == "mystic_trading.throttle"]
    assert len(lines) == 1, [r.getMessage() for r in lines]
    assert "local share" in lines[0].getMessage()


async def test_noperm_falls_back(
    admin: tuple[PrivateRedis, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """The user loses the right to run scripts mid-run (NOPERM): calls go on locally."""
    server, client = admin
    quota = RedisQuota(server.url(USER, PASSWORD), prefix="t", reconnect_s=60.0)
    async with Throttler("p", BUDGET, settings=SETTINGS, quota=quota) as throttler:
        await admitted(throttler)
        assert throttler.stats()["quota"]["mode"] == "redis"
        await client.execute_command("ACL", "SETUSER", USER, "-evalsha", "-eval")
        with caplog.at_level(logging.WARNING, logger="mystic_trading.throttle"):
            await admitted(throttler, 5)
        fell_back(throttler, caplog, "permission")


async def test_readonly_replica_falls_back(
    private_redis: StartRedis, caplog: pytest.LogCaptureFixture
) -> None:
    """Pointed at a read-only replica (as after a failover), calls go on locally."""
    master = private_redis()
    replica = private_redis("--replicaof", "127.0.0.1", str(master.port))
    quota = RedisQuota(replica.url(), prefix="t", reconnect_s=60.0)
    async with Throttler("p", BUDGET, settings=SETTINGS, quota=quota) as throttler:
        with caplog.at_level(logging.WARNING, logger="mystic_trading.throttle"):
            await admitted(throttler, 5)
        fell_back(throttler, caplog, "read only")


async def test_out_of_memory_falls_back(
    private_redis: StartRedis, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis over its memory limit refuses writes (OOM): calls go on locally."""
    server = private_redis("--maxmemory-policy", "noeviction")
    quota = RedisQuota(server.url(), prefix="t", reconnect_s=60.0)
    async with Throttler("p", BUDGET, settings=SETTINGS, quota=quota) as throttler:
        await admitted(throttler)
        client = aioredis.Redis.from_url(server.url())
        await client.set("ballast", b"x" * 1_000_000)
        await client.config_set("maxmemory", "1")
        with caplog.at_level(logging.WARNING, logger="mystic_trading.throttle"):
            await admitted(throttler, 5)
        await client.config_set("maxmemory", "0")
        await client.aclose()
        fell_back(throttler, caplog, "memory")


async def test_busy_script_falls_back(
    private_redis: StartRedis, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis busy running someone's endless script (BUSY): calls go on locally."""
    server = private_redis("--busy-reply-threshold", "10")
    quota = RedisQuota(server.url(), prefix="t", reconnect_s=60.0, timeout_s=2.0)
    async with Throttler("p", BUDGET, settings=SETTINGS, quota=quota) as throttler:
        await admitted(throttler)
        busy = aioredis.Redis.from_url(server.url())
        killer = aioredis.Redis.from_url(server.url())
        endless = asyncio.create_task(busy.eval("while true do end", 0))
        await until_busy(killer)
        try:
            with caplog.at_level(logging.WARNING, logger="mystic_trading.throttle"):
                await admitted(throttler, 5)
        finally:
            await killer.script_kill()
            with pytest.raises(Exception, match="killed"):
                await endless
            await busy.aclose()
            await killer.aclose()
        fell_back(throttler, caplog, "busy")


async def test_password_changed_under_a_running_process_falls_back(
    admin: tuple[PrivateRedis, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """The user's password is changed and its connections dropped mid-run: the reconnect's
    authentication fails and calls go on locally (the password never reaches the stats)."""
    server, client = admin
    quota = RedisQuota(server.url(USER, PASSWORD), prefix="t", reconnect_s=0.0)
    async with Throttler("p", BUDGET, settings=SETTINGS, quota=quota) as throttler:
        await admitted(throttler)
        await client.execute_command("ACL", "SETUSER", USER, "resetpass", ">another-one")
        await client.execute_command("CLIENT", "KILL", "USER", USER)
        with caplog.at_level(logging.WARNING, logger="mystic_trading.throttle"):
            await admitted(throttler, 5)
        fell_back(throttler, caplog, "auth")


async def test_fallback_and_return_show_in_stats(admin: tuple[PrivateRedis, Any]) -> None:
    """Back on Redis after an error, the stats say so and keep the last error's text."""
    server, client = admin
    quota = RedisQuota(server.url(USER, PASSWORD), prefix="t", reconnect_s=0.0)
    async with Throttler("p", BUDGET, settings=SETTINGS, quota=quota) as throttler:
        await client.execute_command("ACL", "SETUSER", USER, "-evalsha", "-eval")
        await admitted(throttler)
        assert throttler.stats()["quota"]["mode"] == "local-fallback"
        await client.execute_command("ACL", "SETUSER", USER, "+evalsha", "+eval")
        await admitted(throttler)
        quota_stats = throttler.stats()["quota"]
    assert quota_stats["mode"] == "redis"
    assert quota_stats["fallbacks"] == 1
    assert "permission" in quota_stats["last_error"].lower()


# -- at start --------------------------------------------------------------------------------


@pytest.mark.parametrize("password", ["wrong-one", ""])
async def test_a_wrong_password_is_a_clear_error_at_start(
    private_redis: StartRedis, password: str
) -> None:
    """A wrong or missing password fails the throttler's start with a ConfigError naming the
    masked URL and saying authentication failed, instead of a local share for ever."""
    server = private_redis("--requirepass", PASSWORD)
    url = server.url("", password)
    throttler = Throttler("p", BUDGET, settings=SETTINGS, quota=RedisQuota(url, prefix="t"))
    with pytest.raises(ConfigError) as info:
        await throttler.start()
    await throttler.aclose()
    message = str(info.value)
    assert "authentication failed" in message
    assert f"127.0.0.1:{server.port}" in message
    assert password == "" or password not in message
    assert info.value.setting == "redis_url"


async def test_a_user_without_the_scripts_is_a_clear_error_at_start(
    admin: tuple[PrivateRedis, Any],
) -> None:
    """A Redis user that may not run the quota's scripts fails the start with a ConfigError
    that says which permission is missing."""
    server, client = admin
    await client.execute_command("ACL", "SETUSER", USER, "-evalsha", "-eval", "-script")
    quota = RedisQuota(server.url(USER, PASSWORD), prefix="t")
    throttler = Throttler("p", BUDGET, settings=SETTINGS, quota=quota)
    with pytest.raises(ConfigError) as info:
        await throttler.start()
    await throttler.aclose()
    assert "permission" in str(info.value)
    assert PASSWORD not in str(info.value)


async def test_unreachable_redis_at_start_falls_back(
    private_redis: StartRedis, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis not up yet at start is no error: the local share meters until it answers."""
    server = private_redis()
    server.stop()
    quota = RedisQuota(server.url(), prefix="t", reconnect_s=60.0)
    with caplog.at_level(logging.WARNING, logger="mystic_trading.throttle"):
        async with Throttler("p", BUDGET, settings=SETTINGS, quota=quota) as throttler:
            await admitted(throttler)
            assert throttler.stats()["quota"]["mode"] == "local-fallback"
    assert "unreachable" in caplog.text
