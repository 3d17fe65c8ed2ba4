"""Recommendations: what to change, derived from the figures the processes measured.

:func:`recommend` is a pure function of figures samples (what ``heartbeat_figures`` gives,
plus the publisher's ``rss_bytes``), the settings and the level in force with each level's
ceiling. It reads no clock and no store, so the same rules run

- in a process (``md.recommendations()``), over the small ring of its own figures that
  :class:`FigureHistory` keeps as they are computed for its heartbeat;
- in the :class:`~mystic_trading.monitor.Controller` with no process running, over the
  last heartbeat of every process of the venue, alive or gone within the registry's hour;
- in the auto-optimize leader, over the ring of every process's heartbeats it has read.

**Windows.** Counters in the figures are totals since a process started. With two samples
or more of a process, the evidence is their difference over first..last (``"basis":
"samples"``). With one (a heartbeat read cold), it is the beat's ``recent`` block when it
has one (``"basis": "last N s"``): the differences of its counters over the last
``monitor.optimize.quiet_s``, which the process computes from its own ring of figures as it
beats (:meth:`FigureHistory.recent`), so a start-up outage or a 429 of an hour ago is no
evidence now. A beat without ``recent`` (a process of an older version) is judged against
zero at the process's start (``"basis": "since start"``). Every recommendation says its
window: from, to, seconds, basis. Gauges (utilisation, queue wait p95, latency p95, clock
offset) are the last sample's. The level rules read only the processes alive, and only the
part of each window spent at the level in force (from the last sample taken at another
level; a ``recent`` block is cut there by the process), so a 429 earned at a level before
is no reason to lower the new one; a beat without ``recent`` cannot be split and counts
whole.

**The rules** (thresholds shared with a health check are the check's, ``monitor.health``;
the others are ``monitor.optimize``, see ``_optimize_settings.py`` for the defaults' why):

- ``lower_level``: any alive process got a 429 or 418 in its window, or the exchange's
  answers to it were 5xx so often that the success rate of its answers fell below the
  success warning (over at least ``min_requests`` answers), or its upstream latency p95 is
  beyond the latency warning. One step down. An exchange that cannot be reached (refused
  connections, timeouts: ``upstream_unreachable``) is no reason: fewer requests do not
  bring it back, and the health check says it is down.
- ``raise_level``: no alive process got a 429, 418 or upstream failure, over a window at
  least ``quiet_s`` long, and the ceiling binds in one of them (weight admitted at least
  ``raise_utilisation_pct`` of the ceiling, or queue wait p95 beyond the queue warning),
  and the next level's ceiling is higher (at the safe rate, "unlimited" changes nothing).
  One step up. Never together with ``lower_level``.
- ``enable_redis``: no Redis configured (a quota of the process alone) and either the
  exchange's usage header counted weight a process did not send (``foreign_weight``: other
  clients behind the same IP) or two processes of the venue alive on one host each meter
  the whole budget alone.
- ``grow_memory_cache``: evictions beyond the evictions warning per second while the
  memory hit rate is below its warning or fell by ``HIT_RATE_FALL_PTS`` from the first half
  of the window to the second, and the process's memory (RSS) leaves room for the cache to
  double under the memory warning. Doubles the bound that binds (bytes or entries).
- ``grow_store_pool``: waits for a write connection beyond the pool-waits warning, or any
  acquire timeout, in the window. Half as many connections again.
- ``backfill``: one series whose closed history took ``backfill_pages`` upstream pages
  for callers in the window, or any complete page fetched again.
- ``fix_clock``: the exchange's clock offset or its error bound beyond their warnings.

Only a level step is ``applicable`` (``optimize`` may apply it, within ``min_level`` ..
``max_level``); the others need a restart with new settings or an operator.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mystic_trading._optimize_settings import LEVEL_NAMES
from mystic_trading.config import CacheSettings, Settings
from mystic_trading.models import utc_text
from mystic_trading.throttle import Level

__all__ = [
    "RULES",
    "FigureHistory",
    "ProcessFigures",
    "Recommendation",
    "Sample",
    "recommend",
]

RULES = (
    "lower_level",
    "raise_level",
    "enable_redis",
    "grow_memory_cache",
    "grow_store_pool",
    "backfill",
    "fix_clock",
)
MIB = 1 << 20
# A fall of the memory hit rate, in percentage points from the window's first half to its
# second, that counts as "falling" even above the warning.
HIT_RATE_FALL_PTS = 10.0
# Foreign weight below this share of the exchange's limit (per window) is header jitter: a
# usage header read at a window's edge can count a request or two of ours twice.
FOREIGN_MIN_SHARE = 0.01
# Processes shown in one recommendation's evidence.
EVIDENCE_PROCESSES = 8
# The counters of the heartbeat figures (monitor/_figures.py) a ``recent`` block carries
# the differences of; the nested ones are mappings of counters.
COUNTERS = (
    "requests",
    "stale",
    "errors",
    "coalesced",
    "upstream_calls",
    "upstream_weight",
    "upstream_successes",
    "upstream_failures",
    "upstream_5xx",
    "upstream_unreachable",
    "n429",
    "n418",
    "foreign_weight",
    "memory_evictions",
    "store_pool_waits",
    "store_pool_timeouts",
    "candle_history_pages",
    "candle_refetched_pages",
)
NESTED_COUNTERS = ("hits", "candle_history_series")


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _count(value: Any) -> int | float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value


def _difference(now: Mapping[str, Any], base: Mapping[str, Any] | None) -> dict[str, Any]:
    """The counters of ``now`` less those of ``base`` (zero, None: at the start); a
    counter ``now`` does not report stays None."""
    found: dict[str, Any] = {}
    for key in COUNTERS:
        value = _count(now.get(key))
        if value is None:
            found[key] = None
            continue
        before = None if base is None else _count(base.get(key))
        found[key] = max(0, value - (before or 0))
    for key in NESTED_COUNTERS:
        node = now.get(key)
        if not isinstance(node, Mapping):
            found[key] = None
            continue
        prior = None if base is None else base.get(key)
        prior = prior if isinstance(prior, Mapping) else {}
        found[key] = {
            k: max(0, (_count(v) or 0) - (_count(prior.get(k)) or 0)) for k, v in node.items()
        }
    return found


@dataclass(frozen=True, slots=True)
class Sample:
    """One process's figures at ``at_s`` (UTC epoch seconds, on the clock that stamped them)."""

    at_s: float
    figures: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ProcessFigures:
    """A process and its samples, oldest first (at least one)."""

    process_id: str
    host: str
    started_at_s: float
    alive: bool
    samples: tuple[Sample, ...]


