"""A deployment of real processes: three workers (tests/monitor/_worker.py) on one SQLite
store, one Redis of our own (so it can be stopped) and the sandbox exchange, watched and
steered with the real ``mystic`` command line.

Waits are bounded in heartbeats: a process is judged gone once its last beat is three
intervals old, so a status taken after that must show it gone; the level change is measured
where it lands, in the weight the sandbox received.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mystic_trading.config import StoreSettings
from mystic_trading.sandbox import SandboxConfig, SandboxServer
from mystic_trading.store import open_store

pytestmark = [pytest.mark.slow, pytest.mark.redis]

WORKER = Path(__file__).with_name("_worker.py")
HEARTBEAT_S = 0.5
GONE_AFTER = 3 * HEARTBEAT_S
# A worker's first answer needs Python, the imports and the store migrated: on a loaded
# 2-CPU machine three of them starting together take several seconds.
START_TIMEOUT_S = 90.0
# What "a while" is for waits that have no bound of their own (a process moving keeper).
SETTLE_BEATS = 40


class Worker:
    """One worker subprocess: its stdout lines (JSON events) read by a thread, its stderr
    kept in a file."""

    def __init__(self, settings: dict[str, Any], stderr: Path, env: dict[str, str]) -> None:
        self.stderr_path = stderr
        self._stderr = stderr.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKER), json.dumps(settings), "--tasks", "6"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            env=env,
        )
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.events.put(json.loads(line))

    def next(self, event: str, timeout_s: float) -> dict[str, Any]:
        """The next ``event`` line (earlier lines of other kinds are kept in ``seen``)."""
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            try:
                item = self.events.get(timeout=max(0.0, left))
            except queue.Empty:
                raise AssertionError(
                    f"worker {self.proc.pid}: no {event!r} line within {timeout_s:g} s; "
                    f"stderr: {self.stderr_path.read_text()[-2000:]}"
                ) from None
            self.seen.append(item)
            if item["event"] == event:
                return item

    def stop(self) -> int:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write("stop\n")
            self.proc.stdin.close()
        except BrokenPipeError:
            pass  # it has ended already: its exit code says how
        code = self.proc.wait(timeout=60)
        self._close()
        return code

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self._close()

    def _close(self) -> None:
        self._reader.join(timeout=10)  # the pipe is at its end once the process is
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()
        self._stderr.close()


@pytest.fixture
def redis(own_redis: Any) -> Any:
    """A redis-server of our own (tests/conftest.py), stopped and started again mid-run."""
    return own_redis


@pytest.fixture
def exchange() -> Iterator[SandboxServer]:
    server = SandboxServer(SandboxConfig(port=0)).start()
    yield server
    server.stop()


Status = Callable[[], dict[str, Any]]


def by_pid(data: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {p["pid"]: p for p in data["processes"]}


def poll(status: Status, until: Callable[[dict[str, Any]], bool], beats: int) -> dict[str, Any]:
    """Status again and again until ``until`` holds; fail after ``beats`` heartbeats."""
    deadline = time.monotonic() + beats * HEARTBEAT_S
    while True:
        data = status()
        if until(data):
            return data
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {beats} heartbeats: {by_pid(data)}")
        time.sleep(HEARTBEAT_S / 2)


def sandbox_weight(exchange: SandboxServer) -> int:
    total = exchange.stats.snapshot()["total"]
    assert isinstance(total, dict)
    return int(total["weight"])


def audit_at_ms(store_url: str, venue: str) -> int:
    async def read() -> int:
        async with await open_store(StoreSettings(url=store_url)) as store:
            [last] = await store.control.audit(venue, limit=1)
            assert (last.field, last.to_value) == ("level", "conservative")
            return last.at

    return asyncio.run(read())


def test_a_deployment_of_three_processes(
    tmp_path: Path, redis: Any, exchange: SandboxServer, mystic_cli: Any
) -> None:
    """Three workers on one store and one Redis: status shows all three; one killed -9 is
    shown gone within 3 heartbeats; `mystic decrease` holds what the exchange receives to
    the new ceiling from 2 s after the change; with Redis stopped the heartbeats move to the
    store and back when it returns, and no worker fails."""
    store_url = f"sqlite+aiosqlite:///{tmp_path / 'mystic.db'}"
    settings = {
        "store": {"url": store_url},
        "redis_url": redis.url,
        "provider": {"base_url": exchange.url, "read_timeout_s": 5.0, "connect_timeout_s": 2.0},
        "monitor": {"heartbeat_s": HEARTBEAT_S, "interval_s": 1.0},
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("MYSTIC_")}
    cli_env = {
        "MYSTIC_STORE__URL": store_url,
        "MYSTIC_REDIS_URL": redis.url,
        "MYSTIC_PROVIDER__BASE_URL": exchange.url,
    }

    def status() -> dict[str, Any]:
        shown = mystic_cli(cli_env, "status", "--json", timeout_s=60)
        assert shown.returncode == 0, shown.stderr
        data: dict[str, Any] = json.loads(shown.stdout)
        return data

    workers = [Worker(settings, tmp_path / f"worker{i}.err", env) for i in range(3)]
    try:
        ready = [w.next("ready", START_TIMEOUT_S) for w in workers]
        pids = [w.proc.pid for w in workers]
        assert [r["pid"] for r in ready] == pids
        assert {r["level"] for r in ready} == {"moderate"}

        # All three alive, beating into Redis.
        data = poll(
            status,
            lambda d: all(by_pid(d).get(pid, {}).get("alive") for pid in pids),
            SETTLE_BEATS,
        )
        assert data["venue"] == exchange.venue and data["alive"] == 3
        assert {by_pid(data)[pid]["keeper"] for pid in pids} == {"redis"}
        moderate = data["level"]["ceiling_weight_per_s"]

        # kill -9: a status taken once its last beat is 3 intervals old shows it gone.
        killed, alive = workers[0], workers[1:]
        killed_at = time.time()
        killed.kill()
        time.sleep(max(0.0, killed_at + GONE_AFTER + 0.1 - time.time()))
        data = status()
        assert by_pid(data)[killed.proc.pid]["state"] == "gone", by_pid(data)
        poll(status, lambda d: all(by_pid(d)[w.proc.pid]["alive"] for w in alive), SETTLE_BEATS)

        # The two left hold the shared quota at the ceiling (so a lower one must show).
        before = sandbox_weight(exchange)
        time.sleep(4.0)
        rate_before = (sandbox_weight(exchange) - before) / 4.0
        assert rate_before >= 0.6 * moderate, (rate_before, moderate)

        # One step down: from 2 s after the change the exchange receives the new ceiling.
        down = mystic_cli(cli_env, "decrease", "--reason", "deployment test", "--json")
        assert down.returncode == 0, down.stderr
        step = json.loads(down.stdout)
        assert (step["from"], step["to"], step["processes_alive"]) == (
            "moderate",
            "conservative",
            2,
        )
        ceiling = step["ceiling_weight_per_s"]
        changed_at = audit_at_ms(store_url, exchange.venue) / 1000
        time.sleep(max(0.0, changed_at + 2.0 - time.time()))
        start = sandbox_weight(exchange)
        window_s = 6.0
        time.sleep(window_s)
        rate_after = (sandbox_weight(exchange) - start) / window_s
        # 20 % for the adaptive probe's and the window's edges, plus one request of each
        # process in flight at either end (klines: weight 2). The demand still exceeds the
        # new ceiling, so the exchange must also receive most of it: a throttle that stalls
        # after a change is as wrong as one that ignores it.
        assert 0.5 * ceiling <= rate_after <= 1.2 * ceiling + 2 * 2 * 2 / window_s, (
            rate_before,
            rate_after,
            ceiling,
        )
        for worker in alive:
            seen = worker.next("level", 10.0)
            assert (seen["level"], seen["ceiling"]) == ("conservative", ceiling)
            assert seen["at"] - changed_at <= 2.0, seen["at"] - changed_at

        # Redis stopped: the heartbeats move to the store; Redis back: they move back.
        redis.stop()
        data = poll(
            status,
            lambda d: (
                all(by_pid(d)[w.proc.pid]["alive"] for w in alive)
                and {by_pid(d)[w.proc.pid]["keeper"] for w in alive} == {"store"}
            ),
            SETTLE_BEATS,
        )
        assert data["redis"]["available"] is False and data["redis"]["error"]
        redis.start()
        poll(
            status,
            lambda d: (
                all(by_pid(d)[w.proc.pid]["alive"] for w in alive)
                and {by_pid(d)[w.proc.pid]["keeper"] for w in alive} == {"redis"}
            ),
            SETTLE_BEATS,
        )
    finally:
        codes = [w.stop() if w.proc.returncode is None else w.proc.returncode for w in workers]

    # Nothing crashed: each survivor stops cleanly, answered throughout, and printed no
    # traceback; the one killed was killed.
    assert codes == [-signal.SIGKILL, 0, 0]
    for worker in alive:
        stopped = worker.next("stopped", 10.0)
        assert stopped["served"].get("candles", 0) > 0, stopped
        text = worker.stderr_path.read_text()
        assert "Traceback" not in text, text[-3000:]
