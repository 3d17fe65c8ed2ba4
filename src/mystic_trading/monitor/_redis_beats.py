"""Heartbeats in Redis: one hash per process and one index per deployment, on Redis's clock.

Layout under ``prefix`` (``mystic:monitor`` by default):

- ``<prefix>:process:<id>``: a hash of ``record`` (JSON: identity, interval and figures,
  written by the process), ``seq``, and the times the scripts stamp from ``TIME`` (UTC
  epoch ms): ``beat_at``, ``started_at`` and, once it closed cleanly, ``stopped_at``. The
  record is one field, not one per figure, because redis-py parses replies in Python
  without hiredis: twenty fields a process made a read of eight processes cost 1.6 ms,
  five cost a quarter of that;
- ``<prefix>:processes``: a sorted set of process ids scored by their last beat.

A beat is one script (``lua/beat.lua``): dated by ``TIME``, guarded by ``seq`` (a late beat
never moves a process back), the index trimmed of processes silent for longer than
``keep_gone_s``. Both keys expire ``keep_gone_s`` after the last beat, not after three missed
beats: whether a process is alive is computed from ``beat_at`` against ``TIME`` when it is
read (the registry), so nothing depends on when Redis gets round to expiring a key, and a
process gone is still shown, with its last figures, for that long (`mystic status` with no
process running). A read is two round trips: the index and ``TIME``, then every hash
(``HMGET``).

Errors are not handled here: the publisher falls back to the store and the registry reads
the store as well (``_publisher``, ``_registry``).
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from mystic_trading.config import mask_url
from mystic_trading.monitor._backends import KEEP_GONE_S, Beat, KeeperName, Snapshot
from mystic_trading.monitor._history import ProcessSamples, parse_sample
from mystic_trading.store import Heartbeat

__all__ = ["REDIS_FAILURES", "RedisHeartbeats"]

# Every way a call to Redis can fail: its own errors, a socket error it did not wrap, and an
# answer of the wrong shape (not our scripts' server).
REDIS_FAILURES = (RedisError, OSError, ValueError, TypeError, IndexError, KeyError)


def _script(name: str) -> str:
    return (resources.files("mystic_trading.monitor") / "lua" / name).read_text("utf-8")


# The hash fields a read takes, in this order.
_FIELDS = ("record", "seq", "beat_at", "started_at", "stopped_at")


def _heartbeat(process_id: str, values: list[str | None]) -> Heartbeat | None:
    """The heartbeat of one hash's ``_FIELDS``, or None if the hash is gone (expired)."""
    record_text, seq, beat_at, started_at, stopped_at = values
    if record_text is None or seq is None or beat_at is None or started_at is None:
        return None
    record = json.loads(record_text)
    figures = record.get("figures")
    return Heartbeat(
        process_id=process_id,
        venue=str(record["venue"]),
        host=str(record["host"]),
        pid=int(record["pid"]),
        version=str(record["version"]),
        started_at=int(started_at),
        beat_at=int(beat_at),
        interval_ms=int(record["interval_ms"]),
        seq=int(seq),
        figures=figures if isinstance(figures, dict) else {},
        stopped_at=int(stopped_at) if stopped_at else None,
    )


