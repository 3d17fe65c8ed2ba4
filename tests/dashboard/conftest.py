"""Fixtures of the dashboard tests: Debian's Chromium (installed with apt-get when it is
missing), driven by Playwright; the service on a real uvicorn in front of the sandbox, as
in tests/api/; and a workload of market-data requests through the served /api/v3/."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Page, async_playwright
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from mystic_trading.api import create_app
from mystic_trading.api._dashboard import DashboardSampler
from mystic_trading.api._state import ApiState
from mystic_trading.config import Settings
from mystic_trading.sandbox import SandboxConfig, SandboxServer

from ..conftest import on_uvicorn

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent / "artifacts"
UNDER_CI = os.environ.get("CI", "").lower() == "true"


def _apt(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run(
        ["apt-get", *args], env=env, capture_output=True, text=True, timeout=900, check=False
    )


def install_chromium() -> str | None:
    """Make sure Debian's Chromium is at /usr/bin/chromium, installing the ``chromium``
    package when it is not (an out-of-date package list is refreshed once and the install
    tried again); None when it is there, else why it is not."""
    if CHROMIUM.exists():
        return None
    if shutil.which("apt-get") is None:
        return f"{CHROMIUM} is missing and there is no apt-get to install Debian's chromium"
    if os.geteuid() != 0:
        return f"{CHROMIUM} is missing and installing the chromium package needs root"
    command = ("install", "-y", "--no-install-recommends", "chromium")
    done = _apt(*command)
    if done.returncode != 0 or not CHROMIUM.exists():
        _apt("update")
        done = _apt(*command)
    if CHROMIUM.exists():
        return None
    tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
    return f"{CHROMIUM} is missing and `apt-get install chromium` failed: {' / '.join(tail)}"


@pytest.fixture(scope="session")
def chromium() -> str:
    """The path of Debian's Chromium, installed if need be; a skip saying why outside CI,
    a failure under CI=true."""
    why = install_chromium()
    if why is not None:
        if UNDER_CI:
            pytest.fail(f"{why}; under CI=true a missing browser fails the run", pytrace=False)
        pytest.skip(why)
    return str(CHROMIUM)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where screenshots go (ignored by git)."""
    ARTIFACTS.mkdir(exist_ok=True)
    ignore = ARTIFACTS / ".gitignore"
    if not ignore.exists():
        ignore.write_text("*\n")
    return ARTIFACTS


async def drive(url: str, stop: asyncio.Event, symbols: tuple[str, ...]) -> int:
    """Ask the served /api/v3/ for tickers and klines until ``stop`` is set; how many
    answers came back (any status: a 429 is part of a workload too)."""
    answered = 0
    async with httpx.AsyncClient(base_url=url, timeout=10.0) as client:
        n = 0
        while not stop.is_set():
            symbol = symbols[n % len(symbols)]
            path = (
                f"/api/v3/ticker/price?symbol={symbol}"
                if n % 3
                else f"/api/v3/klines?symbol={symbol}&interval=1m&limit=50"
            )
            with contextlib.suppress(httpx.HTTPError):
                await client.get(path)
                answered += 1
            n += 1
            await asyncio.sleep(0.02)
    return answered


@contextlib.asynccontextmanager
async def workload(url: str, symbols: tuple[str, ...]) -> AsyncIterator[asyncio.Task[int]]:
    """A background task requesting market data through the service while the block runs."""
    stop = asyncio.Event()
    task = asyncio.create_task(drive(url, stop, symbols))
    try:
        yield task
    finally:
        stop.set()
        await task


# -- the service, with the monitor on and an admin token ------------------------------------

TOKEN = "dashboard-test-token"


@dataclass
class Served:
    """A running service: its URL and app."""

    url: str
    app: Starlette

    @property
    def state(self) -> ApiState:
        state: ApiState = self.app.state.mystic
        return state

    @property
    def sampler(self) -> DashboardSampler:
        sampler: DashboardSampler = self.state.dashboard  # type: ignore[attr-defined]
        return sampler

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=20.0)


def dashboard_settings(exchange: SandboxServer, tmp_path: Path) -> Settings:
    """A store under ``tmp_path``, the sandbox, heartbeats on (so the processes panel shows
    a real process), an admin token."""
    return Settings(
        store={"url": f"sqlite+aiosqlite:///{tmp_path / 'data' / 'mystic.db'}"},
        provider={"base_url": exchange.url, "read_timeout_s": 5.0, "connect_timeout_s": 1.0},
        throttle={"max_retries": 0, "default_deadline_s": 5.0},
        monitor={"enabled": True, "heartbeat_s": 1.0},
        api={"admin_token": TOKEN},
    )


@contextlib.asynccontextmanager
async def serving(
    settings: Settings, clock: Callable[[], float] = time.monotonic, port: int = 0
) -> AsyncIterator[Served]:
    """``create_app(settings)`` on a real uvicorn on loopback ``port`` (a free one for 0)."""
    app = create_app(settings, clock=clock)
    async with on_uvicorn(app, port) as port:
        served = Served(f"http://127.0.0.1:{port}", app)
        try:
            yield served
        finally:
            await served.sampler.aclose()  # ends the open streams, as `mystic serve` does


async def _busy(scope: Scope, receive: Receive, send: Send) -> None:
    answer = Response(b'{"code":-1008,"msg":"busy"}', 503, {"Retry-After": "1"})
    await answer(scope, receive, send)


@contextlib.asynccontextmanager
async def refusing(port: int) -> AsyncIterator[None]:
    """A server on ``port`` answering every request 503, as a proxy does while the service
    behind it restarts (or the service's guard when it sheds load)."""
    async with on_uvicorn(_busy, port, lifespan="off"):
        yield


@pytest.fixture
def exchange() -> Iterator[SandboxServer]:
    server = SandboxServer(SandboxConfig(port=0)).start()
    yield server
    server.stop()


@pytest.fixture
async def served(exchange: SandboxServer, tmp_path: Path) -> AsyncIterator[Served]:
    async with serving(dashboard_settings(exchange, tmp_path)) as running:
        yield running


@contextlib.asynccontextmanager
async def browser_page(chromium: str) -> AsyncIterator[tuple[Page, list[str]]]:
    """A headless Chromium page and the console errors and page errors it has logged."""
    errors: list[str] = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=chromium, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 1000})
            page.on(
                "console",
                lambda msg: errors.append(f"console: {msg.text}") if msg.type == "error" else None,
            )
            page.on("pageerror", lambda exc: errors.append(f"page: {exc}"))
            yield page, errors
        finally:
            await browser.close()
