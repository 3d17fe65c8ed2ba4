"""Fixtures of the throttle tests: quotas over each backend, a Redis server to kill."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from mystic_trading.throttle import MemoryQuota, Quota, RedisQuota


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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisProcess:
    """A redis-server of our own on a free loopback port, to stop and start again."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        exe = shutil.which("redis-server")
        assert exe is not None
        self.proc = subprocess.Popen(
            [
                exe,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.1).close()
                return
            except OSError:
                time.sleep(0.01)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


@pytest.fixture
def own_redis() -> Iterator[RedisProcess]:
    """A private redis-server (skipped when the binary is missing)."""
    if shutil.which("redis-server") is None:
        pytest.skip("needs the redis-server binary to start a private Redis")
    server = RedisProcess()
    server.start()
    yield server
    server.stop()