class RedisHeartbeats:
    """Heartbeats of a deployment in Redis, dated on Redis's clock."""

    name: KeeperName = "redis"
    failures: tuple[type[BaseException], ...] = REDIS_FAILURES

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "mystic:monitor",
        keep_gone_s: float = KEEP_GONE_S,
        timeout_s: float = 0.25,
    ) -> None:
        if not keep_gone_s > 0:
            raise ValueError(f"keep_gone_s must be > 0, got {keep_gone_s!r}")
        self.prefix = prefix
        self.where = mask_url(url)
        self._password = urlsplit(url).password or ""
        self._keep_ms = round(keep_gone_s * 1000)
        # No retries: a beat that fails goes to the store at once, and the next one (a
        # heartbeat later) tries Redis again.
        self._redis: Any = aioredis.Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),
            decode_responses=True,
        )
        self._beat = self._redis.register_script(_script("beat.lua"))
        self._stop = self._redis.register_script(_script("stop.lua"))

    @property
    def index_key(self) -> str:
        return f"{self.prefix}:processes"

    def process_key(self, process_id: str) -> str:
        return f"{self.prefix}:process:{process_id}"

    def samples_key(self, process_id: str) -> str:
        return f"{self.prefix}:samples:{process_id}"

    async def publish(self, beat: Beat) -> Heartbeat:
        record = {
            "venue": beat.venue,
            "host": beat.host,
            "pid": beat.pid,
            "version": beat.version,
            "interval_ms": beat.interval_ms,
            "figures": beat.figures,
        }
        args: list[str | int] = [
            beat.process_id,
            beat.uptime_ms,
            self._keep_ms,
            beat.seq,
            json.dumps(record, separators=(",", ":"), default=str),
            beat.sample or "",
            # An hour of beats, and two to spare.
            self._keep_ms // max(1, beat.interval_ms) + 2,
        ]
        keys = [
            self.process_key(beat.process_id),
            self.index_key,
            self.samples_key(beat.process_id),
        ]
        now, started, _kept = await self._beat(keys=keys, args=args)
        return Heartbeat(
            process_id=beat.process_id,
            venue=beat.venue,
            host=beat.host,
            pid=beat.pid,
            version=beat.version,
            started_at=int(started),
            beat_at=int(now),
            interval_ms=beat.interval_ms,
            seq=beat.seq,
            figures=beat.figures,
        )

    async def stop(self, process_id: str) -> None:
        await self._stop(keys=[self.process_key(process_id)], args=[])

    async def read(self) -> Snapshot:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.time()
            pipe.zrange(self.index_key, 0, -1, withscores=True)
            (seconds, micros), members = await pipe.execute()
        now = int(seconds) * 1000 + int(micros) // 1000
        ids = [str(member) for member, score in members if score >= now - self._keep_ms]
        if not ids:
            return Snapshot("redis", now, ())
        async with self._redis.pipeline(transaction=False) as pipe:
            for process_id in ids:
                pipe.hmget(self.process_key(process_id), _FIELDS)
            hashes = await pipe.execute()
        # A hash may have expired since the index was trimmed: skipped, as no longer kept.
        beats = (_heartbeat(pid, values) for pid, values in zip(ids, hashes, strict=True))
        return Snapshot("redis", now, tuple(b for b in beats if b is not None))

    async def samples(self, venue: str, since_ms: int) -> tuple[int, list[ProcessSamples]]:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.time()
            pipe.zrange(self.index_key, 0, -1, withscores=True)
            (seconds, micros), members = await pipe.execute()
        now = int(seconds) * 1000 + int(micros) // 1000
        ids = [str(member) for member, score in members if score >= since_ms]
        if not ids:
            return now, []
        async with self._redis.pipeline(transaction=False) as pipe:
            for process_id in ids:
                pipe.hget(self.process_key(process_id), "record")
                pipe.lrange(self.samples_key(process_id), 0, -1)
            found = await pipe.execute()
        rings = []
        for k, process_id in enumerate(ids):
            record_text, entries = found[2 * k], found[2 * k + 1]
            try:
                record = json.loads(record_text) if record_text else None
            except ValueError:
                record = None
            if not isinstance(record, dict) or record.get("venue") != venue:
                continue
            ring = []
            for entry in entries:
                at_text, _, text = str(entry).partition(" ")
                values = parse_sample(text)
                if values is not None and at_text.isdigit() and int(at_text) >= since_ms:
                    ring.append((int(at_text), values))
            if not ring:
                continue
            interval = record.get("interval_ms")
            interval_ms = interval if isinstance(interval, int) and interval > 0 else 2000
            rings.append(ProcessSamples(process_id, interval_ms, tuple(ring)))
        return now, rings

    def describe(self, exc: BaseException) -> str:
        """A short text of ``exc`` for logs and stats, never with the password in it."""
        text = f"{type(exc).__name__}: {exc}"
        if self._password:
            text = text.replace(self._password, "***")
        return text[:200]

    async def ping(self) -> None:
        """One PING: the health check times it."""
        await self._redis.ping()

    async def aclose(self) -> None:
        await self._redis.aclose()

    def __repr__(self) -> str:
        return f"RedisHeartbeats({self.where!r}, prefix={self.prefix!r})"
