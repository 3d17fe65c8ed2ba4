"""Fixtures shared by the whole suite: the real PostgreSQL and Redis servers.

Tests that need a server take the `postgres_url` or `redis_url` fixture. Where the server is
not reachable the test is skipped with the reason, except under CI=true, where that skip
would hide a missing service and is a failure instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

import pytest
import uvicorn
from starlette.types import ASGIApp

from mystic_trading.api._serve import bind
from mystic_trading.sandbox import SandboxConfig, SandboxServer

POSTGRES_URL = os.environ.get(
    "MYSTIC_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("MYSTIC_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _unreachable(url: str, default_port: int) -> str | None:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or default_port
    try:
        with socket.create_connection((host, port), timeout=2):
            return None
    except OSError as exc:
        return f"{host}:{port} not reachable ({exc})"


def _require(service: str, env: str, url: str, default_port: int) -> str:
    reason = _unreachable(url, default_port)
    if reason is None:
        return url
    message = f"needs {service} at {env}: {reason}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message}; under CI=true a missing service fails the run", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """URL of the test PostgreSQL server (SQLAlchemy asyncpg form)."""
    return _require("PostgreSQL", "MYSTIC_TEST_POSTGRES_URL", POSTGRES_URL, 5432)


@pytest.fixture(scope="session")
def redis_url() -> str:
    """URL of the test Redis server."""
    return _require("Redis", "MYSTIC_TEST_REDIS_URL", REDIS_URL, 6379)


def _pg_admin(base_url: str, sql: str) -> None:
    import asyncio

    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(base_url.replace("postgresql+asyncpg", "postgresql"))
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database no other test uses: a SQLite file, or PostgreSQL with its own schema."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'data' / 'mystic.db'}"
        return
    base: str = request.getfixturevalue("postgres_url")
    schema = f"mystic_t_{uuid.uuid4().hex[:12]}"
    _pg_admin(base, f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{base}?search_path={schema}"
    finally:
        _pg_admin(base, f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(scope="module")
def shared_exchange() -> Iterator[SandboxServer]:
    """A sandbox exchange shared by one test module: real time, Binance's default limits.

    Tests that inject faults, spend budget or count requests exactly start their own.
    """
    server = SandboxServer(SandboxConfig(port=0)).start()
    yield server
    server.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Moved:
    """A monotonic clock (seconds) that moves only when told: cache TTLs without sleeping."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@contextlib.asynccontextmanager
async def on_uvicorn(app: ASGIApp, port: int = 0, lifespan: str = "on") -> AsyncIterator[int]:
    """``app`` on a real uvicorn on loopback ``port`` (a free one for 0), stopped after the
    block; the port."""
    sock = bind("127.0.0.1", port)
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            lifespan=lifespan,
            log_config=None,
            access_log=False,
            http="httptools",
            ws="none",
            timeout_graceful_shutdown=2,
        )
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:  # uvicorn has no started event
        if task.done():
            await task
            raise AssertionError("the service did not start")
        await asyncio.sleep(0.01)
    try:
        yield port
    finally:
        server.should_exit = True
        await task
        sock.close()


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
        for _ in range(500):
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
        message = "needs the redis-server binary to start a private Redis"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message}; under CI=true a missing service fails the run", pytrace=False)
        pytest.skip(message)
    server = RedisProcess()
    server.start()
    yield server
    server.stop()


class MysticCli(Protocol):
    def __call__(
        self, env: dict[str, str], *args: str, timeout_s: float = ...
    ) -> subprocess.CompletedProcess[str]: ...


@pytest.fixture(scope="session")
def mystic_cli() -> MysticCli:
    """Run ``python -m mystic_trading ARGS`` as a real subprocess: this environment less
    every MYSTIC_ variable, plus ``env``; output captured as text, any exit status kept."""

    def run(
        env: dict[str, str], *args: str, timeout_s: float = 180
    ) -> subprocess.CompletedProcess[str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith("MYSTIC_")}
        base.update({"COLUMNS": "200", **env})
        return subprocess.run(
            [sys.executable, "-m", "mystic_trading", *args],
            capture_output=True,
            text=True,
            env=base,
            timeout=timeout_s,
            check=False,
        )

    return run
