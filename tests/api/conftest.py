"""Fixtures of the service tests: the real app on a real uvicorn server on 127.0.0.1, in
front of the sandbox exchange, over a SQLite store; the caches on a clock moved by hand."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette

from mystic_trading.api import create_app
from mystic_trading.api._serve import bind
from mystic_trading.api._state import ApiState
from mystic_trading.config import Settings
from mystic_trading.sandbox import SandboxConfig, SandboxServer


class Moved:
    """A monotonic clock (seconds) that moves only when told: cache TTLs without sleeping."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


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
    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            lifespan="on",
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
        yield Served(f"http://127.0.0.1:{port}", app, clock, exchange)
    finally:
        server.should_exit = True
        await task
        sock.close()


@pytest.fixture
async def served(exchange: SandboxServer, tmp_path: Path) -> AsyncIterator[Served]:
    async with serving(exchange, tmp_path) as running:
        yield running