@dataclass(frozen=True, slots=True)
class Span:
    """The evidence window of one process: ``first`` None means zero at its start, or, when
    ``recent``, that ``last``'s counters are already the window's differences."""

    process: ProcessFigures
    start_s: float
    first: Mapping[str, Any] | None
    last: Sample
    samples: tuple[Sample, ...]
    recent: bool = False

    @property
    def seconds(self) -> float:
        return max(0.0, self.last.at_s - self.start_s)

    @property
    def basis(self) -> str:
        if self.recent:
            return f"last {self.seconds:.0f} s"
        return "since start" if self.first is None else "samples"

    def gauge(self, key: str) -> float | None:
        return _num(self.last.figures.get(key))

    def delta(self, key: str, sub: str | None = None) -> float:
        def read(figures: Mapping[str, Any] | None) -> float:
            if figures is None:
                return 0.0
            value = figures.get(key)
            if sub is not None:
                value = value.get(sub) if isinstance(value, Mapping) else None
            return _num(value) or 0.0

        return max(0.0, read(self.last.figures) - read(self.first))


def span_of(process: ProcessFigures, *, same_level: bool = False) -> Span:
    """The process's window: its samples' first..last, or its one sample against zero at
    its start. ``same_level`` keeps only the samples at the last sample's level."""
    samples = process.samples
    if same_level and len(samples) > 1:
        # From the last sample before the level in force came in: its counters are the
        # closest baseline there is (what happened between it and the change counts too).
        level = samples[-1].figures.get("level")
        cut = len(samples) - 1
        while cut > 0 and samples[cut - 1].figures.get("level") == level:
            cut -= 1
        samples = samples[max(0, cut - 1) :]
    last = samples[-1]
    if len(samples) == 1:
        recent = _recent_of(last)
        if recent is not None:
            seconds, figures = recent
            window = Sample(last.at_s, figures)
            return Span(process, last.at_s - seconds, None, window, (window,), recent=True)
        return Span(process, process.started_at_s, None, last, samples)
    return Span(process, samples[0].at_s, samples[0].figures, last, samples)


