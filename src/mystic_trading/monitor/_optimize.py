"""Optimize: apply the safe recommendations within bounds, watch each change, roll back.

**What may be applied.** Only a level step (``raise_level``, ``lower_level``): one step
from the level in force (``Level.up``/``down``), within ``monitor.optimize.min_level`` ..
``max_level``, never above "unlimited", which is the exchange's limit less the safety
margin (``level_ceiling``). Enabling Redis, growing a cache or a pool, a backfill or a clock
fix need a restart or an operator: they are shown, never applied. At most one change per
run, and none while the venue's last level change (by anyone: an operator, optimize, a
rollback) is younger than ``cooldown_s``; the audit log is read just before applying, so
two deciders that briefly disagree cannot both apply. Each change is the Controller's
``set_level``, with an audit entry whose reason is the recommendation's evidence in short.

**Watch and rollback** (:class:`ChangeWatch`). After a change, the figures of the processes
alive then are the baseline. Until ``watch_s`` has passed, a process whose 429 or 418
count rose, or whose upstream latency p95 became worse than ``rollback_latency_ratio`` x
its baseline *and* ``rollback_latency_ms`` above it, rolls the change back: the level
before, audited with the reason ``rollback of FROM -> TO: EVIDENCE``. A process that started
after the change has a baseline of zero 429s. If the level was changed again meanwhile
(an operator), the watch ends without touching it. The latency p95 is the process's over
its last few thousand upstream answers, so it reflects a change only as new answers
replace old ones: the ratio and the 250 ms are meant for a clear slowdown, not noise.

**Auto-optimize** (:class:`AutoOptimizer`, ``monitor.optimize.auto``, off by default)
runs in every long-lived process; every ``interval_s`` it reads the registry of its venue
and keeps a ring of each process's heartbeats (:class:`FigureHistory`), so its evidence is
the difference between samples over the last minutes, not start..now. A one-shot run (the
Controller with no ring) judges each process on the ``recent`` block its heartbeat
carries: the counters' differences over the last ``quiet_s``, which every process computes
from its own ring as it beats (:meth:`AutoOptimizer.observe`). Only the **leader**
decides: among the processes of the venue alive in the registry whose heartbeat says
``auto_optimize``, the one started first (ties by process id). No table and no lock: a
process that starts or dies changes the leader at the next read, and the cooldown read from
the audit log just before applying keeps two processes that disagree for a moment from
both applying. The leader watches the changes it applied and rolls them back.

A one-shot ``mystic optimize`` applies and audits; it does not stay to watch (the
auto-optimize leader, if one runs, does not know its baseline either). ``mystic optimize
--watch`` stays ``watch_s`` to do it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mystic_trading._optimize_settings import LEVEL_NAMES
from mystic_trading.models import utc_text
from mystic_trading.monitor._recommend import FigureHistory, ProcessFigures
from mystic_trading.monitor._registry import Deployment, ProcessStatus
from mystic_trading.throttle import Level, parse_level

if TYPE_CHECKING:
    from mystic_trading.monitor._controller import Controller

__all__ = ["AutoOptimizer", "ChangeWatch", "leader_of", "optimize"]

log = logging.getLogger(__name__)

LEVEL_RULES = ("lower_level", "raise_level")
# An audit reason is a line, not the whole evidence (that is in the answer).
REASON_CHARS = 240


def _num(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def leader_of(alive: tuple[ProcessStatus, ...] | list[ProcessStatus]) -> ProcessStatus | None:
    """The auto-optimize leader among ``alive``: the earliest started of those whose
    heartbeat says ``auto_optimize`` (ties by process id); None when none does."""
    candidates = [p for p in alive if p.heartbeat.figures.get("auto_optimize") is True]
    if not candidates:
        return None
    return min(candidates, key=lambda p: (p.heartbeat.started_at, p.process_id))


@dataclass
class ChangeWatch:
    """One applied level change under watch (see the module docstring)."""

    venue: str
    old: Level
    new: Level
    applied_at_s: float
    until_s: float
    baseline: dict[str, Mapping[str, Any]] = field(default_factory=dict)

    @classmethod
    def after(
        cls,
        venue: str,
        old: Level,
        new: Level,
        deployment: Deployment,
        *,
        now_s: float,
        watch_s: float,
    ) -> ChangeWatch:
        baseline: dict[str, Mapping[str, Any]] = {
            p.process_id: dict(p.heartbeat.figures) for p in deployment.alive
        }
        return cls(venue, old, new, now_s, now_s + watch_s, baseline)

    def worse(self, deployment: Deployment, *, ratio: float, extra_ms: float) -> str | None:
        """Why the change made things worse, from the processes alive now; None if not."""
        for p in deployment.alive:
            now = p.heartbeat.figures
            before = self.baseline.get(p.process_id)
            if before is None and p.heartbeat.started_at / 1000 < self.applied_at_s:
                continue  # alive before the change but not seen then: no baseline
            base = before or {}
            d429 = _num(now.get("n429")) - _num(base.get("n429"))
            d418 = _num(now.get("n418")) - _num(base.get("n418"))
            if d429 > 0 or d418 > 0:
                return f"{d429:.0f} x 429 and {d418:.0f} x 418 at {p.process_id[:8]} since"
            p95_then = base.get("upstream_latency_p95_ms")
            p95_now = now.get("upstream_latency_p95_ms")
            if (
                isinstance(p95_then, int | float)
                and isinstance(p95_now, int | float)
                and p95_now > p95_then * ratio
                and p95_now > p95_then + extra_ms
            ):
                return (
                    f"upstream latency p95 {p95_then:,.0f} -> {p95_now:,.0f} ms at "
                    f"{p.process_id[:8]} since"
                )
        return None


async def _last_level_change(controller: Controller, venue: str) -> Any:
    for change in await controller.store.control.audit(venue, limit=50):
        if change.field == "level":
            return change
    return None


async def optimize(
    controller: Controller,
    venue: str | None = None,
    *,
    dry_run: bool = False,
    actor: str = "optimize",
    reason: str = "",
    history: FigureHistory | None = None,
    own: ProcessFigures | None = None,
    deployment: Deployment | None = None,
) -> dict[str, Any]:
    """Apply the applicable recommendation (one level step) unless ``dry_run`` or within
    the cooldown; plain data: what was found, planned, applied or skipped and why."""
    settings = controller.settings.monitor.optimize
    found = await controller.recommendations(venue, history=history, own=own, deployment=deployment)
    name = found["venue"]
    current = parse_level(found["level"])
    recs = found["recommendations"]
    steps = [r for r in recs if r["applicable"] and r["rule"] in LEVEL_RULES]
    shown_only = [r for r in recs if r not in steps]
    result: dict[str, Any] = {
        "venue": name,
        "dry_run": dry_run,
        "level": current.value,
        "recommendations": recs,
        "planned": None,
        "applied": None,
        "skipped": None,
        "not_applicable": [r["rule"] for r in shown_only],
        "cooldown_until": None,
        "message": "",
    }
    if not steps:
        result["message"] = f"{name}: nothing optimize may apply ({len(recs)} recommendation(s))"
        return result
    step = steps[0]
    target = parse_level(step["to"])
    one_step = target in (current.up(), current.down())
    low, high = (LEVEL_NAMES.index(settings.min_level), LEVEL_NAMES.index(settings.max_level))
    if not one_step or not low <= LEVEL_NAMES.index(target.value) <= high:
        result["skipped"] = {**step, "why": "not one step within optimize's bounds"}
        result["message"] = f"{name}: {step['title']} is outside optimize's bounds; not applied"
        return result
    result["planned"] = step
    last = await _last_level_change(controller, name)
    now_ms = controller.now_ms()
    if last is not None and now_ms - last.at < settings.cooldown_s * 1000:
        until = last.at + round(settings.cooldown_s * 1000)
        result["cooldown_until"] = utc_text(until)
        result["skipped"] = {
            **step,
            "why": (
                f"cooldown: the level was changed at {utc_text(last.at)} by "
                f"{last.actor}; the next change may come at {utc_text(until)}"
            ),
        }
        result["message"] = f"{name}: {step['title'].lower()} waits for the cooldown"
        return result
    if dry_run:
        result["message"] = (
            f"{name}: would move the level {current.value} -> {target.value} (dry run; "
            "nothing changed)"
        )
        return result
    why = f"{step['title']}: {step['reason']}" + (f"; {reason}" if reason else "")
    change = await controller.set_level(target, actor=actor, reason=why[:REASON_CHARS], venue=name)
    result["applied"] = {**step, "change": change}
    result["message"] = change["message"]
    return result


class AutoOptimizer:
    """This process's part in optimizing its venue: recommendations over its own figures,
    ``optimize`` on demand, and, when started (``monitor.optimize.auto``), a task that
    decides if this process is the leader and rolls back what made things worse."""

    def __init__(
        self,
        controller: Controller,
        *,
        venue: Callable[[], str],
        process_id: Callable[[], str | None],
        clock: Callable[[], float] = time.time,
        actor: str = "auto-optimize",
    ) -> None:
        self.controller = controller
        self.settings = controller.settings.monitor.optimize
        self.venue = venue
        self.process_id = process_id
        self.clock = clock
        self.actor = actor
        keep = max(900.0, 2 * self.settings.quiet_s, 2 * self.settings.watch_s)
        # Every process's heartbeats as this one read them (the leader's evidence) ...
        self.history = FigureHistory(keep_s=keep, every_s=self.settings.interval_s, clock=clock)
        # ... and this process's own figures, as they are computed for its heartbeat.
        self.own = FigureHistory(keep_s=keep, every_s=self.settings.interval_s, clock=clock)
        self.watch: ChangeWatch | None = None
        self.leading = False
        self.rounds = 0
        self.last: dict[str, Any] | None = None
        self._task: asyncio.Task[None] | None = None

    def observe(
        self, figures: Mapping[str, Any], *, started_at_s: float | None = None
    ) -> dict[str, Any] | None:
        """Keep this process's figures (call with each heartbeat's) and answer their
        ``recent`` block for the heartbeat to carry: the differences of the counters over
        the last ``quiet_s`` (or since the level in force came in, or since the start if
        that is later; :meth:`FigureHistory.recent`). A ``recent`` already in ``figures``
        is not kept: the ring holds counters, never windows of windows."""
        if "recent" in figures:
            figures = {k: v for k, v in figures.items() if k != "recent"}
        pid = self.process_id() or "this-process"
        self.own.add(pid, figures, host=socket.gethostname(), started_at_s=started_at_s)
        return self.own.recent(pid, window_s=self.settings.quiet_s)

    def _own(self) -> ProcessFigures | None:
        return self.own.process(self.process_id() or "this-process")

    async def recommendations(self) -> dict[str, Any]:
        """The venue's recommendations, over the figures this process kept."""
        return await self.controller.recommendations(
            self.venue(), history=self.history, own=self._own()
        )

    async def optimize(
        self, *, dry_run: bool = False, actor: str = "optimize", reason: str = ""
    ) -> dict[str, Any]:
        """``optimize`` for this process's venue, over the figures it kept."""
        return await optimize(
            self.controller,
            self.venue(),
            dry_run=dry_run,
            actor=actor,
            reason=reason,
            history=self.history,
            own=self._own(),
        )

    async def tick(self) -> dict[str, Any] | None:
        """One round: read the venue's processes, keep their figures; if this process leads,
        judge the change under watch (rolling it back if worse), else optimize. Returns
        what was done (a rollback, an optimize answer) or None."""
        venue = self.venue()
        deployment = await self.controller.registry.read(venue)
        for p in deployment.processes:
            beat = p.heartbeat
            self.history.add(
                p.process_id,
                beat.figures,
                host=beat.host,
                started_at_s=beat.started_at / 1000,
                at_s=beat.beat_at / 1000,
            )
        self.rounds += 1
        leader = leader_of(deployment.alive)
        self.leading = leader is not None and leader.process_id == self.process_id()
        if not self.leading:
            return None
        now = self.clock()
        if self.watch is not None:
            done = await self._judge(deployment, now)
            if done is not None or self.watch is not None:
                return done
        answer = await optimize(
            self.controller,
            venue,
            actor=self.actor,
            history=self.history,
            own=self._own(),
            deployment=deployment,
        )
        applied = answer["applied"]
        if applied is not None:
            self.watch = ChangeWatch.after(
                venue,
                parse_level(applied["from"]),
                parse_level(applied["to"]),
                deployment,
                now_s=now,
                watch_s=self.settings.watch_s,
            )
        self.last = answer
        return answer

    async def _judge(self, deployment: Deployment, now: float) -> dict[str, Any] | None:
        watch = self.watch
        assert watch is not None
        current, _ = await self.controller.level(watch.venue)
        if current is not watch.new:
            self.watch = None  # changed again meanwhile (an operator): not ours to undo
            return None
        why = watch.worse(
            deployment,
            ratio=self.settings.rollback_latency_ratio,
            extra_ms=self.settings.rollback_latency_ms,
        )
        if why is None:
            if now >= watch.until_s:
                self.watch = None
            return None
        self.watch = None
        reason = (
            f"rollback of {watch.old.value} -> {watch.new.value}: {why} "
            f"{utc_text(round(watch.applied_at_s * 1000))} ({now - watch.applied_at_s:.0f} s)"
        )
        change = await self.controller.set_level(
            watch.old, actor=self.actor, reason=reason[:REASON_CHARS], venue=watch.venue
        )
        self.last = {"rollback": change, "reason": reason}
        log.warning("%s", reason)
        return self.last

    # -- the task ------------------------------------------------------------------------

    def start(self) -> None:
        """Run :meth:`tick` every ``interval_s`` in the background (never raises into the
        process: a failed round is logged and the next one comes)."""
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a store or Redis hiccup: try again next round
                log.warning("auto-optimize: round failed: %r", exc)
            await asyncio.sleep(self.settings.interval_s)

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def stats(self) -> dict[str, Any]:
        """Plain data: on or off, leading or not, rounds, the change under watch."""
        watch = self.watch
        return {
            "auto": self._task is not None,
            "leading": self.leading,
            "rounds": self.rounds,
            "watching": None
            if watch is None
            else {
                "from": watch.old.value,
                "to": watch.new.value,
                "until": utc_text(round(watch.until_s * 1000)),
            },
        }
