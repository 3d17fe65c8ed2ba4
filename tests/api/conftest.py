"""Fixtures of the service tests: the real app on a real uvicorn server on 127.0.0.1, in
front of the sandbox exchange, over a SQLite store; the caches on a clock moved by hand."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from mystic_trading.api import create_app
from mystic_trading.api._state import ApiState
from mystic_trading.config import Settings
from mystic_trading.sandbox import SandboxConfig, SandboxServer

from ..conftest import Moved, on_uvicorn


@pytest.fixture
def exchange() -> Iterator[SandboxServer]:
    """A sandbox of its own for each test (faults and counters are per test)."""
    server = SandboxServer(SandboxConfig(port=0, ban_after=1)).start()
    yield server
    server.stop()


def make_settings(exchange: SandboxServer, tmp_path: Path, **extra: Any) -> Settings:
    data: dict[str, Any] = {
        "store": {"url": f"sqlite+aiosqlite:///{tmp_path / 'data' / 'mystic.db'}"},
        "provider": {"base_url": exchange.url, "read_timeout_s": 5.0, "connect_timeout_s": 1.0},
        "throttle": {"max_retries": 0, "default_deadline_s": 5.0},
        "monitor": {"enabled": False},
    }
    for key, value in extra.items():
        data.setdefault(key, {}).update(value)
    return Settings(**data)


@dataclass
class Served:
    """A running service: its URL, app, shared state and cache clock."""

    url: str
    app: Starlette
    clock: Moved
    exchange: SandboxServer

    @property
    def state(self) -> ApiState:
        state: ApiState = self.app.state.mystic
        return state

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=20.0)


@contextlib.asynccontextmanager
async def serving(
    exchange: SandboxServer, tmp_path: Path, clock: Moved | None = None, **app_args: Any
) -> AsyncIterator[Served]:
    clock = clock or Moved()
    app = create_app(make_settings(exchange, tmp_path), clock=clock, **app_args)
    async with on_uvicorn(app) as port:
        yield Served(f"http://127.0.0.1:{port}", app, clock, exchange)


@pytest.fixture
async def served(exchange: SandboxServer, tmp_path: Path) -> AsyncIterator[Served]:
    async with serving(exchange, tmp_path) as running:
        yield running


# -- several workers: `mystic serve --workers N` as a process of its own ---------------------


@pytest.fixture
def private_redis_url(own_redis: Any) -> str:
    """A redis-server of our own (tests/conftest.py): workers' keys never touch the shared
    Redis."""
    return str(own_redis.url)


def service_env(
    exchange_url: str, tmp_path: Path, redis_url: str, **settings: str
) -> dict[str, str]:
    """The environment of a service process: this one's without any MYSTIC_ setting, then
    a store under ``tmp_path``, the exchange, Redis and ``settings`` (MYSTIC_ names without
    the prefix). TMPDIR is ``tmp_path/tmp``, so the run's metrics directory shows there."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("MYSTIC_")}
    (tmp_path / "tmp").mkdir(exist_ok=True)
    env.update(
        TMPDIR=str(tmp_path / "tmp"),
        MYSTIC_STORE__URL=f"sqlite+aiosqlite:///{tmp_path / 'mystic.db'}",
        MYSTIC_PROVIDER__BASE_URL=exchange_url,
        MYSTIC_REDIS_URL=redis_url,
        MYSTIC_MONITOR__ENABLED="false",
    )
    env.update({f"MYSTIC_{name.upper()}": value for name, value in settings.items()})
    return env


@dataclass
class ServiceProcess:
    """``python -m mystic_trading.api`` running: its process, URL and what it has written
    to stderr so far."""

    proc: subprocess.Popen[str]
    url: str
    output: list[str]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        """Signal the supervisor and wait for it; its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout)


@contextlib.contextmanager
def service_process(env: dict[str, str], workers: int) -> Iterator[ServiceProcess]:
    """The service on a free port with ``workers`` workers, stopped (SIGTERM) afterwards if
    the test did not stop it. Its stderr is read until it names its URL."""
    command = [sys.executable, "-m", "mystic_trading.api", "--port", "0"]
    proc = subprocess.Popen(
        [*command, "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    reader: threading.Thread | None = None
    try:
        assert proc.stderr is not None
        seen: list[str] = []
        for line in proc.stderr:
            seen.append(line)
            found = re.search(r"serving at (http://\S+)", line)
            if found:
                break
        else:
            raise AssertionError("the service did not start:\n" + "".join(seen))
        service = ServiceProcess(proc, found.group(1), seen)
        stream = proc.stderr
        reader = threading.Thread(target=lambda: seen.extend(stream), daemon=True)
        reader.start()
        yield service
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if reader is not None:
            reader.join(10)
        if proc.stderr is not None:
            proc.stderr.close()
