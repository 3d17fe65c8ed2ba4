"""The Throttler against the real sandbox exchange over real sockets (and real Redis)."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mystic_trading.config import ThrottleSettings
from mystic_trading.errors import Banned, UpstreamUnavailable
from mystic_trading.sandbox import SandboxConfig, SandboxServer
from mystic_trading.throttle import (
    Budget,
    JsonFileControlStore,
    Priority,
    RedisQuota,
    Throttler,
    binance_weight,
)

UNLIMITED = ThrottleSettings(level="unlimited", safety_margin=0.1, max_retries=3)
CALLS = [
    ("/api/v3/ping", {}),
    ("/api/v3/klines", {"symbol": "BTCUSDT", "interval": "1m", "limit": 5}),
    ("/api/v3/depth", {"symbol": "BTCUSDT", "limit": 10}),
    ("/api/v3/depth", {"symbol": "BTCUSDT", "limit": 200}),
    ("/api/v3/ticker/price", {}),
]


@pytest.fixture
async def sandbox() -> AsyncIterator[SandboxServer]:
    """A sandbox with a small budget in a short window."""
    async with SandboxServer(SandboxConfig(port=0, weight_limit=300, window_s=1)) as server:
        yield server


async def _hammer(throttler: Throttler, client: httpx.AsyncClient, seconds: float) -> int:
    """16 callers sending mixed weights through ``call`` for ``seconds``; calls made."""
    stop = time.monotonic() + seconds
    done = 0

    async def caller(seed: int) -> None:
        nonlocal done
        rng = random.Random(seed)
        while time.monotonic() < stop:
            path, params = rng.choice(CALLS)

            def send(path: str = path, params: dict[str, object] = params) -> Any:
                return client.get(path, params=params)

            await throttler.call(path, binance_weight(path, params), send)
            done += 1

    await asyncio.gather(*(caller(i) for i in range(16)))
    return done


async def _window_start() -> None:
    """Wait for the next one-second window to begin (alignment, not timing)."""
    await asyncio.sleep(1 - time.time() % 1 + 0.01)


def _budget(server: SandboxServer) -> Budget:
    return Budget(limit=server.config.weight_limit, window_s=server.config.window_s, max_weight=25)


async def test_no_429_under_saturation(sandbox: SandboxServer) -> None:
    """16 callers asking for far more than the budget never see a 429; they wait instead."""
    async with (
        httpx.AsyncClient(base_url=sandbox.url) as client,
        Throttler("sandbox", _budget(sandbox), settings=UNLIMITED) as throttler,
    ):
        await _hammer(throttler, client, 2.5)
        stats = throttler.stats()
    assert sandbox.stats.total.http_429 == 0
    assert stats["n429"] == 0
    assert stats["wait_ms"]["p99"] > 0


async def test_foreign_usage_from_the_header_is_counted(sandbox: SandboxServer) -> None:
    """Weight spent by another client on the same IP is learnt from the header: no 429."""
    async with (
        httpx.AsyncClient(base_url=sandbox.url) as client,
        Throttler("sandbox", _budget(sandbox), settings=UNLIMITED) as throttler,
    ):
        await _window_start()
        for _ in range(10):
            await client.get("/api/v3/depth", params={"symbol": "BTCUSDT", "limit": 200})
        await _hammer(throttler, client, 1.5)
    assert sandbox.stats.total.http_429 == 0


async def test_retry_after_is_honoured_across_processes(
    sandbox: SandboxServer, redis_url: str
) -> None:
    """After a 429 no process sharing the Redis quota sends before Retry-After has passed."""
    sent: list[float] = []

    async def hook(request: httpx.Request) -> None:
        sent.append(time.time())

    prefix = f"test:{uuid.uuid4().hex}"
    async with (
        httpx.AsyncClient(base_url=sandbox.url, event_hooks={"request": [hook]}) as client,
        Throttler(
            "sandbox",
            _budget(sandbox),
            settings=UNLIMITED,
            quota=RedisQuota(redis_url, prefix=prefix),
        ) as first,
        Throttler(
            "sandbox",
            _budget(sandbox),
            settings=UNLIMITED,
            quota=RedisQuota(redis_url, prefix=prefix),
        ) as second,
    ):
        await _window_start()
        async with httpx.AsyncClient(base_url=sandbox.url) as foreign:
            for _ in range(12):  # 300 of 300 spent by a client Mystic does not manage
                await foreign.get("/api/v3/depth", params={"symbol": "BTCUSDT", "limit": 200})
        sent.clear()
        response = await first.call("/api/v3/ping", 1, lambda: client.get("/api/v3/ping"))
        assert response.status_code == 200
        first_429 = sent[0]
        pause = first.stats()["endpoints"]["/api/v3/ping"]
        assert pause["n429"] == 1
        await second.call("/api/v3/ping", 1, lambda: client.get("/api/v3/ping"))
    later = sent[1:]
    assert later
    # Retry-After is whole seconds to the window's end: at least 1 s after the 429.
    assert all(t >= first_429 + 1.0 - 0.01 for t in later)
    assert sandbox.stats.total.http_429 == 1
    assert sandbox.stats.total.http_418 == 0


async def test_ban_survives_a_restart(tmp_path: Path) -> None:
    """A 418 stops every call; a restarted throttler reading the same store sends nothing."""
    config = SandboxConfig(port=0, weight_limit=50, window_s=1, ban_after=1, ban_base_s=30)
    async with SandboxServer(config) as server, httpx.AsyncClient(base_url=server.url) as client:
        for _ in range(3):  # a careless client earns the IP a ban
            await client.get("/api/v3/depth", params={"symbol": "BTCUSDT", "limit": 200})
        store = JsonFileControlStore(tmp_path / "control.json")
        budget = Budget(limit=50, window_s=1, max_weight=10)
        async with Throttler("sandbox", budget, control=store) as first:
            with pytest.raises(Banned) as info:
                await first.call("/api/v3/ping", 1, lambda: client.get("/api/v3/ping"))
            assert info.value.until > time.time() * 1000
        before = server.stats.total.requests
        restarted = Throttler(
            "sandbox", budget, control=JsonFileControlStore(tmp_path / "control.json")
        )
        async with restarted:
            with pytest.raises(Banned) as again:
                await restarted.call("/api/v3/ping", 1, lambda: client.get("/api/v3/ping"))
        assert again.value.until == info.value.until
        assert server.stats.total.requests == before


async def test_5xx_retried_within_budget_4xx_never(sandbox: SandboxServer) -> None:
    """5xx is retried (then UpstreamUnavailable); a 400 is returned at once, never retried."""
    async with (
        httpx.AsyncClient(base_url=sandbox.url) as client,
        Throttler("sandbox", _budget(sandbox), settings=UNLIMITED) as throttler,
    ):
        bad = await throttler.call(
            "/api/v3/klines",
            2,
            lambda: client.get("/api/v3/klines", params={"symbol": "NOPE", "interval": "1m"}),
        )
        assert bad.status_code == 400
        assert sandbox.stats.total.requests == 1
        sandbox.set_error_rate(1.0)
        with pytest.raises(UpstreamUnavailable) as info:
            await throttler.call("/api/v3/ping", 1, lambda: client.get("/api/v3/ping"))
        assert info.value.status in (500, 503)
        stats = throttler.stats()
    # The retry budget's reserve (2) allows two retries of this lone request, not three.
    assert stats["retries"] == 2
    assert sandbox.stats.total.requests == 1 + 3


async def test_queued_callers_get_banned_at_once(sandbox: SandboxServer) -> None:
    """When a 418 arrives every queued background caller fails with Banned, none is sent."""
    throttler = Throttler(
        "sandbox",
        Budget(limit=300, window_s=1, max_weight=25),
        settings=ThrottleSettings(level="conservative"),
    )
    async with httpx.AsyncClient(base_url=sandbox.url) as client, throttler:

        async def background() -> None:
            await throttler.call(
                "/api/v3/depth",
                25,
                lambda: client.get("/api/v3/depth", params={"symbol": "BTCUSDT", "limit": 200}),
                priority=Priority.BACKGROUND,
            )

        tasks = [asyncio.create_task(background()) for _ in range(5)]
        await asyncio.sleep(0)
        sent_before = sandbox.stats.total.requests
        async with throttler.slot("/api/v3/ping", 1) as slot:
            slot.record(418, {"Retry-After": "60"})
        results = await asyncio.gather(*tasks, return_exceptions=True)
    banned = [r for r in results if isinstance(r, Banned)]
    assert len(banned) >= 4
    assert sandbox.stats.total.requests <= sent_before + 1


@pytest.mark.redis
async def test_redis_lost_and_regained_mid_run(sandbox: SandboxServer, own_redis: Any) -> None:
    """Calls go on through a Redis outage (local share, said in stats), then back on Redis."""
    quota = RedisQuota(own_redis.url, prefix="t", expected_processes=2, reconnect_s=0.2)
    modes: set[str] = set()
    async with (
        httpx.AsyncClient(base_url=sandbox.url) as client,
        Throttler("sandbox", _budget(sandbox), settings=UNLIMITED, quota=quota) as throttler,
    ):
        await _hammer(throttler, client, 0.5)
        modes.add(throttler.stats()["quota"]["mode"])
        own_redis.stop()
        await _hammer(throttler, client, 0.8)
        modes.add(throttler.stats()["quota"]["mode"])
        own_redis.start()
        await _hammer(throttler, client, 0.8)
        final = throttler.stats()["quota"]["mode"]
    assert modes == {"redis", "local-fallback"}
    assert final == "redis"
    assert sandbox.stats.total.http_429 == 0
