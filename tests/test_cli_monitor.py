"""`mystic monitor` on a real store holding real heartbeats: frames built from successive
`Controller.status()` answers (rates as differences between two heartbeats, since start in
the first frame), `--once` and `--once --json` through the CLI, bad options refused, and the
live view ended by Ctrl-C (SIGINT) with exit code 0 and no traceback, as a real subprocess
on a terminal (a pty) and on a pipe.

The command is registered on the root app by `cli/_app.py`; until it is, these tests run it
on an app with the root's own callback (`cli_app` below)."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from mystic_trading.cli import _app, monitor_cmd
from mystic_trading.cli.monitor_frame import LAYERS, FrameBuilder
from mystic_trading.config import Settings, StoreSettings
from mystic_trading.monitor import Controller, HeartbeatPublisher
from mystic_trading.store import open_store

VENUE = "sandbox-s0-monitor"
HEARTBEAT_S = 60.0  # alive for three minutes after a beat: no test depends on timing

# Run `mystic` with the monitor command registered, as `cli/_app.py` will.
MAIN = (
    "from mystic_trading.cli import _app, monitor_cmd\n"
    "if 'monitor' not in [c.name for c in _app.app.registered_commands]:\n"
    "    _app.app.command('monitor')(monitor_cmd.monitor)\n"
    "_app.main()\n"
)


class Clock:
    """A monotonic clock for the publishers: each one's uptime moves only when told."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def figures(requests: int, hits: dict[str, int], **extra: Any) -> dict[str, Any]:
    return {
        "requests": requests,
        "hits": hits,
        "upstream_calls": hits["upstream"],
        "upstream_weight": 2 * hits["upstream"],
        "n429": 0,
        "n418": 0,
        **extra,
    }


class Bot:
    """One process beating into the store: its figures and its uptime, set by the test."""

    def __init__(self, url: str, host: str, pid: int) -> None:
        self.url = url
        self.clock = Clock()
        self.host, self.pid = host, pid
        self.id = ""

    async def beat(self, uptime_s: float, figures: dict[str, Any]) -> None:
        async with await open_store(StoreSettings(url=self.url)) as store:
            publisher = HeartbeatPublisher(
                store,
                lambda: figures,
                venue=VENUE,
                heartbeat_s=HEARTBEAT_S,
                host=self.host,
                pid=self.pid,
                monotonic=self.clock,
                process_id=self.id or None,
            )
            publisher.seq = int(uptime_s)  # later beats carry a higher count, as a process's
            self.clock.now += uptime_s  # the publisher was born at the clock's start
            await publisher.beat_once()
            self.id = publisher.process_id
            self.clock.now -= uptime_s


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "t.db"


@pytest.fixture
def settings(store_url: str) -> Settings:
    return Settings(store={"url": store_url}, provider={"base_url": "http://127.0.0.1:9"})


def env_of(db: Path, tmp_path: Path) -> dict[str, str | None]:
    """This test's settings only: every other MYSTIC_ variable unset."""
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("MYSTIC_")}
    env.update(
        {
            "MYSTIC_STORE__URL": f"sqlite+aiosqlite:///{db}",
            "MYSTIC_PROVIDER__BASE_URL": "http://127.0.0.1:9",
            "XDG_DATA_HOME": str(tmp_path / "xdg"),
            "COLUMNS": "200",
        }
    )
    return env


@pytest.fixture
def cli_app() -> typer.Typer:
    """The root app once `monitor` is registered there; until then an app with the root's
    callback (the settings from --config and the environment) and the command."""
    if any(c.name == "monitor" for c in _app.app.registered_commands):
        return _app.app
    local = typer.Typer()
    local.callback()(_app._root)
    local.command("monitor")(monitor_cmd.monitor)
    return local


# -- frames from successive status answers ----------------------------------------------


