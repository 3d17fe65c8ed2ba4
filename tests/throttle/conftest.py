"""Fixtures of the throttle tests: quotas over each backend, Redis servers of our own, and a
Quota that counts what the throttler asks of it."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from mystic_trading.throttle import BucketSpec, Grant, MemoryQuota, Quota, RedisQuota


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def quota(request: pytest.FixtureRequest) -> AsyncIterator[Quota]:
    """A quota over each backend; Redis keys under a prefix unique to the test."""
    if request.param == "memory":
        yield MemoryQuota()
        return
    url = request.getfixturevalue("redis_url")
    redis_quota = RedisQuota(url, prefix=f"test:{uuid.uuid4().hex}")
    yield redis_quota
    await redis_quota.aclose()


class CountingQuota:
    """A Quota that hands every call to ``inner``, counts reservations (keeping their
    grants) and bans; ``reserve_ahead_s`` may be widened so grants come far ahead of their start."""

    def __init__(self, inner: Quota, *, reserve_ahead_s: float | None = None) -> None:
        self.inner = inner
        self.reserves = 0
        self.bans = 0
        self.grants: list[Grant] = []
        self.granted_ahead = asyncio.Event()  # set by the first grant to start later
        self._ahead = reserve_ahead_s

    @property
    def mode(self) -> str:
        return self.inner.mode

    @property
    def fallbacks(self) -> int:
        return self.inner.fallbacks

    @property
    def last_error(self) -> str | None:
        return self.inner.last_error

    @property
    def reserve_ahead_s(self) -> float:
        return self.inner.reserve_ahead_s if self._ahead is None else self._ahead

    async def start(self) -> None:
        await self.inner.start()

    async def reserve(self, key: str, weight: int, spec: BucketSpec, max_delay: float) -> Grant:
        self.reserves += 1
        grant = await self.inner.reserve(key, weight, spec, max_delay)
        self.grants.append(grant)
        if grant.granted and grant.delay_s > 0:
            self.granted_ahead.set()
        return grant

    async def sync_usage(
        self, key: str, used: int, limit_eff: float, remaining_s: float, spec: BucketSpec
    ) -> None:
        await self.inner.sync_usage(key, used, limit_eff, remaining_s, spec)

    async def pause(self, key: str, seconds: float) -> None:
        await self.inner.pause(key, seconds)

    async def ban(self, key: str, until_ms: int) -> None:
        self.bans += 1
        await self.inner.ban(key, until_ms)

    async def banned_until(self, key: str) -> int | None:
        return await self.inner.banned_until(key)

    async def clear_ban(self, key: str) -> None:
        await self.inner.clear_ban(key)

    async def aclose(self) -> None:
        await self.inner.aclose()


class PrivateRedis:
    """A redis-server of our own on a free loopback port, started with extra arguments
    (a password, a replica role, a memory limit...)."""

    def __init__(self, *args: str) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        exe = shutil.which("redis-server")
        assert exe is not None
        command = [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        self.proc = subprocess.Popen(
            [*command, "--appendonly", "no", *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(500):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.1).close()
                return
            except OSError:
                time.sleep(0.01)
        self.stop()
        raise RuntimeError("redis-server did not start")

    def url(self, user: str = "", password: str = "") -> str:
        auth = f"{user}:{password}@" if user or password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def private_redis() -> Iterator[Callable[..., PrivateRedis]]:
    """Start redis-servers of our own with the given arguments; all stopped afterwards
    (skipped when the binary is missing, a failure under CI=true)."""
    if shutil.which("redis-server") is None:
        message = "needs the redis-server binary to start a private Redis"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message}; under CI=true a missing service fails the run", pytrace=False)
        pytest.skip(message)
    servers: list[PrivateRedis] = []

    def start(*args: str) -> PrivateRedis:
        server = PrivateRedis(*args)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
