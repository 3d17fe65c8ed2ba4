"""Fixtures of the sandbox tests: a real sandbox on a free loopback port, on a manual clock."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest

from mystic_trading.sandbox import ManualClock, SandboxConfig, SandboxServer
from sandbox.support import NOW

StartSandbox = Callable[..., Awaitable[SandboxServer]]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
async def start_sandbox() -> AsyncIterator[StartSandbox]:
    """Start sandboxes with SandboxConfig overrides (port 0); all are stopped at the end."""
    servers: list[SandboxServer] = []

    async def start(**overrides: Any) -> SandboxServer:
        overrides.setdefault("port", 0)
        server = SandboxServer(SandboxConfig(**overrides))
        await server.__aenter__()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.aclose()


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    """A read-only sandbox shared by a module: frozen at NOW, with a budget no test reaches.

    Tests that advance time, change faults or spend budget start their own (start_sandbox).
    """
    server = SandboxServer(
        SandboxConfig(port=0, clock=ManualClock(NOW), weight_limit=10**9)
    ).start()
    yield server
    server.stop()


@pytest.fixture
async def client(sandbox: SandboxServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sandbox.url) as c:
        yield c
