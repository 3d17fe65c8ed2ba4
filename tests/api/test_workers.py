"""``mystic serve --workers 2``: two worker processes over one Redis and one store, in front
of the sandbox exchange. One cache, one budget, one /metrics, and a graceful stop."""

from __future__ import annotations

import asyncio
import itertools
import signal
import sqlite3
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from mystic_trading.sandbox import SandboxConfig, SandboxServer
from mystic_trading.throttle import Level

from .conftest import ServiceProcess, service_env, service_process

pytestmark = pytest.mark.redis
MINUTE_MS = 60_000
TICKER = "/api/v3/ticker/price"


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """One /metrics scrape on a connection of its own, as samples keyed by name and labels."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def worker_samples(url: str) -> dict[str, float]:
    """``mystic_worker_upstream_requests`` by pid: one per live worker that has started."""
    return {
        dict(labels)["pid"]: value
        for (name, labels), value in scrape(url).items()
        if name == "mystic_worker_upstream_requests"
    }


def wait_for_workers(service: ServiceProcess, workers: int = 2) -> None:
    """Until every worker has started and written its figures (bounded)."""
    deadline = time.monotonic() + 60
    while len(worker_samples(service.url)) < workers:
        assert service.proc.poll() is None, "the service stopped"
        assert time.monotonic() < deadline, "the workers did not all start"
        time.sleep(0.2)


def layer_of_fresh_connection(url: str) -> str:
    """A ticker asked on a new connection (the kernel hands it to either worker)."""
    answer = httpx.get(f"{url}{TICKER}", params={"symbol": "BTCUSDT"}, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.headers["x-mystic-layer"]


def test_a_cached_answer_is_served_by_the_other_worker_and_counted_once(
    exchange: SandboxServer, tmp_path: Path, private_redis_url: str
) -> None:
    """A ticker fetched through one worker is answered by the other from Redis, one
    upstream call for both; one scrape, whichever worker answers it, counts every request."""
    env = service_env(exchange.url, tmp_path, private_redis_url, CACHE__TICKER_TTL_S="600")
    with service_process(env, workers=2) as service:
        wait_for_workers(service)
        layers = [layer_of_fresh_connection(service.url)]
        assert layers == ["upstream"]
        for _ in range(300):  # each on a new connection, until the other worker answers
            layers.append(layer_of_fresh_connection(service.url))
            if layers[-1] == "redis":
                break
        assert "redis" in layers, "every request went to the worker that fetched it"
        assert exchange.stats.endpoint("ticker/24hr").requests == 1  # ticker/price is read from it
        assert set(layers) <= {"upstream", "memory", "redis"}

        first, second = scrape(service.url), scrape(service.url)
        ticker = (("route", TICKER), ("status_class", "2xx"))
        assert first[("mystic_http_requests_total", ticker)] == len(layers)
        assert second[("mystic_http_requests_total", ticker)] == len(layers)
        for layer in ("upstream", "redis"):
            key = (("layer", layer), ("route", TICKER), ("stale", "false"))
            assert first[("mystic_http_answers_total", key)] == layers.count(layer)
        count = ("mystic_http_request_duration_seconds_count", (("route", TICKER),))
        assert first[count] == len(layers)

        # Each worker copies its upstream figures within a second: their sum is the
        # deployment's, and every worker that started shows in the per-worker gauge.
        deadline = time.monotonic() + 30
        while True:
            samples = scrape(service.url)
            per_worker = worker_samples(service.url)
            total = samples[("mystic_upstream_requests_total", ())]
            if total == sum(per_worker.values()) and total >= 2:  # exchangeInfo, the ticker
                break
            assert time.monotonic() < deadline, (total, per_worker)
            time.sleep(0.2)
        assert len(per_worker) == 2
        assert service.stop() == 0


def test_two_workers_spend_one_budget(tmp_path: Path, private_redis_url: str) -> None:
    """Under more demand than the level allows, two workers together send what one budget
    allows (two budgets would send about twice as much), and the exchange refuses nothing."""
    config = SandboxConfig(port=0, weight_limit=100, window_s=1, ban_after=1)
    exchange = SandboxServer(config).start()
    try:
        level = Level.CONSERVATIVE
        env = service_env(
            exchange.url,
            tmp_path,
            private_redis_url,
            THROTTLE__LEVEL=level.value,
            THROTTLE__DEFAULT_DEADLINE_S="2",
            THROTTLE__MAX_RETRIES="0",
        )
        with service_process(env, workers=2) as service:
            wait_for_workers(service)
            before = exchange.stats.endpoint("klines").weight
            started = time.monotonic()
            answers = asyncio.run(_demand(service.url, exchange.clock_ms(), seconds=10))
            elapsed = time.monotonic() - started
            sent = exchange.stats.endpoint("klines").weight - before
            per_worker = worker_samples(service.url)
            assert service.stop() == 0
    finally:
        exchange.stop()

    assert 200 in answers and (429 in answers or 503 in answers), answers  # demand > budget
    assert all(s in (200, 429, 503) for s in answers), answers
    total = exchange.stats.snapshot()["total"]
    assert isinstance(total, dict)
    assert total["http_429"] == 0 and total["http_418"] == 0
    assert len(per_worker) == 2 and all(v > 0 for v in per_worker.values()), per_worker
    # The throttler's ceiling at this level (weight 2 a request) and its burst for a budget
    # this small (a quarter of the window's limit less the 10 % margin), with a fifth more
    # for grants made ahead of their time.
    assert level.requests_per_s is not None
    ceiling = level.requests_per_s * 2
    burst = config.weight_limit * 0.9 / 4
    assert sent <= 1.2 * (ceiling * elapsed + burst), (sent, elapsed)


async def _demand(url: str, now_ms: int, seconds: float) -> list[int]:
    """Sixteen clients asking, for ``seconds``, windows nobody asked before (each one an
    upstream call of weight 2), over connections spread across the workers."""
    start = now_ms - 30 * 86_400_000
    numbers = itertools.count()
    statuses: list[int] = []
    stop_at = time.monotonic() + seconds

    async def client() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=30) as c:
            while time.monotonic() < stop_at:
                params = {
                    "symbol": "BTCUSDT",
                    "interval": "1m",
                    "startTime": start + next(numbers) * MINUTE_MS * 60,
                    "limit": 1,
                }
                statuses.append((await c.get("/api/v3/klines", params=params)).status_code)

    await asyncio.gather(*(client() for _ in range(16)))
    return statuses


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_the_workers_after_writing_answered_candles(
    exchange: SandboxServer, tmp_path: Path, private_redis_url: str, sig: signal.Signals
) -> None:
    """SIGINT or SIGTERM: the supervisor exits 0 once every worker has written the candles
    it answered, and the run's metrics directory is gone."""
    env = service_env(exchange.url, tmp_path, private_redis_url)
    start = exchange.clock_ms() - 10 * 86_400_000
    start -= start % MINUTE_MS
    with service_process(env, workers=2) as service:
        wait_for_workers(service)
        assert [p.name[:15] for p in (tmp_path / "tmp").iterdir()] == ["mystic-metrics-"]
        params = {"symbol": "ETHUSDT", "interval": "1m", "startTime": start, "limit": 1000}
        answer = httpx.get(f"{service.url}/api/v3/klines", params=params, timeout=30)
        assert answer.status_code == 200, answer.text
        rows = answer.json()
        assert len(rows) == 1000
        assert service.stop(sig) == 0

    with sqlite3.connect(tmp_path / "mystic.db") as db:
        stored = db.execute(
            "SELECT count(*) FROM candles WHERE symbol = ? AND interval = ? "
            "AND open_time >= ? AND open_time <= ?",
            ("ETH/USDT", "1m", rows[0][0], rows[-1][0]),  # stored by its unified name
        ).fetchone()[0]
    assert stored == 1000
    assert list((tmp_path / "tmp").iterdir()) == []


def test_a_worker_that_cannot_start_stops_the_service_with_an_error(
    exchange: SandboxServer, tmp_path: Path, private_redis_url: str
) -> None:
    """A store that cannot be opened: each worker fails at start, the supervisor stops and
    exits 1 naming the failure, instead of serving nothing."""
    (tmp_path / "a-file").write_text("not a directory")
    env = service_env(
        exchange.url,
        tmp_path,
        private_redis_url,
        STORE__URL=f"sqlite+aiosqlite:///{tmp_path / 'a-file' / 'mystic.db'}",
    )
    with service_process(env, workers=2) as service:
        code = service.proc.wait(60)
    assert code == 1
    output = "".join(service.output)
    assert "could not start its app" in output
    assert "mystic.db" in output  # the store's own error, logged by the worker