async def test_rates_are_differences_between_two_heartbeats(
    store_url: str, settings: Settings
) -> None:
    """First frame: rates since each process started (its counters over its uptime). After
    a new beat: the counters' differences over the uptime between the two beats; a frame
    with no new beat keeps them. The deployment's rates are the processes' summed."""
    one, two = Bot(store_url, "bot-1", 101), Bot(store_url, "bot-2", 102)
    await one.beat(10.0, figures(100, {"memory": 60, "redis": 20, "store": 10, "upstream": 10}))
    await two.beat(20.0, figures(40, {"memory": 0, "redis": 0, "store": 0, "upstream": 40}))
    builder = FrameBuilder()
    async with Controller.open(settings) as controller:
        first = builder.build(await controller.status(VENUE))
        rows = {row.host: row for row in first.processes}
        assert first.since_start and rows["bot-1"].span is not None
        assert rows["bot-1"].span.per_s["requests"] == pytest.approx(100 / 10.0)
        assert rows["bot-1"].span.hit_pct["memory"] == pytest.approx(60.0)
        assert first.total.per_s["requests"] == pytest.approx(100 / 10.0 + 40 / 20.0)
        assert first.total.hit_pct["upstream"] == pytest.approx(100 * (10 + 40) / (100 + 40))

        await one.beat(
            12.5, figures(150, {"memory": 100, "redis": 25, "store": 15, "upstream": 10})
        )
        second = builder.build(await controller.status(VENUE))
        rows = {row.host: row for row in second.processes}
        span = rows["bot-1"].span
        assert span is not None and not span.since_start
        assert span.seconds == pytest.approx(2.5)
        assert span.per_s["requests"] == pytest.approx(50 / 2.5)
        assert span.hit_pct == pytest.approx(
            {"memory": 100 * 40 / 50, "redis": 100 * 5 / 50, "store": 100 * 5 / 50, "upstream": 0.0}
        )
        assert rows["bot-2"].span is not None and rows["bot-2"].span.since_start
        assert second.total.per_s["requests"] == pytest.approx(50 / 2.5 + 40 / 20.0)

        third = builder.build(await controller.status(VENUE))
        assert {r.host: r.span for r in third.processes} == {
            r.host: r.span for r in second.processes
        }, "a frame with no new beat keeps the last rates"
        assert third.number == 3


async def test_gone_processes_are_listed_without_rates(store_url: str, settings: Settings) -> None:
    """A process that stopped is shown (stopped) but has no rates and is not in the totals."""
    bot = Bot(store_url, "bot-1", 101)
    await bot.beat(5.0, figures(10, {"memory": 5, "redis": 0, "store": 0, "upstream": 5}))
    async with await open_store(StoreSettings(url=store_url)) as store:
        stopping = HeartbeatPublisher(
            store, lambda: figures(7, dict.fromkeys(LAYERS, 1)), venue=VENUE, host="old", pid=9
        )
        await stopping.beat_once()
        await stopping.aclose()
    async with Controller.open(settings) as controller:
        frame = FrameBuilder().build(await controller.status(VENUE))
    rows = {row.host: row for row in frame.processes}
    assert (rows["old"].state, rows["old"].span) == ("stopped", None)
    assert (frame.alive, frame.gone) == (1, 1)
    assert frame.total.counts["requests"] == 10


# -- the command through the CLI --------------------------------------------------------


@pytest.fixture
def beating(db: Path) -> Bot:
    """One process that beat into the test's SQLite store 8 s after it started."""
    bot = Bot(f"sqlite+aiosqlite:///{db}", "bot-7", 4242)
    stats = figures(
        400,
        {"memory": 300, "redis": 0, "store": 20, "upstream": 80},
        n429=3,
        weight_per_s=2.5,
        queue_depth=4,
        upstream_latency_p50_ms=31.0,
        upstream_latency_p95_ms=95.0,
    )
    asyncio.run(bot.beat(8.0, stats))
    return bot


def test_once_json_is_one_frame(
    cli_app: typer.Typer, beating: Bot, db: Path, tmp_path: Path
) -> None:
    """`--once --json`: one JSON object, the process with its rates since start, the weight
    used against the exchange's limit, and its latency and 429s."""
    done = CliRunner().invoke(
        cli_app, ["monitor", "--venue", VENUE, "--once", "--json"], env=env_of(db, tmp_path)
    )
    assert done.exit_code == 0, done.output
    frame = json.loads(done.stdout)
    [row] = frame["processes"]
    assert (row["id"], row["host"], row["pid"], row["state"]) == (
        beating.id,
        "bot-7",
        4242,
        "alive",
    )
    assert row["span"]["since_start"] and row["span"]["seconds"] == pytest.approx(8.0)
    assert row["span"]["per_s"]["requests"] == pytest.approx(400 / 8.0)
    assert row["span"]["hit_pct"]["memory"] == pytest.approx(75.0)
    assert frame["used_weight_per_min"] == pytest.approx(2.5 * 60)
    fallback = Settings().throttle.fallback_weight_per_minute
    assert frame["limit_weight_per_min"] == pytest.approx(fallback)
    assert frame["used_of_limit_pct"] == pytest.approx(100 * 2.5 * 60 / fallback)
    assert (frame["n429"], frame["queue_depth"], frame["latency_p95_ms"]) == (3, 4, 95.0)
    assert frame["since_start"] is True and frame["number"] == 1


