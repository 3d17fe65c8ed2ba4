"""``python -m mystic_trading.api`` (``mystic serve``) stopped by a signal while a dashboard's
event stream is open: the stream ends at once and the service exits 0, without waiting out
uvicorn's graceful timeout and cancelling the stream with an error."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mystic_trading.api._serve import GRACEFUL_S
from mystic_trading.sandbox import SandboxServer

STREAM = "/api/v1/dashboard/stream"


def _env(exchange: SandboxServer, tmp_path: Path, **settings: str) -> dict[str, str]:
    """This environment less any MYSTIC_ setting, then a store under ``tmp_path``, the
    sandbox and ``settings`` (MYSTIC_ names without the prefix)."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("MYSTIC_")}
    env.update(
        MYSTIC_STORE__URL=f"sqlite+aiosqlite:///{tmp_path / 'mystic.db'}",
        MYSTIC_PROVIDER__BASE_URL=exchange.url,
        MYSTIC_MONITOR__ENABLED="false",
    )
    env.update({f"MYSTIC_{name.upper()}": value for name, value in settings.items()})
    return env


class Service:
    """The service as a process of its own: its URL and everything it wrote to stderr."""

    def __init__(self, env: dict[str, str], workers: int) -> None:
        command = [sys.executable, "-m", "mystic_trading.api", "--port", "0"]
        self.proc = subprocess.Popen(
            [*command, "--workers", str(workers)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)
            found = re.search(r"serving at (http://\S+)", line)
            if found:
                self.url = found.group(1)
                break
        else:
            raise AssertionError("the service did not start:\n" + self.stderr)
        stream = self.proc.stderr
        self._reader = threading.Thread(target=lambda: self.lines.extend(stream), daemon=True)
        self._reader.start()

    @property
    def stderr(self) -> str:
        return "".join(self.lines)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(10)
        if self.proc.stderr is not None:
            self.proc.stderr.close()


@pytest.fixture
def service_of(exchange: SandboxServer, tmp_path: Path) -> Iterator[Any]:
    started: list[Service] = []

    def start(workers: int = 1, **settings: str) -> Service:
        service = Service(_env(exchange, tmp_path, **settings), workers)
        started.append(service)
        return service

    yield start
    for service in started:
        service.close()


def _stop_with_a_stream_open(service: Service, sig: signal.Signals) -> tuple[int, int]:
    """Open a dashboard stream, take its first frame, send ``sig`` and read the stream to
    its end; the frames read and the service's exit code."""
    frames = 0
    with (
        httpx.Client(base_url=service.url, timeout=GRACEFUL_S * 3) as client,
        client.stream("GET", STREAM) as answer,
    ):
        assert answer.status_code == 200
        for line in answer.iter_lines():
            if line.startswith("data: "):
                json.loads(line.removeprefix("data: "))
                frames += 1
                if frames == 1:
                    service.proc.send_signal(sig)
        # The loop ends only when the service ends the chunked answer properly: a stream
        # cut by a cancelled task raises here instead.
    return frames, service.proc.wait(GRACEFUL_S * 6)


def _assert_clean(stderr: str) -> None:
    assert "timeout graceful shutdown exceeded" not in stderr, stderr
    assert "Traceback" not in stderr, stderr
    assert "CancelledError" not in stderr, stderr
    assert not re.search(r"^ERROR", stderr, re.MULTILINE), stderr


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_ends_open_streams_and_the_service_exits_0(
    service_of: Any, sig: signal.Signals
) -> None:
    """One process: the open stream ends when serving begins to stop, so the shutdown does
    not hit uvicorn's graceful timeout (which logs an ERROR and cancels the stream)."""
    service = service_of()
    frames, code = _stop_with_a_stream_open(service, sig)
    assert frames >= 1
    assert code == 0, service.stderr
    service.close()
    _assert_clean(service.stderr)


@pytest.mark.redis
def test_workers_end_their_streams_on_a_signal(service_of: Any, own_redis: Any) -> None:
    """Two workers: the supervisor's SIGTERM reaches the worker holding the stream, which
    ends it at once, and the service exits 0 with nothing cancelled."""
    service = service_of(2, REDIS_URL=own_redis.url)
    frames, code = _stop_with_a_stream_open(service, signal.SIGINT)
    assert frames >= 1
    assert code == 0, service.stderr
    service.close()
    _assert_clean(service.stderr)
