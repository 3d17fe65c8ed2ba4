"""The monitoring dashboard of ``mystic serve``: the page at ``/``, its live stream and its
hour of history.

**Assets.** ``dashboard/index.html``, ``app.js`` and ``app.css`` ship inside the package and
are served from it (``/`` and ``/dashboard/...``): no CDN, no npm, no build step. The charts
are a small SVG renderer of our own in ``app.js`` (line charts with event marks, and
candlesticks), not a chart library: none ships its JavaScript inside a PyPI wheel we would
want to depend on (the Python wrappers of Plotly and Bokeh are tens of megabytes and bring
their own server or notebook machinery), and the page needs three kinds of chart that
~400 lines of plain JavaScript draw. Every drawn value is also written as a ``data-``
attribute, which is what the browser tests read.

**Routes.**

- ``GET /``: the page.
- ``GET /api/v1/dashboard/history``: the last hour of samples (``fields`` names the columns
  of each sample row) and the current panels, so a page opened late shows the hour at once.
- ``GET /api/v1/dashboard/stream?symbol=``: Server-Sent Events, one JSON frame per sample
  (every ``SAMPLE_S``): the new sample row and, of the panels (``live``, ``procs``,
  ``alerts``, ``audit``), only those that changed since this client's last frame; with
  ``symbol``, that symbol's ticker from MarketData's layers. ``retry:`` makes the browser's
  EventSource reconnect by itself. A frame is a few hundred bytes: well under 2 KB/s.

**One sampler per process.** A :class:`DashboardSampler` reads the deployment every
``SAMPLE_S`` (``Controller.status()``: the heartbeats of the venue's processes, its level,
ceiling, limit, pause, ban, alerts and audit), merges this process's own figures in (fresher
than its last heartbeat, and the only ones when ``monitor.enabled`` is off), and keeps one
row per sample in a ring of an hour. Counters become per-sample differences taken per
process, so a process that stops does not show as a negative rate. Every dashboard's stream
waits on the same sampler, so ten dashboards cost one status read every ``SAMPLE_S``, not
ten. It starts with the app's lifespan (or the first dashboard request) and stops when
MarketData closes.

**Ending with the server.** A stream never ends by itself, and uvicorn closes the lifespan
(MarketData) only after the open connections have finished, waiting up to its graceful
timeout and then cancelling them with an error logged. So the server tells the sampler when
it begins to stop (:meth:`DashboardSampler.close_streams`, called by ``api/_serve.py``):
every stream ends at once, and one asked for afterwards is a 503, which the page retries
with backoff. ``aclose`` ends them too, for a server that does not say it is stopping.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from mystic_trading.api._encode import dumps
from mystic_trading.api._state import ApiState
from mystic_trading.errors import InvalidSymbol, MysticError, UnknownSymbol
from mystic_trading.marketdata.facade import MarketData
from mystic_trading.monitor import Controller, RedisHeartbeats, heartbeat_figures

# Counters of heartbeat_figures, differenced per process: (column, figure, layer or None).
from mystic_trading.monitor._history import (
    COUNTERS,
    SAMPLE_FIGURES,
    ProcessSamples,
    counter,
    values_of,
)

__all__ = ["FIELDS", "DashboardSampler", "dashboard_routes"]

log = logging.getLogger(__name__)

ASSETS = Path(__file__).parent / "dashboard"
SAMPLE_S = 2.0
# One hour of samples, one every SAMPLE_S.
HISTORY = 1800
# A comment line this often keeps proxies from closing a quiet stream.
KEEPALIVE_S = 15.0
# The columns of a sample row: time (UTC ms); weight per minute used (the deployment),
# the exchange's limit and the level's ceiling; per-sample differences of requests, of
# answers by layer, of upstream calls, stale answers, 429s and 418s; upstream latency
# p50/p95 (ms, the worst process); queue depth (summed) and wait p95 (ms, worst); paused
# and banned (0/1); processes alive and gone.
FIELDS = (
    "t",
    "used",
    "limit",
    "ceiling",
    "req",
    "memory",
    "redis",
    "store",
    "upstream",
    "calls",
    "stale",
    "n429",
    "n418",
    "p50",
    "p95",
    "qd",
    "qw",
    "paused",
    "banned",
    "alive",
    "gone",
)
SELF = "this process"
HOST = socket.gethostname()
PANELS = ("live", "procs", "alerts", "audit")


def _num(value: Any) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    return float(value) if ok else 0.0


def _opt(value: Any) -> float | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    return round(float(value), 2) if ok else None


def _utc_ms(text: Any) -> int | None:
    """``2026-12-02 07:30:05 UTC`` (the controller's form) as epoch ms."""
    if not isinstance(text, str):
        return None
    try:
        at = datetime.strptime(text, "%Y-%m-%d %H:%M:%S UTC").replace(tzinfo=UTC)
    except ValueError:
        return None
    return int(at.timestamp() * 1000)


def _error(status: int, code: str, message: str, field: str | None) -> Response:
    body = {"error": {"code": code, "message": message, "field": field}}
    return Response(dumps(body), status_code=status, media_type="application/json")


def history_rows(
    rings: Sequence[ProcessSamples], *, end_ms: int, step_ms: int, count: int
) -> list[list[float | int | None]]:
    """Rows of :data:`FIELDS` for the ``count`` steps ending at ``end_ms``, from the rings of
    a venue's processes (monitor/_history.py): at each step every process stands at its last
    sample then; its counters are differenced from where it stood a step before (a process
    first seen is a baseline, as in ``sample``); alive while its last sample is within three
    of its intervals (the registry's rule), gone after. Steps before any sample give no row.
    """
    counters = [(column, _AT[column]) for column, _, _ in COUNTERS]
    pointers = [-1] * len(rings)
    before: list[list[float | int | None] | None] = [None] * len(rings)
    rows: list[list[float | int | None]] = []
    for k in range(count):
        t = end_ms - (count - 1 - k) * step_ms
        diffs = dict.fromkeys((c for c, _ in counters), 0)
        alive: list[list[float | int | None]] = []
        gone = 0
        for r, ring in enumerate(rings):
            samples = ring.samples
            i = pointers[r]
            while i + 1 < len(samples) and samples[i + 1][0] <= t:
                i += 1
            pointers[r] = i
            if i < 0:
                continue
            beat_at, values = samples[i]
            last = before[r]
            if last is not None and last is not values:
                for column, j in counters:
                    diffs[column] += max(0, int(_num(values[j]) - _num(last[j])))
            before[r] = values
            if t - beat_at <= 3 * ring.interval_ms:
                alive.append(values)
            else:
                gone += 1
        if not alive and not gone:
            continue
        values_at = {"t": t, **_gauges(alive, t), **diffs, "alive": len(alive), "gone": gone}
        rows.append([values_at[name] for name in FIELDS])
    return rows


_AT = {name: k for k, name in enumerate(SAMPLE_FIGURES)}


def _gauges(alive: Sequence[Sequence[float | int | None]], t: int) -> dict[str, float | int | None]:
    """The deployment's gauges at ``t`` from its alive processes' samples: weight summed,
    the limit and ceiling as reported, latency and wait the worst, queues summed, paused or
    banned if any is."""

    def gauge(name: str) -> list[float]:
        return [float(v) for vs in alive if isinstance(v := vs[_AT[name]], int | float)]

    return {
        "used": round(sum(gauge("used")), 1),
        "limit": max(gauge("limit"), default=None),
        "ceiling": max(gauge("ceiling"), default=None),
        "p50": max(gauge("p50"), default=None),
        "p95": max(gauge("p95"), default=None),
        "qd": int(sum(gauge("qd"))),
        "qw": max(gauge("qw"), default=None),
        "paused": int(any(gauge("paused"))),
        "banned": int(any(v > t for v in gauge("banned_until"))),
    }


class DashboardSampler:
    """The hour of deployment figures every dashboard of this process shares (see the
    module docstring). ``wall`` is the wall clock (seconds) that stamps samples."""

    def __init__(
        self,
        state: ApiState,
        *,
        interval_s: float = SAMPLE_S,
        size: int = HISTORY,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.state = state
        self.interval_s = interval_s
        self.wall = wall
        self.ring: deque[list[float | int | None]] = deque(maxlen=size)
        self.panels: dict[str, Any] = {}
        self.version = 0
        self.samples_taken = 0
        # Rows drawn from the processes' rings of samples when the first sample was taken.
        self.backfilled = 0
        self.failures = 0
        # Set when the server begins to stop: the streams end (see the module docstring).
        self.closing = False
        self._last: dict[str, tuple[int, ...]] = {}
        self._tick = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._controller: Controller | None = None
        self._beats: RedisHeartbeats | None = None
        self._md: MarketData | None = None

    # -- life cycle -----------------------------------------------------------------------

    def ensure_started(self) -> None:
        """Start the sampling task if it is not running (called by every dashboard route:
        the first one starts it; a task that ended with its MarketData starts again with
        the next one's)."""
        md = self.state.md_or_none
        if md is None or (self._task is not None and not self._task.done()):
            return
        if self._md is not md:
            self._controller = None  # a new MarketData: its store, not the last one's
            self._md = md
            self.closing = False  # a new run of the service
        self._task = asyncio.create_task(self._run(md), name="mystic-dashboard-sampler")

    def close_streams(self) -> None:
        """End every dashboard stream now, and refuse new ones (503) until the service starts
        again: the server is stopping, and an open stream would hold it up."""
        self.closing = True
        self._tick.set()  # wakes every stream waiting for the next sample

    async def aclose(self) -> None:
        """End the streams, stop sampling and close what was opened for it."""
        self.close_streams()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        beats, self._beats = self._beats, None
        if beats is not None:
            await beats.aclose()
        self._controller = None

    async def _run(self, md: MarketData) -> None:
        while self.state.md_or_none is md:
            try:
                await self.sample(md)
            except (MysticError, OSError) as exc:
                # A store or Redis hiccup loses one sample, never the sampler.
                self.failures += 1
                if self.failures == 1 or self.failures % 100 == 0:
                    log.warning("dashboard: could not read the deployment (%s)", exc)
                self.panels["live"] = {**self.panels.get("live", {}), "error": str(exc)}
            await asyncio.sleep(self.interval_s)

    def controller(self, md: MarketData) -> Controller:
        """The app's Controller when it keeps one, else one of our own over MarketData's
        store (and Redis's heartbeats when configured)."""
        given = getattr(self.state, "controller_or_none", None)
        if isinstance(given, Controller):
            return given
        if self._controller is None:
            settings = self.state.settings
            if settings.redis_url is not None and self._beats is None:
                self._beats = RedisHeartbeats(settings.redis_url.get_secret_value())
            self._controller = Controller(settings, md.store, heartbeats=self._beats)
        return self._controller

    # -- sampling -------------------------------------------------------------------------

    async def sample(self, md: MarketData) -> None:
        """Read the deployment once: one row for the ring, the panels for the streams."""
        controller = self.controller(md)
        status = await controller.status()
        now_ms = int(self.wall() * 1000)
        if self.samples_taken == 0 and not self.ring:
            await self._backfill(controller, status["venue"], now_ms)
        own_id = None if md.optimizer is None else md.optimizer.process_id()
        own = heartbeat_figures(md.stats())
        alive: dict[str, Mapping[str, Any]] = {SELF: own}
        procs: list[dict[str, Any]] = [self._proc_row(SELF, own, "alive", 0.0, HOST)]
        gone = 0
        for p in status["processes"]:
            if p["id"] == own_id:
                continue
            figures = p.get("figures") or {}
            if p["alive"]:
                alive[p["id"]] = figures
            else:
                gone += 1
            procs.append(self._proc_row(p["id"], figures, p["state"], p["age_s"], p["host"]))
        row = self._row(now_ms, status, alive, gone)
        self.ring.append(row)
        totals = {
            column: sum(counter(f, figure, layer) for f in alive.values())
            for column, figure, layer in COUNTERS
        }
        requests, upstream = totals["req"], totals["upstream"]
        level, limit, pause, ban = status["level"], status["limit"], status["pause"], status["ban"]
        self.panels = {
            "live": {
                "venue": status["venue"],
                "level": level["name"],
                "highest": level["highest"],
                "lowest": level["lowest"],
                "ceiling": round(level["ceiling_weight_per_min"], 1),
                "limit": round(limit["weight_per_min"], 1),
                "paused_until": pause["until_ms"],
                "banned_until": ban["until_ms"] if ban["banned"] else None,
                "health": status["health"]["overall"],
                "recs": status["recommendations"],
                "requests": requests,
                "calls": totals["calls"],
                "saved": max(0, requests - totals["calls"]),
                "hit_pct": None
                if not requests
                else round(100.0 * (requests - upstream) / requests, 1),
                "redis": status["redis"]["error"],
            },
            "procs": procs,
            "alerts": [
                {
                    "id": a["id"],
                    "rule": a["rule"],
                    "subject": a["subject"],
                    "severity": a["severity"],
                    "message": a["message"],
                    "opened": a["opened_at"],
                }
                for a in status["alerts"]
            ],
            "audit": [
                {
                    "id": e["id"],
                    "at": _utc_ms(e["at"]),
                    "field": e["field"],
                    "actor": e["actor"],
                    "from": e["from"],
                    "to": e["to"],
                    "reason": e["reason"],
                }
                for e in status["audit"]
            ],
        }
        self.samples_taken += 1
        self.version += 1
        tick, self._tick = self._tick, asyncio.Event()
        tick.set()

    async def _backfill(self, controller: Controller, venue: str, now_ms: int) -> None:
        """Fill the ring, before its first live row, with the hour the venue's processes
        kept in their rings of samples: what a service started late (or restarted, or any of
        its workers) draws at once. A keeper that cannot be read leaves the ring empty."""
        size = self.ring.maxlen or HISTORY
        step_ms = round(self.interval_s * 1000)
        try:
            keeper_now, rings = await controller.registry.samples(
                venue, now_ms - size * step_ms - 60_000
            )
        except (MysticError, OSError) as exc:
            log.warning("dashboard: could not read the processes' samples (%s)", exc)
            return
        if not rings:
            return
        # The rows are laid on the keeper's clock (the samples' own), then moved onto the
        # wall clock the live rows use (the same on one host; NTP skew across hosts).
        shift = now_ms - keeper_now if keeper_now else 0
        rows = history_rows(
            rings, end_ms=(keeper_now or now_ms) - step_ms, step_ms=step_ms, count=size - 1
        )
        for row in rows:
            row[0] = int(_num(row[0])) + shift
        self.ring.extend(rows)
        self.backfilled = len(rows)

    def _row(
        self,
        now_ms: int,
        status: Mapping[str, Any],
        alive: Mapping[str, Mapping[str, Any]],
        gone: int,
    ) -> list[float | int | None]:
        first = self.samples_taken == 0
        diffs = dict.fromkeys((c for c, _, _ in COUNTERS), 0)
        seen: dict[str, tuple[int, ...]] = {}
        samples = []
        for pid, figures in alive.items():
            sample = values_of(figures)
            samples.append(sample)
            now = tuple(int(_num(v)) for v in sample[: len(COUNTERS)])
            seen[pid] = now
            before = self._last.get(pid)
            # A process first seen now is a baseline: its totals are its whole run, not
            # this sample's (unless the sampler was already running when it started).
            if before is None and (first or pid == SELF):
                continue
            before = before or (0,) * len(COUNTERS)
            for (column, _, _), a, b in zip(COUNTERS, now, before, strict=True):
                diffs[column] += max(0, a - b)
        self._last = seen
        gauges = _gauges(samples, now_ms)
        values: dict[str, float | int | None] = {
            "t": now_ms,
            **gauges,
            # The control state's, which every process follows (a process's own may lag it).
            "limit": round(status["limit"]["weight_per_min"], 1),
            "ceiling": round(status["level"]["ceiling_weight_per_min"], 1),
            "paused": int(bool(status["pause"]["paused"] or gauges["paused"])),
            "banned": int(bool(status["ban"]["banned"] or gauges["banned"])),
            **diffs,
            "alive": len(alive),
            "gone": gone,
        }
        return [values[name] for name in FIELDS]

    @staticmethod
    def _proc_row(
        pid: str, figures: Mapping[str, Any], state: str, age_s: float, host: str | None
    ) -> dict[str, Any]:
        requests = counter(figures, "requests", None)
        upstream = counter(figures, "hits", "upstream")
        return {
            "id": pid if pid == SELF else pid[:8],
            "host": host,
            "state": state,
            "age_s": round(_num(age_s)),
            "level": figures.get("level"),
            "weight_per_s": _opt(figures.get("weight_per_s")),
            "requests": requests,
            "calls": counter(figures, "upstream_calls", None),
            "hit_pct": None if not requests else round(100 * (requests - upstream) / requests, 1),
            "p95": _opt(figures.get("upstream_latency_p95_ms")),
            "qd": int(_num(figures.get("queue_depth"))),
            "n429": counter(figures, "n429", None),
            "n418": counter(figures, "n418", None),
        }

    # -- readers --------------------------------------------------------------------------

    def history(self) -> dict[str, Any]:
        return {
            "fields": FIELDS,
            "interval_s": self.interval_s,
            "samples": list(self.ring),
            **self.panels,
        }

    async def next_frame(self, after: int, within_s: float) -> int:
        """The version of the next sample after ``after``, waiting up to ``within_s``
        seconds for it; ``after`` itself when none came (or the streams are closing)."""
        if self.version > after or self.closing:
            return self.version
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._tick.wait(), within_s)
        return self.version


def dashboard_routes(state: ApiState) -> list[BaseRoute]:
    sampler = DashboardSampler(state)
    state.dashboard = sampler

    async def index(request: Request) -> Response:
        sampler.ensure_started()
        return FileResponse(ASSETS / "index.html", headers={"Cache-Control": "no-cache"})

    async def history(request: Request) -> Response:
        sampler.ensure_started()
        if sampler.samples_taken == 0 and state.md_or_none is not None:
            # The first page of a fresh service: one sample now rather than an empty hour.
            with contextlib.suppress(MysticError, OSError):
                await sampler.sample(state.md)
        return Response(dumps(sampler.history()), media_type="application/json")

    async def stream(request: Request) -> Response:
        md = state.md_or_none
        if md is None or sampler.closing:
            answer = _error(503, "not_started", "the service is starting or stopping", None)
            answer.headers["Retry-After"] = "1"
            return answer
        symbol = request.query_params.get("symbol") or None
        if symbol is not None:
            try:
                await md.ticker(symbol)
            except InvalidSymbol as exc:
                return _error(422, "invalid", f"symbol: {exc}", "symbol")
            except UnknownSymbol as exc:
                return _error(404, "unknown_symbol", str(exc), "symbol")
            except MysticError:
                pass  # the exchange is holding back: the stream says so frame by frame
        sampler.ensure_started()
        return StreamingResponse(
            _frames(sampler, md, symbol),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    return [
        Route("/", index, methods=["GET"]),
        Route("/api/v1/dashboard/history", history, methods=["GET"]),
        Route("/api/v1/dashboard/stream", stream, methods=["GET"]),
        Mount("/dashboard", app=StaticFiles(directory=ASSETS), name="dashboard"),
    ]


async def _frames(
    sampler: DashboardSampler, md: MarketData, symbol: str | None
) -> AsyncIterator[bytes]:
    """One client's stream: the panels it has not seen as they are, the new sample row."""
    yield f"retry: {int(SAMPLE_S * 1000)}\n\n".encode()
    sent: dict[str, bytes] = {}
    version = -1
    while sampler.state.md_or_none is md and not sampler.closing:
        latest = await sampler.next_frame(version, KEEPALIVE_S)
        if sampler.closing:
            return
        if latest == version:
            yield b": keepalive\n\n"
            sampler.ensure_started()
            continue
        version = latest
        frame: dict[str, Any] = {"v": version}
        if sampler.ring:
            frame["s"] = sampler.ring[-1]
        for name in PANELS:
            encoded = dumps(sampler.panels.get(name))
            if sent.get(name) != encoded:
                sent[name] = encoded
                frame[name] = sampler.panels.get(name)
        if symbol is not None:
            frame["ticker"] = await _ticker(md, symbol)
        yield b"data: " + dumps(frame) + b"\n\n"


async def _ticker(md: MarketData, symbol: str) -> dict[str, Any]:
    try:
        answer = await md.ticker(symbol)
    except MysticError as exc:
        return {"symbol": symbol, "error": str(exc)}
    t = answer.value
    return {
        "symbol": t.symbol.exchange,
        "price": _text(t.price),
        "bid": _text(t.bid),
        "ask": _text(t.ask),
        "change_pct": _text(t.change_pct),
        "layer": answer.layer.value,
        "age_ms": answer.age_ms,
        "stale": answer.stale,
    }


def _text(value: Decimal | None) -> str | None:
    """An exact decimal as the exchange wrote it (never ``1E-8``)."""
    return None if value is None else format(value, "f")
