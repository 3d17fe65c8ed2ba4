"""What ``mystic monitor`` shows, as data: successive ``Controller.status()`` answers turned
into frames, with no terminal and no I/O (``monitor_cmd.py`` draws them).

A heartbeat carries counters since its process started (requests, answers per layer, calls
and weight sent upstream, 429s, 418s). Rates are differences of those counters between two
heartbeats of the same process, over the process's own uptime between them (``uptime_s``,
its monotonic clock), so neither the monitor's refresh nor a clock between hosts enters
them. A process beats every 2 s while the monitor refreshes every second, so a frame that
finds no new beat keeps the rates of the last one. A process seen for the first time (every
process in the first frame, and so in ``--once``) has no earlier beat: its rates are since it
started, and the frame says so (``since_start``).

Percentiles (upstream latency, queue wait) cannot be summed: a deployment's figure is the
worst process's. Counts of 429 and 418 are totals since each process started, with what the
last span added.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["COUNTERS", "LAYERS", "Frame", "FrameBuilder", "ProcessRow", "Span"]

LAYERS = ("memory", "redis", "store", "upstream")
# The cumulative counters a heartbeat carries that rates are taken of (monitor/_figures.py).
COUNTERS = ("requests", "upstream_calls", "upstream_weight", "n429", "n418", "errors", "stale")


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _count(value: Any) -> int:
    number = _num(value)
    return 0 if number is None else int(number)


@dataclass(frozen=True, slots=True)
class Span:
    """What a process did over ``seconds`` of its uptime: counter differences, their rates
    per second, and the share of answers each layer gave (percent, None with no answer)."""

    seconds: float
    since_start: bool
    counts: dict[str, int]
    hits: dict[str, int]
    per_s: dict[str, float]
    hit_pct: dict[str, float | None]

    @classmethod
    def between(
        cls,
        before: Mapping[str, Any] | None,
        after: Mapping[str, Any],
        seconds: float,
    ) -> Span:
        """The span from ``before``'s figures (None: the process's start) to ``after``'s."""
        then = before or {}
        counts = {k: max(0, _count(after.get(k)) - _count(then.get(k))) for k in COUNTERS}
        now_hits, then_hits = _hits(after), _hits(then)
        hits = {layer: max(0, now_hits[layer] - then_hits[layer]) for layer in LAYERS}
        return cls.of(seconds, before is None, counts, hits)

    @classmethod
    def of(
        cls, seconds: float, since_start: bool, counts: dict[str, int], hits: dict[str, int]
    ) -> Span:
        per_s = {k: v / seconds for k, v in counts.items()} if seconds > 0 else {}
        return cls(seconds, since_start, counts, hits, per_s, _shares(counts, hits))

    @classmethod
    def total(cls, spans: list[Span]) -> Span:
        """The deployment's: counts summed, rates the sum of each process's own rate (their
        spans differ in length), shares of all the answers counted."""
        counts = {k: sum(s.counts[k] for s in spans) for k in COUNTERS}
        hits = {layer: sum(s.hits[layer] for s in spans) for layer in LAYERS}
        per_s = {k: sum(s.per_s.get(k, 0.0) for s in spans) for k in COUNTERS}
        return cls(
            max((s.seconds for s in spans), default=0.0),
            any(s.since_start for s in spans),
            counts,
            hits,
            per_s,
            _shares(counts, hits),
        )


def _shares(counts: Mapping[str, int], hits: Mapping[str, int]) -> dict[str, float | None]:
    answered = counts.get("requests", 0)
    return {layer: 100.0 * hits[layer] / answered if answered else None for layer in LAYERS}


def _hits(figures: Mapping[str, Any]) -> dict[str, int]:
    hits = figures.get("hits")
    hits = hits if isinstance(hits, Mapping) else {}
    return {layer: _count(hits.get(layer)) for layer in LAYERS}


@dataclass(frozen=True, slots=True)
class ProcessRow:
    """One process in a frame. ``span`` is None for a process gone (its run is over) or one
    whose heartbeat has no uptime yet."""

    id: str
    host: str
    pid: int
    state: str
    alive: bool
    beat_age_s: float
    span: Span | None
    weight_per_s: float | None
    queue_depth: int
    queue_wait_p95_ms: float | None
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    n429: int
    n418: int
    level: str | None
    uptime_s: float | None


