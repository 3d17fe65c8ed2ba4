"""The registry: every process of the deployment, alive or gone, read from every keeper.

A process is **alive** while its last beat is at most three of its own intervals old on the
keeper's clock (``now - beat_at <= 3 x interval_ms``, both from the keeper), and it did not
stop; otherwise it is **gone**, ``stopped`` when it closed cleanly. Judging by each process's
own interval lets processes beating at different rates share a deployment.

With Redis configured, both Redis and the store are read and merged by process id, since a
process beats to the store while Redis is down (or unreachable from its host) and back to
Redis afterwards: for each process the record that says alive wins, then the one with the
higher ``seq`` (the process's own count of beats, comparable across keepers where their
clocks are not). A keeper that cannot be read is left out and named in ``errors``; the
read never raises for it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mystic_trading.monitor._backends import (
    KEEP_GONE_S,
    HeartbeatKeeper,
    KeeperName,
    Snapshot,
    StoreHeartbeats,
)
from mystic_trading.monitor._history import ProcessSamples
from mystic_trading.store import Heartbeat, Store

if TYPE_CHECKING:
    from mystic_trading.monitor._redis_beats import RedisHeartbeats

__all__ = ["GONE_AFTER_BEATS", "Deployment", "ProcessRegistry", "ProcessStatus"]

log = logging.getLogger(__name__)

# A process that missed this many beats (of its own interval) is gone (issue 12).
GONE_AFTER_BEATS = 3


@dataclass(frozen=True, slots=True)
class ProcessStatus:
    """One process as the registry sees it: its last heartbeat, whether it is alive, how old
    its last beat is (seconds, on the clock of the keeper it was read from) and that keeper."""

    heartbeat: Heartbeat
    alive: bool
    age_s: float
    keeper: KeeperName

    @property
    def process_id(self) -> str:
        return self.heartbeat.process_id

    @property
    def stopped(self) -> bool:
        """Gone because it closed cleanly (not because it stopped beating)."""
        return self.heartbeat.stopped_at is not None


def judge(heartbeat: Heartbeat, now_ms: int, keeper: KeeperName) -> ProcessStatus:
    """Alive or gone, on the keeper's clock (``now_ms`` and ``beat_at`` both from it)."""
    age_ms = now_ms - heartbeat.beat_at
    alive = heartbeat.stopped_at is None and age_ms <= GONE_AFTER_BEATS * heartbeat.interval_ms
    return ProcessStatus(heartbeat, alive, max(0.0, age_ms / 1000), keeper)


@dataclass(frozen=True, slots=True)
class Deployment:
    """Every process kept, alive ones first (each group by venue, then start), with the
    keepers read and the errors of those that could not be."""

    processes: tuple[ProcessStatus, ...]
    read_from: tuple[KeeperName, ...]
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def alive(self) -> tuple[ProcessStatus, ...]:
        return tuple(p for p in self.processes if p.alive)

    @property
    def gone(self) -> tuple[ProcessStatus, ...]:
        return tuple(p for p in self.processes if not p.alive)

    @property
    def lost(self) -> tuple[ProcessStatus, ...]:
        """Gone without closing: stopped beating (killed, hung, cut off)."""
        return tuple(p for p in self.processes if not p.alive and not p.stopped)


def _better(a: ProcessStatus, b: ProcessStatus) -> ProcessStatus:
    return a if (a.alive, a.heartbeat.seq) >= (b.alive, b.heartbeat.seq) else b


class ProcessRegistry:
    """Reads the heartbeats of a deployment from the store and, when configured, Redis."""

    def __init__(
        self,
        store: Store,
        redis: RedisHeartbeats | None = None,
        *,
        keep_gone_s: float = KEEP_GONE_S,
    ) -> None:
        keepers: list[HeartbeatKeeper] = []
        if redis is not None:
            keepers.append(redis)
        keepers.append(StoreHeartbeats(store, keep_gone_s=keep_gone_s))
        self._keepers = tuple(keepers)

    async def samples(self, venue: str, since_ms: int) -> tuple[int, list[ProcessSamples]]:
        """The rings of ``venue``'s processes since ``since_ms`` (monitor/_history.py), each
        keeper's merged (a process that beat to both while Redis came and went), and the
        latest time now of the keepers read; a keeper that fails is skipped (logged)."""
        merged: dict[str, dict[int, list[float | int | None]]] = {}
        intervals: dict[str, int] = {}
        now = 0
        for keeper in self._keepers:
            try:
                at, rings = await keeper.samples(venue, since_ms)
            except keeper.failures as exc:
                log.debug("samples: cannot read %s: %s", keeper.name, keeper.describe(exc))
                continue
            now = max(now, at)
            for ring in rings:
                intervals.setdefault(ring.process_id, ring.interval_ms)
                merged.setdefault(ring.process_id, {}).update(ring.samples)
        return now, [
            ProcessSamples(pid, intervals[pid], tuple(sorted(by_time.items())))
            for pid, by_time in merged.items()
        ]

    async def read(self, venue: str | None = None) -> Deployment:
        """Every process kept (of ``venue`` only, if given), alive or gone."""
        merged: dict[str, ProcessStatus] = {}
        read_from: list[KeeperName] = []
        errors: dict[str, str] = {}
        for keeper in self._keepers:
            try:
                snapshot: Snapshot = await keeper.read()
            except keeper.failures as exc:
                errors[keeper.name] = keeper.describe(exc)
                log.debug("heartbeats: cannot read %s: %s", keeper.name, exc)
                continue
            read_from.append(keeper.name)
            for heartbeat in snapshot.heartbeats:
                if venue is not None and heartbeat.venue != venue:
                    continue
                status = judge(heartbeat, snapshot.now_ms, snapshot.keeper)
                known = merged.get(heartbeat.process_id)
                merged[heartbeat.process_id] = status if known is None else _better(known, status)
        ordered = sorted(
            merged.values(),
            key=lambda p: (not p.alive, p.heartbeat.venue, p.heartbeat.started_at, p.process_id),
        )
        return Deployment(tuple(ordered), tuple(read_from), errors)
