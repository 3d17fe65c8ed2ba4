"""The sandbox's public API, its configuration checks and its runnable entry point."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

import mystic_trading.sandbox as sandbox_pkg
from mystic_trading.errors import ConfigError
from mystic_trading.sandbox import SYMBOLS, VENUE_HEADER, Market, SandboxConfig, SandboxServer
from sandbox.conftest import StartSandbox


def test_exports_are_curated_and_sorted() -> None:
    """The package exports its public names, sorted as ruff's RUF022 sorts them, all importable."""
    names = sandbox_pkg.__all__
    assert names == sorted(names, key=lambda n: (not n.isupper(), not n[0].isupper(), n))
    assert {"Market", "SandboxConfig", "SandboxServer", "create_app", "run", "ManualClock"} <= set(
        names
    )
    assert all(hasattr(sandbox_pkg, n) for n in names)
    assert not [n for n in names if n.startswith("_")]


@pytest.mark.parametrize(
    ("setting", "value"),
    [("host", "0.0.0.0"), ("host", "192.168.1.4"), ("weight_limit", 0), ("window_s", 0),
     ("error_rate", 1.5), ("ban_max_s", 1.0), ("port", 70000), ("admin_token", "short"),
     ("clock_skew_ms", 1.5), ("clock_skew_ms", 10**13), ("aggregation_lag_ms", -1)],
)  # fmt: skip
def test_invalid_settings_are_refused(setting: str, value: object) -> None:
    """A bad setting raises ConfigError naming it; nothing binds a non-loopback address."""
    with pytest.raises(ConfigError) as caught:
        SandboxConfig(**{setting: value})  # type: ignore[arg-type]
    assert caught.value.setting == setting


def test_remote_host_needs_explicit_opt_in() -> None:
    """A non-loopback host is accepted only with allow_remote=True."""
    assert SandboxConfig(host="0.0.0.0", allow_remote=True).host == "0.0.0.0"
    assert SandboxConfig().host == "127.0.0.1" and SandboxConfig(host="::1").host == "::1"


async def test_server_binds_loopback_free_port_and_stops() -> None:
    """port 0 picks a free loopback port; after the context the port refuses connections."""
    async with SandboxServer(SandboxConfig(port=0)) as sb:
        assert sb.url.startswith("http://127.0.0.1:") and sb.port > 0
        async with httpx.AsyncClient(base_url=sb.url) as c:
            assert (await c.get("/api/v3/ping")).json() == {}
        url = sb.url
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient(base_url=url) as c:
            await c.get("/api/v3/ping", timeout=1)


def test_module_entry_point_serves_until_interrupted() -> None:
    """`python -m mystic_trading.sandbox --port 0` serves, reports its URL, exits 0 on SIGINT."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "mystic_trading.sandbox", "--port", "0", "--seed", "5",
         "--weight-limit", "77", "--admin-token", "entry-point-token"],
        stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        found = re.search(r"url=(http://127\.0\.0\.1:\d+) admin_token=(\S+) venue=(\S+)", line)
        assert found, line
        assert found.group(2) == "entry-point-token"
        with httpx.Client(base_url=found.group(1)) as c:
            answer = c.get("/api/v3/exchangeInfo")
        assert answer.json()["rateLimits"][0]["limit"] == 77
        assert answer.headers[VENUE_HEADER] == found.group(3) == Market(5).venue
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


def _busy_port() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


@pytest.mark.parametrize("command", [["mystic_trading", "sandbox"], ["mystic_trading.sandbox"]])
def test_busy_port_is_one_clear_line_and_exit_2(command: list[str]) -> None:
    """`mystic sandbox` (and `python -m mystic_trading.sandbox`) on a port in use prints one
    line naming the port and --port, and exits 2, without a traceback."""
    with _busy_port() as busy:
        port = busy.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", *command, "--port", str(port)],
            capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "200"},
        )  # fmt: skip
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert str(port) in lines[0] and "already in use" in lines[0] and "--port" in lines[0]


async def test_server_on_a_busy_port_raises_config_error() -> None:
    """SandboxServer.start on a port in use raises ConfigError on the port setting."""
    with _busy_port() as busy:
        port = busy.getsockname()[1]
        with pytest.raises(ConfigError) as caught:
            await SandboxServer(SandboxConfig(port=port)).__aenter__()
    assert (caught.value.setting, caught.value.value) == ("port", port)


def test_mystic_sandbox_prints_its_venue_and_takes_clock_flags() -> None:
    """`mystic sandbox --clock-skew-ms --aggregation-lag-ms` serves on the skewed clock and its
    banner names the venue its answers declare."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "mystic_trading", "sandbox", "--port", "0", "--seed", "9",
         "--clock-skew-ms", "-3600000", "--aggregation-lag-ms", "250"],
        stderr=subprocess.PIPE, text=True, env={**os.environ, "COLUMNS": "300"},
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        url = venue = ""
        for line in proc.stderr:
            if "ready at" in line:
                url = line.split("ready at", 1)[1].strip()
            if "venue:" in line:
                venue = line.split()[1]
                break
        with httpx.Client(base_url=url) as c:
            answer = c.get("/api/v3/time")
            stats = c.get("/sandbox/stats").json()
        here = time.time_ns() // 1_000_000
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stderr is not None:
            proc.stderr.close()
    assert venue == answer.headers[VENUE_HEADER] == stats["venue"] == Market(9).venue
    assert stats["clock"]["clock_skew_ms"] == -3_600_000
    assert stats["clock"]["aggregation_lag_ms"] == 250
    # The wall clock only bounds the skewed one loosely: an hour behind, within a minute.
    assert abs(here - 3_600_000 - answer.json()["serverTime"]) < 60_000


async def test_venue_is_declared_and_depends_only_on_the_market(
    start_sandbox: StartSandbox,
) -> None:
    """Every /api/v3 answer declares the venue; the same seed is the same venue whatever the
    port, limits, latency or clock; another seed is another venue."""
    a = await start_sandbox(seed=1)
    b = await start_sandbox(seed=1, weight_limit=7, latency_ms=1, clock_skew_ms=5_000)
    other = await start_sandbox(seed=2)
    assert re.fullmatch(r"sandbox-s1-[0-9a-f]{8}", a.venue)
    assert a.venue == b.venue != other.venue
    assert other.venue.startswith("sandbox-s2-")
    async with httpx.AsyncClient(base_url=a.url) as c:
        answers = [
            await c.get("/api/v3/ping"),
            await c.get("/api/v3/klines", params={"symbol": "NOPE", "interval": "1m"}),
            await c.get("/api/v3/nothing-here"),
        ]
        stats = (await c.get("/sandbox/stats")).json()
    assert [r.headers[VENUE_HEADER] for r in answers] == [a.venue] * 3
    assert stats["venue"] == a.venue
    async with httpx.AsyncClient(base_url=other.url) as c:
        assert (await c.get("/api/v3/ping")).headers[VENUE_HEADER] == other.venue


def test_venue_is_stable_across_processes_and_follows_the_market() -> None:
    """The venue hash is sha256 of the market, not Python's hash: another interpreter with
    another hash seed computes the same; other symbols or downtime give another."""
    code = "from mystic_trading.sandbox import Market; print(Market(3).venue)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60,
        env={**os.environ, "PYTHONHASHSEED": "777"},
    )  # fmt: skip
    market = Market(3)
    assert out.stdout.strip() == market.venue
    assert Market(3, symbols=SYMBOLS[:10]).venue != market.venue
    assert Market(3, gaps=()).venue != market.venue
