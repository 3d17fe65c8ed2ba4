"""The sandbox's public API, its configuration checks and its runnable entry point."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import httpx
import pytest

import mystic_trading.sandbox as sandbox_pkg
from mystic_trading.errors import ConfigError
from mystic_trading.sandbox import SandboxConfig, SandboxServer


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
     ("error_rate", 1.5), ("ban_max_s", 1.0), ("port", 70000), ("admin_token", "short")],
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
        found = re.search(r"url=(http://127\.0\.0\.1:\d+) admin_token=(\S+)", line)
        assert found, line
        assert found.group(2) == "entry-point-token"
        with httpx.Client(base_url=found.group(1)) as c:
            info = c.get("/api/v3/exchangeInfo").json()
        assert info["rateLimits"][0]["limit"] == 77
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()
