"""Where heartbeats are kept: one small Protocol, two keepers (Redis, the store).

A keeper stamps each beat on **its own clock** and reads them back with its current time on
that same clock, so whether a process is alive is decided without comparing two machines'
clocks: Redis's (``TIME``, in the scripts) when Redis keeps them, the store's otherwise. A
process's start time is kept the same way, as the keeper's time of its first beat less the
process's uptime then (monotonic), so it survives a move from one keeper to the other.

Each keeper holds a process's record for ``keep_gone_s`` (an hour by default) after its
last beat, so ``mystic status`` can show processes gone, even when none is running; later
beats of any process delete older records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from mystic_trading.errors import StoreError
from mystic_trading.monitor._history import ProcessSamples, parse_sample
from mystic_trading.store import Heartbeat, Store

__all__ = ["Beat", "HeartbeatKeeper", "KeeperName", "Snapshot", "StoreHeartbeats"]

KeeperName = Literal["redis", "store"]

# An hour: long enough to see what went away and when, short enough that a deployment's
# history of restarts does not fill `mystic status`.
KEEP_GONE_S = 3600.0


@dataclass(frozen=True, slots=True)
class Beat:
    """One heartbeat as its process sends it: who, its uptime (monotonic), the interval it
    promises to beat at, its own count of beats, and its figures; the keeper dates it."""

    process_id: str
    venue: str
    host: str
    pid: int
    version: str
    uptime_ms: int
    interval_ms: int
    seq: int
    figures: dict[str, Any] = field(default_factory=dict)
    # The beat's sample for the process's ring (monitor/_history.py), JSON; None for none.
    sample: str | None = None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Every heartbeat a keeper holds, and its time when it read them (UTC epoch ms)."""

    keeper: KeeperName
    now_ms: int
    heartbeats: tuple[Heartbeat, ...]


class HeartbeatKeeper(Protocol):
    """Keeps the last heartbeat of each process, on its own clock."""

    name: KeeperName
    # The exceptions a failing keeper raises: caught, shown and logged by its readers.
    failures: tuple[type[BaseException], ...]

    def describe(self, exc: BaseException) -> str:
        """A short text of ``exc`` for logs and stats, with no secret in it."""
        ...

    async def publish(self, beat: Beat) -> Heartbeat:
        """Keep ``beat`` as its process's last; what is kept, dated on the keeper's clock."""
        ...

    async def stop(self, process_id: str) -> None:
        """Mark ``process_id`` stopped (closed cleanly), if the keeper holds it."""
        ...

    async def read(self) -> Snapshot:
        """Every process that beat within ``keep_gone_s``, with the keeper's time now."""
        ...

    async def samples(self, venue: str, since_ms: int) -> tuple[int, list[ProcessSamples]]:
        """The keeper's time now and the rings of ``venue``'s processes since ``since_ms``."""
        ...


class StoreHeartbeats:
    """Heartbeats in the store's ``heartbeats`` table, on the store's clock."""

    name: KeeperName = "store"
    failures: tuple[type[BaseException], ...] = (StoreError,)

    def __init__(self, store: Store, *, keep_gone_s: float = KEEP_GONE_S) -> None:
        if not keep_gone_s > 0:
            raise ValueError(f"keep_gone_s must be > 0, got {keep_gone_s!r}")
        self._repo = store.heartbeats
        self._keep_ms = round(keep_gone_s * 1000)

    async def publish(self, beat: Beat) -> Heartbeat:
        now = self._repo.now_ms()
        kept = Heartbeat(
            process_id=beat.process_id,
            venue=beat.venue,
            host=beat.host,
            pid=beat.pid,
            version=beat.version,
            started_at=now - beat.uptime_ms,
            beat_at=now,
            interval_ms=beat.interval_ms,
            seq=beat.seq,
            figures=beat.figures,
        )
        await self._repo.save(kept, prune_before=now - self._keep_ms, sample=beat.sample)
        return kept

    async def stop(self, process_id: str) -> None:
        await self._repo.stop(process_id)

    def describe(self, exc: BaseException) -> str:
        return f"{type(exc).__name__}: {exc}"[:200]

    async def read(self) -> Snapshot:
        now = self._repo.now_ms()
        rows = await self._repo.recent(now - self._keep_ms)
        return Snapshot("store", now, tuple(rows))

    async def samples(self, venue: str, since_ms: int) -> tuple[int, list[ProcessSamples]]:
        now = self._repo.now_ms()
        rows = await self._repo.samples(venue, since_ms)
        intervals = {h.process_id: h.interval_ms for h in await self._repo.recent(since_ms)}
        rings: dict[str, list[tuple[int, list[float | int | None]]]] = {}
        for process_id, beat_at, text in rows:
            values = parse_sample(text)
            if values is not None:
                rings.setdefault(process_id, []).append((beat_at, values))
        return now, [
            ProcessSamples(pid, intervals.get(pid, 2000), tuple(ring))
            for pid, ring in rings.items()
        ]