def _recent_of(sample: Sample) -> tuple[float, dict[str, Any]] | None:
    """A beat's figures with its counters replaced by its ``recent`` block's, and that
    block's length in seconds; None for a beat without one (an older version)."""
    recent = sample.figures.get("recent")
    if not isinstance(recent, Mapping):
        return None
    seconds = _num(recent.get("seconds"))
    if seconds is None or seconds < 0:
        return None
    figures = dict(sample.figures)
    for key in (*COUNTERS, *NESTED_COUNTERS):
        figures[key] = recent.get(key)
    return seconds, figures


@dataclass(frozen=True, slots=True)
class Recommendation:
    """One proposed change with its evidence (see the module docstring)."""

    rule: str
    title: str
    setting: str
    from_value: Any
    to_value: Any
    expected: str
    applicable: bool
    reason: str
    evidence: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Plain, JSON-ready data."""
        return {
            "rule": self.rule,
            "title": self.title,
            "setting": self.setting,
            "from": self.from_value,
            "to": self.to_value,
            "expected": self.expected,
            "applicable": self.applicable,
            "reason": self.reason,
            "evidence": dict(self.evidence),
        }


def _window(spans: Sequence[Span]) -> dict[str, Any]:
    start = min(s.start_s for s in spans)
    end = max(s.last.at_s for s in spans)
    bases = sorted({"recent" if s.recent else s.basis for s in spans})
    basis = bases[0] if len(bases) == 1 else "mixed"
    return {
        "from": utc_text(round(start * 1000)),
        "to": utc_text(round(end * 1000)),
        "seconds": round(end - start, 3),
        "basis": f"last {end - start:.0f} s" if basis == "recent" else basis,
        "processes": len(spans),
    }


def _evidence(
    spans: Sequence[Span], per_process: Callable[[Span], dict[str, Any]]
) -> dict[str, Any]:
    return {
        "window": _window(spans),
        "processes": [
            {
                "id": s.process.process_id,
                "host": s.process.host,
                "alive": s.process.alive,
                "window_s": round(s.seconds, 3),
                "basis": s.basis,
                **per_process(s),
            }
            for s in spans[:EVIDENCE_PROCESSES]
        ],
    }


def _fmt(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


class _Rules:
    """The rules over one set of processes; each method appends what it finds."""

    def __init__(
        self,
        processes: Sequence[ProcessFigures],
        settings: Settings,
        level: Level,
        ceilings: Mapping[Level, float],
    ) -> None:
        self.settings = settings
        self.health = settings.monitor.health
        self.optimize = settings.monitor.optimize
        self.level = level
        self.ceilings = ceilings
        self.everyone = [span_of(p) for p in processes if p.samples]
        self.alive = [span_of(p, same_level=True) for p in processes if p.alive and p.samples]
        self.found: list[Recommendation] = []

    # -- the level -----------------------------------------------------------------------

    def _level_step(self, rule: str, to: Level, spans: Sequence[Span], why: str) -> None:
        low = LEVEL_NAMES.index(self.optimize.min_level)
        high = LEVEL_NAMES.index(self.optimize.max_level)
        within = low <= LEVEL_NAMES.index(to.value) <= high
        old, new = self.ceilings.get(self.level), self.ceilings.get(to)
        ceiling = (
            f"ceiling {_fmt(None if old is None else old * 60)} -> "
            f"{_fmt(None if new is None else new * 60)} weight/min"
        )
        if rule == "raise_level":
            expected = f"{ceiling}: callers stop queueing behind it, more answers per second"
            title = "Raise the throttle level"
        else:
            expected = f"{ceiling}: fewer 429s and failures, a ban kept away"
            title = "Lower the throttle level"
        bounds = (
            ""
            if within
            else f" (outside optimize's bounds {self.optimize.min_level}.."
            f"{self.optimize.max_level}: an operator may still do it)"
        )
        self.found.append(
            Recommendation(
                rule=rule,
                title=title,
                setting="throttle.level",
                from_value=self.level.value,
                to_value=to.value,
                expected=expected + bounds,
                applicable=within,
                reason=why,
                evidence=_evidence(spans, _level_figures),
            )
        )

    def lower_level(self) -> bool:
        down = self.level.down()
        if down is None:
            return False
        hot: list[Span] = []
        whys: list[str] = []
        for s in self.alive:
            n429, n418 = s.delta("n429"), s.delta("n418")
            p95 = s.gauge("upstream_latency_p95_ms")
            why = []
            if n429 or n418:
                why.append(f"{n429:.0f} x 429 and {n418:.0f} x 418")
            # Only the exchange's answers: a beat that does not tell 5xx from an exchange
            # out of reach (an older version) is not judged on its failures.
            if s.last.figures.get("upstream_5xx") is not None:
                ok, fives = s.delta("upstream_successes"), s.delta("upstream_5xx")
                if ok + fives >= self.health.min_requests:
                    rate = 100 * ok / (ok + fives)
                    if rate < self.health.upstream_success_warning_pct:
                        why.append(
                            f"upstream success {rate:.1f} % of {ok + fives:.0f} answers "
                            f"({fives:.0f} x 5xx)"
                        )
            if p95 is not None and p95 > self.health.upstream_latency_warning_ms:
                why.append(f"upstream latency p95 {p95:,.0f} ms")
            if why:
                hot.append(s)
                whys.append(f"{'; '.join(why)} in {s.seconds:.0f} s")
        if not hot:
            return False
        self._level_step("lower_level", down, hot, whys[0] + _more(len(hot)))
        return True

    def raise_level(self) -> None:
        up = self.level.up()
        if up is None or not self.alive:
            return
        here, there = self.ceilings.get(self.level), self.ceilings.get(up)
        if here is not None and there is not None and there <= here:
            return  # already at the safe rate: the next level changes nothing
        for s in self.alive:
            if s.delta("n429") or s.delta("n418") or s.delta("upstream_failures"):
                return
        if max(s.seconds for s in self.alive) < self.optimize.quiet_s:
            return
        binding = []
        for s in self.alive:
            used = s.gauge("ceiling_utilisation_pct")
            wait = s.gauge("queue_wait_p95_ms")
            if (used is not None and used >= self.optimize.raise_utilisation_pct) or (
                wait is not None and wait > self.health.queue_wait_warning_ms
            ):
                binding.append(s)
        if not binding:
            return
        s = binding[0]
        why = (
            f"the ceiling binds: {_fmt(s.gauge('ceiling_utilisation_pct'), 1)} % of it used, "
            f"queue wait p95 {_fmt(s.gauge('queue_wait_p95_ms'))} ms; no 429, 418 or upstream "
            f"failure in {max(x.seconds for x in self.alive):.0f} s"
        )
        self._level_step("raise_level", up, binding, why + _more(len(binding)))

    # -- settings that need a restart or an operator ----------------------------------------

    def enable_redis(self) -> None:
        if self.settings.redis_url is not None:
            return
        foreign: list[Span] = []
        for s in self.everyone:
            if s.last.figures.get("quota_mode") not in (None, "memory"):
                continue
            limit = s.gauge("limit") or 0.0
            window_s = s.gauge("window_s") or 60.0
            windows = max(1.0, s.seconds / window_s)
            if s.delta("foreign_weight") > FOREIGN_MIN_SHARE * limit * windows:
                foreign.append(s)
        by_host: dict[str, list[Span]] = {}
        for s in self.everyone:
            if s.process.alive and s.last.figures.get("quota_mode") in (None, "memory"):
                by_host.setdefault(s.process.host, []).append(s)
        crowded = [spans for spans in by_host.values() if len(spans) > 1]
        if not foreign and not crowded:
            return
        if foreign:
            s = foreign[0]
            why = (
                f"the exchange counted {s.delta('foreign_weight'):,.0f} weight this process did "
                f"not send in {s.seconds:.0f} s: other clients share its IP and budget"
            )
            spans = foreign
        else:
            spans = crowded[0]
            why = (
                f"{len(spans)} processes alive on {spans[0].process.host} each meter the "
                "exchange's whole budget alone"
            )
        self.found.append(
            Recommendation(
                rule="enable_redis",
                title="Enable Redis",
                setting="redis_url",
                from_value=None,
                to_value="redis://HOST:6379/0",
                expected=(
                    "every process meters one shared budget (and shares one cache): their sum "
                    "stays under the exchange's limit"
                ),
                applicable=False,
                reason=why,
                evidence=_evidence(
                    spans,
                    lambda x: {
                        "foreign_weight": x.delta("foreign_weight"),
                        "quota_mode": x.last.figures.get("quota_mode"),
                        "weight_per_s": x.gauge("weight_per_s"),
                    },
                ),
            )
        )

    def grow_memory_cache(self) -> None:
        cache = self.settings.cache
        for s in self.everyone:
            if not s.seconds:
                continue
            per_s = s.delta("memory_evictions") / s.seconds
            if per_s <= self.health.evictions_warning_per_s:
                continue
            requests = s.delta("requests")
            hits = s.delta("hits", "memory")
            rate = 100 * hits / requests if requests >= self.health.min_requests else None
            fall = _hit_rate_fall(s)
            low = rate is not None and rate < self.health.memory_hit_rate_warning_pct
            if not low and (fall is None or fall < HIT_RATE_FALL_PTS):
                continue
            by_bytes = (s.gauge("memory_bytes") or 0) >= 0.9 * cache.memory_max_mib * MIB
            growth_mib = cache.memory_max_mib if by_bytes else _entries_mib(s, cache)
            rss = s.gauge("rss_bytes")
            if rss is not None and rss / MIB + growth_mib > self.health.memory_warning_mib:
                continue  # memory does not allow it
            if by_bytes:
                setting, old, new = (
                    "cache.memory_max_mib",
                    cache.memory_max_mib,
                    (cache.memory_max_mib * 2),
                )
            else:
                setting, old, new = (
                    "cache.memory_max_entries",
                    cache.memory_max_entries,
                    (cache.memory_max_entries * 2),
                )
            falling = "" if fall is None else f", down {fall:.0f} points in the window"
            self.found.append(
                Recommendation(
                    rule="grow_memory_cache",
                    title="Grow the memory cache",
                    setting=setting,
                    from_value=old,
                    to_value=new,
                    expected=(
                        f"fewer evictions and more memory hits, for about {growth_mib:,.0f} MiB "
                        "more per process"
                    ),
                    applicable=False,
                    reason=(
                        f"{per_s:,.0f} evictions/s with a memory hit rate of "
                        f"{_fmt(rate, 1)} %{falling} over {s.seconds:.0f} s; RSS "
                        f"{_fmt(None if rss is None else rss / MIB)} MiB"
                    ),
                    evidence=_evidence(
                        [s],
                        lambda x: {
                            "evictions": x.delta("memory_evictions"),
                            "requests": x.delta("requests"),
                            "memory_hits": x.delta("hits", "memory"),
                            "memory_bytes": x.gauge("memory_bytes"),
                            "memory_entries": x.gauge("memory_entries"),
                            "rss_bytes": x.gauge("rss_bytes"),
                        },
                    ),
                )
            )
            return

    def grow_store_pool(self) -> None:
        waiting = [
            s
            for s in self.everyone
            if s.delta("store_pool_waits") > self.health.store_pool_waits_warning
            or s.delta("store_pool_timeouts") > 0
        ]
        if not waiting:
            return
        size = self.settings.store.pool_size
        s = waiting[0]
        self.found.append(
            Recommendation(
                rule="grow_store_pool",
                title="Grow the store's connection pool",
                setting="store.pool_size",
                from_value=size,
                to_value=size + max(1, math.ceil(size / 2)),
                expected="writes stop waiting for a connection (and none times out)",
                applicable=False,
                reason=(
                    f"{s.delta('store_pool_waits'):,.0f} waits and "
                    f"{s.delta('store_pool_timeouts'):,.0f} timeouts for a write connection "
                    f"in {s.seconds:.0f} s" + _more(len(waiting))
                ),
                evidence=_evidence(
                    waiting,
                    lambda x: {
                        "store_pool_waits": x.delta("store_pool_waits"),
                        "store_pool_timeouts": x.delta("store_pool_timeouts"),
                    },
                ),
            )
        )

    def backfill(self) -> None:
        pages: dict[str, float] = {}
        refetched = 0.0
        spans: list[Span] = []
        for s in self.everyone:
            first = s.first.get("candle_history_series") if s.first is not None else None
            last = s.last.figures.get("candle_history_series")
            if not isinstance(last, Mapping):
                continue
            before = first if isinstance(first, Mapping) else {}
            for series, n in last.items():
                grew = (_num(n) or 0) - (_num(before.get(series)) or 0)
                if grew > 0:
                    pages[series] = pages.get(series, 0) + grew
            if s.delta("candle_refetched_pages") or any(
                (_num(n) or 0) - (_num(before.get(k)) or 0) >= self.optimize.backfill_pages
                for k, n in last.items()
            ):
                spans.append(s)
            refetched += s.delta("candle_refetched_pages")
        cold = sorted(
            ((k, n) for k, n in pages.items() if n >= self.optimize.backfill_pages or refetched),
            key=lambda kv: -kv[1],
        )
        if not cold or not spans:
            return
        series, n = cold[0]
        symbol, _, interval = series.partition(" ")
        self.found.append(
            Recommendation(
                rule="backfill",
                title=f"Backfill {series}",
                setting="backfill",
                from_value=None,
                to_value=series,
                expected=(
                    f"one background backfill stores {series}'s history; callers then read it "
                    "from the store instead of each paying upstream pages "
                    f"(mystic backfill {symbol} --interval {interval} --since DATE)"
                ),
                applicable=False,
                reason=(
                    f"{n:,.0f} upstream pages of {series}'s closed history fetched for callers"
                    f" and {refetched:,.0f} complete pages fetched again, over "
                    f"{max(s.seconds for s in spans):.0f} s"
                ),
                evidence={
                    **_evidence(
                        spans,
                        lambda x: {
                            "candle_history_pages": x.delta("candle_history_pages"),
                            "candle_refetched_pages": x.delta("candle_refetched_pages"),
                        },
                    ),
                    "series_pages": dict(cold),
                },
            )
        )

    def fix_clock(self) -> None:
        off = []
        for s in self.everyone:
            if not s.process.alive:
                continue
            offset, error = s.gauge("clock_offset_ms"), s.gauge("clock_error_ms")
            if (offset is not None and abs(offset) > self.health.clock_offset_warning_ms) or (
                error is not None and error > self.health.clock_error_warning_ms
            ):
                off.append(s)
        if not off:
            return
        s = off[0]
        offset = s.gauge("clock_offset_ms")
        self.found.append(
            Recommendation(
                rule="fix_clock",
                title="Fix this host's clock",
                setting="host clock (NTP)",
                from_value=offset,
                to_value=0,
                expected=(
                    "signed requests stay within the exchange's recvWindow, and candles are "
                    "final (and stored) as soon as they close"
                ),
                applicable=False,
                reason=(
                    f"the exchange's clock is {_fmt(offset)} ms from {s.process.host}'s "
                    f"(error bound {_fmt(s.gauge('clock_error_ms'))} ms; warnings at "
                    f"{self.health.clock_offset_warning_ms:,.0f} and "
                    f"{self.health.clock_error_warning_ms:,.0f} ms)" + _more(len(off))
                ),
                evidence=_evidence(
                    off,
                    lambda x: {
                        "clock_offset_ms": x.gauge("clock_offset_ms"),
                        "clock_error_ms": x.gauge("clock_error_ms"),
                    },
                ),
            )
        )


def _more(n: int) -> str:
    return "" if n <= 1 else f" (and {n - 1} more process(es))"


def _level_figures(s: Span) -> dict[str, Any]:
    return {
        "level": s.last.figures.get("level"),
        "n429": s.delta("n429"),
        "n418": s.delta("n418"),
        "upstream_successes": s.delta("upstream_successes"),
        "upstream_failures": s.delta("upstream_failures"),
        "upstream_5xx": s.delta("upstream_5xx"),
        "upstream_unreachable": s.delta("upstream_unreachable"),
        "upstream_latency_p95_ms": s.gauge("upstream_latency_p95_ms"),
        "ceiling_utilisation_pct": s.gauge("ceiling_utilisation_pct"),
        "queue_wait_p95_ms": s.gauge("queue_wait_p95_ms"),
        "weight_per_s": s.gauge("weight_per_s"),
    }


def _entries_mib(s: Span, cache: CacheSettings) -> float:
    """The memory a doubled entry bound may take: the entries' average size times the
    entries added, capped by the byte bound."""
    entries = s.gauge("memory_entries") or 0
    size = (s.gauge("memory_bytes") or 0) / entries if entries else 0
    return min(float(cache.memory_max_mib), size * cache.memory_max_entries / MIB)


def _hit_rate_fall(s: Span) -> float | None:
    """Memory hit rate (points) in the window's first half less its second half; None with
    fewer than three samples."""
    samples = s.samples
    if len(samples) < 3:
        return None
    mid = samples[len(samples) // 2]

    def rate(a: Mapping[str, Any], b: Mapping[str, Any]) -> float | None:
        asked = (_num(b.get("requests")) or 0) - (_num(a.get("requests")) or 0)
        if asked <= 0:
            return None
        hits_a, hits_b = a.get("hits"), b.get("hits")
        ha = _num(hits_a.get("memory")) if isinstance(hits_a, Mapping) else 0
        hb = _num(hits_b.get("memory")) if isinstance(hits_b, Mapping) else 0
        return 100 * ((hb or 0) - (ha or 0)) / asked

    before = rate(samples[0].figures, mid.figures)
    after = rate(mid.figures, samples[-1].figures)
    if before is None or after is None:
        return None
    return before - after


def recommend(
    processes: Iterable[ProcessFigures],
    settings: Settings,
    *,
    level: Level,
    ceilings: Mapping[Level, float],
) -> list[Recommendation]:
    """The recommendations the figures of ``processes`` support (see the module), level
    steps first; ``ceilings`` are each level's ceiling in weight per second for the venue."""
    rules = _Rules(list(processes), settings, level, ceilings)
    if not rules.lower_level():
        rules.raise_level()
    rules.enable_redis()
    rules.grow_memory_cache()
    rules.grow_store_pool()
    rules.backfill()
    rules.fix_clock()
    return rules.found