def test_once_prints_one_frame_as_text(
    cli_app: typer.Typer, beating: Bot, db: Path, tmp_path: Path
) -> None:
    """`--once`: one frame of text with the bar's figures, the process's row and a note that
    its rates are since each process started."""
    done = CliRunner().invoke(
        cli_app, ["monitor", "--venue", VENUE, "--once"], env=env_of(db, tmp_path)
    )
    assert done.exit_code == 0, done.output
    text = done.stdout
    assert text.count("mystic monitor") == 1
    fallback = Settings().throttle.fallback_weight_per_minute
    assert f"{2.5 * 60:,.0f} / {fallback:,} weight/min" in text
    [row] = [line.split() for line in text.splitlines() if beating.id[:8] in line]
    assert row[:5] == [beating.id[:8], "bot-7", "4242", "alive", f"{400 / 8:.1f}"]
    assert "3/0" in row
    assert "rates since each process started" in text
    assert "memory 75.0 %" in text


def test_help_explains_the_options(cli_app: typer.Typer) -> None:
    """--help names every option and says how it ends and what rates are."""
    shown = CliRunner().invoke(cli_app, ["monitor", "--help"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0
    text = " ".join(shown.stdout.split())
    for option in ("--once", "--json", "--venue", "--interval"):
        assert option in text
    assert "Ctrl-C stops it (exit 0)" in text and "since each process started" in text


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("--interval", "0"), "--interval"),
        (("--interval", "soon"), "--interval"),
        (("--venue", "no venue!"), "not a venue id"),
    ],
)
def test_bad_options_are_exit_2_naming_them(
    cli_app: typer.Typer, db: Path, tmp_path: Path, args: tuple[str, ...], named: str
) -> None:
    """An interval that is no number or out of range, a venue that is no venue id: exit 2,
    the option named, and the store not even opened."""
    done = CliRunner().invoke(cli_app, ["monitor", "--once", *args], env=env_of(db, tmp_path))
    assert done.exit_code == 2
    assert named in " ".join(done.output.split())
    assert not db.exists()


# -- the live view, ended by Ctrl-C -----------------------------------------------------


def _spawn(db: Path, tmp_path: Path, *args: str, **streams: Any) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MYSTIC_")}
    env.update({k: v for k, v in env_of(db, tmp_path).items() if v is not None})
    env["TERM"] = "xterm-256color"
    return subprocess.Popen(
        [sys.executable, "-c", MAIN, "monitor", "--venue", VENUE, "--interval", "0.2", *args],
        env=env,
        **streams,
    )


def _read_until(fd: int, marker: bytes, within_s: float = 60.0) -> bytes:
    """What ``fd`` gives until ``marker`` appears (a bound, not a timing the test checks)."""
    out = b""
    give_up = time.monotonic() + within_s
    while marker not in out:
        assert time.monotonic() < give_up, f"{marker!r} never came: {out[-2000:]!r}"
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the pty's other end closed
                break
            if not chunk:
                break
            out += chunk
    assert marker in out, f"{marker!r} never came: {out[-2000:]!r}"
    return out


def test_ctrl_c_ends_the_live_view_on_a_terminal_with_exit_0(
    beating: Bot, db: Path, tmp_path: Path
) -> None:
    """On a terminal the view redraws in place; Ctrl-C (SIGINT) ends it with exit code 0,
    no traceback, and the cursor shown again."""
    master, slave = pty.openpty()
    proc = _spawn(db, tmp_path, stdin=slave, stdout=slave, stderr=slave)
    os.close(slave)
    try:
        seen = _read_until(master, b"frame 3")
        assert beating.id[:8].encode() in seen
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
        seen += _read_until(master, b"\x1b[?25h")  # Rich shows the cursor again on exit
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    assert b"Traceback" not in seen and b"KeyboardInterrupt" not in seen
    assert b"Aborted" not in seen


def test_ctrl_c_ends_json_lines_with_exit_0(beating: Bot, db: Path, tmp_path: Path) -> None:
    """Without --once, --json prints one frame a line, numbered; Ctrl-C ends it with exit
    code 0, nothing on stderr, and every line whole JSON."""
    proc = _spawn(db, tmp_path, "--json", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        out = _read_until(proc.stdout.fileno(), b'"number": 3')
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert err == b""
    frames = [json.loads(line) for line in (out + rest).decode().splitlines()]
    assert [f["number"] for f in frames] == list(range(1, len(frames) + 1))
    assert len(frames) >= 3 and all(f["processes"][0]["id"] == beating.id for f in frames)


def test_ctrl_c_ends_frames_printed_to_a_pipe_with_exit_0(
    beating: Bot, db: Path, tmp_path: Path
) -> None:
    """Not on a terminal, frames are printed one after another; Ctrl-C ends them with exit
    code 0 and a line saying the monitor stopped."""
    proc = _spawn(db, tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        out = _read_until(proc.stdout.fileno(), b"(frame 2,")
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert err == b""
    text = (out + rest).decode()
    assert "(frame 1, every 0.2 s, Ctrl-C to stop)" in text
    assert text.rstrip().endswith("monitor stopped")