@dataclass(frozen=True, slots=True)
class Frame:
    """One refresh of the monitor: the deployment of a venue and each of its processes."""

    number: int
    venue: str
    at: str
    since_start: bool
    level: str
    ceiling_weight_per_min: float
    limit_weight_per_min: float
    safe_weight_per_min: float
    used_weight_per_min: float
    used_of_limit_pct: float
    used_of_ceiling_pct: float | None
    total: Span
    queue_depth: int
    queue_wait_p95_ms: float | None
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    n429: int
    n418: int
    alive: int
    gone: int
    pause: str | None
    ban: str | None
    alerts: list[dict[str, Any]]
    health: dict[str, Any] | None
    recommendations: int | None
    processes: list[ProcessRow]
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Plain data, JSON-ready (``--json``)."""
        return asdict(self)


@dataclass(slots=True)
class _Seen:
    uptime_s: float
    figures: Mapping[str, Any]
    span: Span | None


def _worst(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return max(known) if known else None


class FrameBuilder:
    """Builds frames from successive ``Controller.status()`` answers, keeping each process's
    last heartbeat to take differences against (see the module docstring)."""

    def __init__(self) -> None:
        self.frames = 0
        self._seen: dict[str, _Seen] = {}

    def build(self, status: Mapping[str, Any]) -> Frame:
        """The next frame, from one ``Controller.status()`` answer."""
        self.frames += 1
        rows = [self._row(p) for p in status.get("processes", [])]
        alive_ids = {row.id for row in rows}
        for gone in set(self._seen) - alive_ids:
            del self._seen[gone]  # pruned by the registry: forget it too
        alive = [row for row in rows if row.alive]
        total = Span.total([row.span for row in alive if row.span is not None])
        level, limit, used = status["level"], status["limit"], status["weight_used"]
        return Frame(
            number=self.frames,
            venue=status["venue"],
            at=status["now"],
            since_start=total.since_start,
            level=level["name"],
            ceiling_weight_per_min=level["ceiling_weight_per_min"],
            limit_weight_per_min=limit["weight_per_min"],
            safe_weight_per_min=limit["safe_weight_per_min"],
            used_weight_per_min=used["weight_per_min"],
            used_of_limit_pct=used["of_limit_pct"],
            used_of_ceiling_pct=used["of_ceiling_pct"],
            total=total,
            queue_depth=sum(row.queue_depth for row in alive),
            queue_wait_p95_ms=_worst([row.queue_wait_p95_ms for row in alive]),
            latency_p50_ms=_worst([row.latency_p50_ms for row in alive]),
            latency_p95_ms=_worst([row.latency_p95_ms for row in alive]),
            n429=sum(row.n429 for row in alive),
            n418=sum(row.n418 for row in alive),
            alive=status["alive"],
            gone=status["gone"],
            pause=_pause(status.get("pause")),
            ban=_ban(status.get("ban")),
            alerts=list(status.get("alerts") or []),
            health=_health(status.get("health")),
            recommendations=_recommendations(status.get("recommendations")),
            processes=rows,
            notes=_notes(status),
        )

    def _row(self, p: Mapping[str, Any]) -> ProcessRow:
        figures = p.get("figures") or {}
        uptime = _num(figures.get("uptime_s"))
        span = None
        if p.get("alive") and uptime is not None:
            span = self._span(p["id"], uptime, figures)
        return ProcessRow(
            id=p["id"],
            host=p["host"],
            pid=p["pid"],
            state=p["state"],
            alive=bool(p.get("alive")),
            beat_age_s=p["age_s"],
            span=span,
            weight_per_s=_num(figures.get("weight_per_s")),
            queue_depth=_count(figures.get("queue_depth")),
            queue_wait_p95_ms=_num(figures.get("queue_wait_p95_ms")),
            latency_p50_ms=_num(figures.get("upstream_latency_p50_ms")),
            latency_p95_ms=_num(figures.get("upstream_latency_p95_ms")),
            n429=_count(figures.get("n429")),
            n418=_count(figures.get("n418")),
            level=figures.get("level"),
            uptime_s=uptime,
        )

    def _span(self, process_id: str, uptime: float, figures: Mapping[str, Any]) -> Span | None:
        seen = self._seen.get(process_id)
        if seen is not None and uptime == seen.uptime_s:
            return seen.span  # no new beat since the last frame: its rates stand
        if seen is not None and uptime > seen.uptime_s:
            span: Span | None = Span.between(seen.figures, figures, uptime - seen.uptime_s)
        else:
            span = Span.between(None, figures, uptime) if uptime > 0 else None
        self._seen[process_id] = _Seen(uptime, figures, span)
        return span


def _pause(pause: Mapping[str, Any] | None) -> str | None:
    if not pause or not pause.get("paused"):
        return None
    return f"paused until {pause['until']} ({pause['remaining_s']:.0f} s left)"


def _ban(ban: Mapping[str, Any] | None) -> str | None:
    if not ban or not ban.get("banned"):
        return None
    return f"banned until {ban['until']} ({ban['remaining_s']:.0f} s left): {ban['reason']}"


def _health(health: Any) -> dict[str, Any] | None:
    """The overall verdict and the checks not ok, when the status carries a health round
    (``HealthReport.as_dict()``); None otherwise."""
    if not isinstance(health, Mapping):
        return None
    checks = health.get("checks")
    failing = [
        {k: c.get(k) for k in ("name", "status", "reason")}
        for c in (checks if isinstance(checks, list) else [])
        if isinstance(c, Mapping) and c.get("status") not in (None, "ok")
    ]
    return {
        "overall": health.get("overall"),
        "checks": len(checks) if isinstance(checks, list) else 0,
        "failing": failing,
    }


def _recommendations(found: Any) -> int | None:
    """How many recommendations the status names (a count, or the list itself)."""
    if isinstance(found, list):
        return len(found)
    return found if isinstance(found, int) and not isinstance(found, bool) else None


def _notes(status: Mapping[str, Any]) -> list[str]:
    notes = []
    redis = status.get("redis") or {}
    if redis.get("configured") and not redis.get("available"):
        notes.append(f"Redis unavailable ({redis.get('error')}): heartbeats read from the store")
    for keeper, error in (status.get("heartbeats") or {}).get("errors", {}).items():
        notes.append(f"heartbeats in {keeper} unread: {error}")
    return notes