class FigureHistory:
    """A small ring of figures samples per process, with their times.

    ``add`` keeps a sample at most every ``every_s`` per process (a newer one replaces the
    newest kept until then, so the last is always current) and forgets those older than
    ``keep_s``; a process not seen for ``keep_s`` is forgotten whole. Fed by a process with
    its own figures (``md.recommendations()``) or by the auto-optimize leader with every
    process's heartbeats.
    """

    def __init__(
        self,
        *,
        keep_s: float = 900.0,
        every_s: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.keep_s = keep_s
        self.every_s = every_s
        self.clock = clock
        self._samples: dict[str, deque[Sample]] = {}
        self._meta: dict[str, tuple[str, float]] = {}

    def add(
        self,
        process_id: str,
        figures: Mapping[str, Any],
        *,
        host: str = "",
        started_at_s: float | None = None,
        at_s: float | None = None,
    ) -> None:
        at = self.clock() if at_s is None else at_s
        ring = self._samples.setdefault(process_id, deque())
        if process_id not in self._meta:
            self._meta[process_id] = (host, at if started_at_s is None else started_at_s)
        if ring and at <= ring[-1].at_s:
            return  # the same beat read again
        sample = Sample(at, dict(figures))
        if len(ring) >= 2 and at - ring[-2].at_s < self.every_s:
            ring[-1] = sample
        else:
            ring.append(sample)
        while ring and ring[0].at_s < at - self.keep_s:
            ring.popleft()
        for other in [p for p, r in self._samples.items() if r and r[-1].at_s < at - self.keep_s]:
            del self._samples[other], self._meta[other]

    def process(self, process_id: str, *, alive: bool = True) -> ProcessFigures | None:
        ring = self._samples.get(process_id)
        if not ring:
            return None
        host, started = self._meta[process_id]
        return ProcessFigures(process_id, host, started, alive, tuple(ring))

    def __contains__(self, process_id: object) -> bool:
        return process_id in self._samples

    def recent(self, process_id: str, *, window_s: float) -> dict[str, Any] | None:
        """The ``recent`` block of the process's newest sample: its counters less those of
        the newest sample at least ``window_s`` older, or of the last sample taken at
        another level if that is newer (what happened at a level before is no evidence
        about this one), or zero at the process's start if it is younger; with the window
        (``from``, ``to``, ``seconds``, on the clock of the samples). None with no sample.

        Called for every heartbeat: a walk back over at most the ring (a sample per
        ``every_s``) and one small dict, no copy of the ring.
        """
        ring = self._samples.get(process_id)
        if not ring:
            return None
        last = ring[-1]
        level = last.figures.get("level")
        horizon = last.at_s - window_s
        base: Sample | None = None
        older = reversed(ring)
        next(older)
        for sample in older:
            if sample.figures.get("level") != level or sample.at_s <= horizon:
                base = sample
                break
        started = self._meta[process_id][1]
        if base is None and started < horizon and len(ring) > 1:
            base = ring[0]  # the ring keeps less than the window: the oldest there is
        start = started if base is None else base.at_s
        return {
            "from": utc_text(round(start * 1000)),
            "to": utc_text(round(last.at_s * 1000)),
            "seconds": round(max(0.0, last.at_s - start), 3),
            **_difference(last.figures, None if base is None else base.figures),
        }
