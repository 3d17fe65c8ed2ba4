"""The heartbeat publisher: every ``heartbeat_s`` (2 s) this process says it is alive, who it
is and how it is doing.

Each beat carries the process's identity (a uuid4 id for this run, host, pid, Mystic's
version, its venue, read at every beat since a process learns its venue from the exchange's
first answer), its uptime and its figures: what the caller's ``figures`` callable gives
(``heartbeat_figures(md.stats())``), plus what the monitor measures itself: the event loop's
lag (p99 over the last interval, ``LoopLag``) and the resident memory; and ``health``: this
process's last health round in brief (``{"overall", "at", "checks": {name: {"status",
"value", "unit", "reason"}}}``), None before its first round or with no health checker
(a :class:`HealthChecker` given this publisher sets ``health``).

Where it goes. To Redis when one is configured; when a beat to Redis fails (whatever the
error) it goes to the store instead, with one log line, and every later beat tries Redis
first again, so the first one Redis takes moves the process back (one more log line). A
dead Redis costs a beat one refused connection, or one socket timeout (0.25 s) where packets
are dropped, in a background task. When the store fails too, the beat is lost and logged
once; the next one tries again. Nothing here raises into the process: a monitor that
crashes what it watches is worse than none.

Closing (``aclose``) stops the beats and marks the process stopped in every keeper, so the
registry shows it gone at once rather than three beats later.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal

from mystic_trading import __version__
from mystic_trading._tasks import stop
from mystic_trading.errors import StoreError
from mystic_trading.monitor._backends import KEEP_GONE_S, Beat, StoreHeartbeats
from mystic_trading.monitor._history import sample_of
from mystic_trading.monitor._probes import LoopLag, process_rss_bytes
from mystic_trading.monitor._redis_beats import REDIS_FAILURES, RedisHeartbeats
from mystic_trading.store import Heartbeat, Store

__all__ = ["HeartbeatPublisher", "PublisherState"]

log = logging.getLogger(__name__)

PublisherState = Literal["starting", "redis", "store", "failing", "stopped"]


def _no_health() -> None:
    return None


class HeartbeatPublisher:
    """Publishes this process's heartbeat every ``heartbeat_s``: Redis, else the store."""

    def __init__(
        self,
        store: Store,
        figures: Callable[[], Mapping[str, Any]],
        *,
        venue: str | Callable[[], str],
        redis: RedisHeartbeats | None = None,
        heartbeat_s: float = 2.0,
        keep_gone_s: float = KEEP_GONE_S,
        loop_lag: LoopLag | None = None,
        memory: Callable[[], int | None] = process_rss_bytes,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        process_id: str | None = None,
        host: str | None = None,
        pid: int | None = None,
        version: str = __version__,
    ) -> None:
        if not heartbeat_s > 0:
            raise ValueError(f"heartbeat_s must be > 0, got {heartbeat_s!r}")
        self.process_id = process_id or uuid.uuid4().hex
        self.host = host or socket.gethostname()
        self.pid = os.getpid() if pid is None else pid
        self.version = version
        self.heartbeat_s = heartbeat_s
        self._venue = venue
        self._figures = figures
        self._store = StoreHeartbeats(store, keep_gone_s=keep_gone_s)
        self._redis = redis
        self._own_lag = loop_lag is None
        self.loop_lag = LoopLag(clock=monotonic) if loop_lag is None else loop_lag
        self._memory = memory
        self._monotonic = monotonic
        self._sleep = sleep
        self._born = monotonic()
        self._task: asyncio.Task[None] | None = None
        self.state: PublisherState = "starting"
        self.seq = 0
        self.beats = 0  # kept by a keeper
        self.lost = 0  # kept by none
        self.fallbacks = 0  # times Redis failed and beats moved to the store
        self.last_error: str | None = None
        self.last: Heartbeat | None = None
        self.last_ok_at: float | None = None  # monotonic
        self._figures_failed = False
        # The last health round in brief; set by the HealthChecker that watches this process.
        self.health: Callable[[], Mapping[str, Any] | None] = _no_health

    @property
    def venue(self) -> str:
        return self._venue if isinstance(self._venue, str) else self._venue()

    @property
    def redis_configured(self) -> bool:
        return self._redis is not None

    def stats(self) -> dict[str, Any]:
        """Plain data: where beats go, how many were kept and lost, the last error."""
        since = None if self.last_ok_at is None else self._monotonic() - self.last_ok_at
        return {
            "process_id": self.process_id,
            "state": self.state,
            "heartbeat_s": self.heartbeat_s,
            "beats": self.beats,
            "lost": self.lost,
            "fallbacks": self.fallbacks,
            "last_error": self.last_error,
            "since_last_beat_s": since,
        }

    # -- one beat -----------------------------------------------------------------------

    def _collect(self) -> dict[str, Any]:
        try:
            figures = dict(self._figures())
        except Exception as exc:  # the caller's code: its failure must not stop the beat
            if not self._figures_failed:
                log.warning("heartbeats: figures unavailable (%r); beating without them", exc)
            self._figures_failed = True
            figures = {"figures_error": repr(exc)[:200]}
        else:
            self._figures_failed = False
        figures["loop_lag_p99_ms"] = self.loop_lag.p99_ms(self.heartbeat_s)
        figures["rss_bytes"] = self._memory()
        figures["uptime_s"] = round(self._monotonic() - self._born, 3)
        try:
            figures["health"] = self.health()
        except Exception:  # never stops the beat
            log.exception("heartbeats: the health summary failed")
            figures["health"] = None
        return figures

    def _beat(self) -> Beat:
        self.seq += 1
        figures = self._collect()
        return Beat(
            process_id=self.process_id,
            venue=self.venue,
            host=self.host,
            pid=self.pid,
            version=self.version,
            uptime_ms=round((self._monotonic() - self._born) * 1000),
            interval_ms=round(self.heartbeat_s * 1000),
            seq=self.seq,
            figures=figures,
            sample=sample_of(figures),
        )

    async def beat_once(self) -> Heartbeat | None:
        """Publish one heartbeat now: to Redis, else the store. What was kept, or None when
        neither took it. Never raises for a keeper's failure."""
        beat = self._beat()
        if self._redis is not None:
            try:
                kept = await self._redis.publish(beat)
            except REDIS_FAILURES as exc:
                self._redis_failed(exc)
            else:
                return self._kept(kept, "redis")
        try:
            kept = await self._store.publish(beat)
        except StoreError as exc:
            self._lost(exc)
            return None
        return self._kept(kept, "store")

    def _describe(self, exc: BaseException) -> str:
        return f"{type(exc).__name__}: {exc}"[:200]

    def _redis_failed(self, exc: BaseException) -> None:
        assert self._redis is not None
        self.last_error = self._redis.describe(exc)
        if self.state != "store" and self.state != "failing":
            self.fallbacks += 1
            log.warning(
                "heartbeats: Redis at %s failed (%s); beating to the store until it answers",
                self._redis.where,
                self.last_error,
            )

    def _lost(self, exc: BaseException) -> None:
        self.lost += 1
        self.last_error = self._describe(exc)
        if self.state != "failing":
            log.error(
                "heartbeats: the store failed%s (%s); this process is shown gone until a "
                "beat is kept again",
                " too" if self._redis is not None else "",
                self.last_error,
            )
        self.state = "failing"

    def _kept(self, kept: Heartbeat, where: Literal["redis", "store"]) -> Heartbeat:
        if where == "redis" and self.state in ("store", "failing"):
            assert self._redis is not None
            log.warning("heartbeats: Redis at %s answers again; beating there", self._redis.where)
        elif where == "store" and self.state == "failing":
            log.warning("heartbeats: kept again, in the store")
        self.state = where
        self.beats += 1
        self.last = kept
        self.last_ok_at = self._monotonic()
        return kept

    # -- running ------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Beat now and every ``heartbeat_s`` on the running loop (idempotent); starts the
        loop-lag probe if this publisher made it."""
        if self.running:
            return
        if self._own_lag:
            self.loop_lag.start()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="heartbeats")

    async def _run(self) -> None:
        while True:
            began = self._monotonic()
            try:
                await self.beat_once()
            except Exception:  # a bug, not a keeper's failure: logged, and beating goes on
                log.exception("heartbeats: a beat failed unexpectedly")
            elapsed = self._monotonic() - began
            await self._sleep(max(0.0, self.heartbeat_s - elapsed))

    async def aclose(self) -> None:
        """Stop beating and mark this process stopped in every keeper; idempotent."""
        task, self._task = self._task, None
        if task is None and self.state == "stopped":
            return
        await stop(task)
        if self._own_lag:
            await self.loop_lag.aclose()
        if self.beats:
            if self._redis is not None:
                with contextlib.suppress(*REDIS_FAILURES):
                    await self._redis.stop(self.process_id)
            with contextlib.suppress(StoreError):
                await self._store.stop(self.process_id)
        self.state = "stopped"
