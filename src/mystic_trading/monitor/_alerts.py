"""Alerts from the health checks: a rule per check, judged after every health round.

**Rules.** Each health check (by name) is a rule with the check's own warning and critical
thresholds (``monitor.health``) and the timing of ``monitor.alerts`` (``for_s``,
``resolve_s``, per-rule overrides). A check beyond its warning threshold in every round for
``for_s`` opens a warning alert; beyond its critical threshold for ``for_s`` opens a
critical one, or escalates the warning. Back within its thresholds (``ok``) in every round
for ``resolve_s`` resolves it. Severity never steps down while open: a check that hovers
between warning and critical keeps its critical alert, and one that hovers at its warning
threshold keeps its warning alert instead of opening and resolving one a minute (no
flapping). A check a round did not give (Redis no longer configured, the figures readable
again) counts as ok.

**Subjects.** What the deployment shares is judged per venue (``venue:<id>``): the store,
Redis, a ban or a pause, the exchange's clock, lost processes and 429s, which spend the
budget of one IP. The rest is a process's own (``process:<host>:<pid>``): its event loop,
memory, heartbeat, upstream answers, throttle queue, caches and write backlog.

**Several processes, one store.** Every process of a venue judges the venue's rules, so the
store decides: at most one open alert per rule and subject (a partial unique index), opened
by an insert that does nothing when another process got there first (this one then adopts
it), escalated and resolved by updates that change a row once, and the process whose write
changed it is the one that sends the event. A process that judges an open alert bad marks
it seen (``seen_at``); one that judges it ok resolves it only when no process has seen it
bad for ``resolve_s`` either, so two processes that disagree never open and resolve it in
turn. An alert about a subject no process judges any more (a process gone, a venue no
process serves) resolves once nobody has seen it bad for ``resolve_s`` plus three rounds.

**Time** is the health round's (``HealthReport.at``, UTC epoch ms on the checker's wall
clock), so a test moves one injected clock and judges exact durations.

Nothing here raises into the process: a failing store is logged once and the next round
tries again; events go to an :class:`AlertSink` (the webhook) that never blocks.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

from mystic_trading._alert_settings import AlertSettings, RuleTiming
from mystic_trading.errors import StoreError
from mystic_trading.models import utc_text
from mystic_trading.monitor._checks import Check, HealthReport, Status, fmt
from mystic_trading.monitor._webhook import AlertSink, AlertWebhook
from mystic_trading.store import Alert, Severity, Store

__all__ = ["VENUE_RULES", "AlertEngine", "AlertEvent", "alert_row", "alert_rows"]

log = logging.getLogger(__name__)

AlertEvent = Literal["opened", "escalated", "resolved"]

# Rules judged per venue; every other rule is judged per process.
VENUE_RULES = frozenset(
    {
        "store_round_trip",
        "disk_free",
        "redis",
        "ban",
        "pause",
        "clock_offset",
        "clock_error",
        "processes",
        "rate_limited",
    }
)
# An alert nobody judges any more resolves after resolve_s and this many rounds of silence.
ORPHAN_ROUNDS = 3
OPEN_READ_LIMIT = 1000


def _utc(ms: int | None) -> str | None:
    return None if ms is None else utc_text(ms)


def alert_row(a: Alert) -> dict[str, Any]:
    """One alert as JSON-ready data: times as UTC epoch ms and as UTC text."""
    return {
        "id": a.id,
        "rule": a.rule,
        "subject": a.subject,
        "severity": a.severity,
        "message": a.message,
        "value": a.value,
        "unit": a.unit,
        "threshold": a.threshold,
        "warning": a.warning,
        "critical": a.critical,
        "opened_at": a.created_at,
        "opened_at_utc": _utc(a.created_at),
        "escalated_at": a.escalated_at,
        "escalated_at_utc": _utc(a.escalated_at),
        "resolved_at": a.resolved_at,
        "resolved_at_utc": _utc(a.resolved_at),
        "seen_at": a.seen_at,
        "open": a.resolved_at is None,
    }


async def alert_rows(store: Store, *, open_only: bool, limit: int) -> list[dict[str, Any]]:
    """The latest alerts of the store, newest first (open ones only with ``open_only``),
    as :func:`alert_row` gives them. Raises the store's StoreError."""
    return [alert_row(a) for a in await store.alerts.list(open_only=open_only, limit=limit)]


@dataclass(slots=True)
class _Track:
    """One rule and subject as this process has judged it: since when (UTC ms) it has
    been beyond its warning threshold, beyond its critical one, and back to ok."""

    warning_since: int | None = None
    critical_since: int | None = None
    ok_since: int | None = None

    def judged(self, status: Status, now: int) -> None:
        if status == "ok":
            self.warning_since = self.critical_since = None
            self.ok_since = self.ok_since if self.ok_since is not None else now
            return
        self.ok_since = None
        if self.warning_since is None:
            self.warning_since = now
        if status == "critical":
            self.critical_since = self.critical_since if self.critical_since is not None else now
        else:
            self.critical_since = None

    def due(self, for_ms: int, now: int) -> Severity | None:
        """The severity that has lasted ``for_ms``, if any."""
        if self.critical_since is not None and now - self.critical_since >= for_ms:
            return "critical"
        if self.warning_since is not None and now - self.warning_since >= for_ms:
            return "warning"
        return None


def _threshold(check: Check, severity: Severity) -> float:
    crossed = check.critical if severity == "critical" else check.warning
    return 0.0 if crossed is None else crossed


class AlertEngine:
    """Judges every rule after each health round (``evaluate``), keeps the alerts in the
    store and sends each event (opened, escalated, resolved) to ``sink``."""

    def __init__(
        self,
        store: Store,
        settings: AlertSettings | None = None,
        *,
        venue: str | Callable[[], str],
        host: str | None = None,
        pid: int | None = None,
        sink: AlertSink | None = None,
        interval_s: float = 30.0,
    ) -> None:
        if not interval_s > 0:
            raise ValueError(f"interval_s must be > 0, got {interval_s!r}")
        self.store = store
        self.settings = settings or AlertSettings()
        self.host = host or socket.gethostname()
        self.pid = os.getpid() if pid is None else pid
        self.process_subject = f"process:{self.host}:{self.pid}"
        self.sink = sink
        self.interval_s = interval_s
        self._venue = venue
        self._own_sink: AlertWebhook | None = None
        self._rules: dict[str, RuleTiming] = {}
        self._tracks: dict[tuple[str, str], _Track] = {}
        self._failing = False
        self.counts = {"opened": 0, "escalated": 0, "resolved": 0, "adopted": 0, "sent": 0}
        self.errors = 0
        self.last_error: str | None = None

    @classmethod
    def from_settings(
        cls,
        store: Store,
        settings: AlertSettings,
        *,
        venue: str | Callable[[], str],
        host: str | None = None,
        pid: int | None = None,
        interval_s: float = 30.0,
    ) -> AlertEngine:
        """An engine with the webhook of ``settings`` (if any), closed by ``aclose``."""
        webhook = None
        if settings.webhook_url is not None:
            webhook = AlertWebhook(
                settings.webhook_url,
                timeout_s=settings.webhook_timeout_s,
                retries=settings.webhook_retries,
            )
        engine = cls(
            store, settings, venue=venue, host=host, pid=pid, sink=webhook, interval_s=interval_s
        )
        engine._own_sink = webhook
        return engine

    @property
    def venue(self) -> str:
        return self._venue if isinstance(self._venue, str) else self._venue()

    def subject_of(self, rule: str) -> str:
        """What ``rule`` is about in this process: its venue, or this process."""
        return f"venue:{self.venue}" if rule in VENUE_RULES else self.process_subject

    def rule(self, name: str) -> RuleTiming:
        timing = self._rules.get(name)
        if timing is None:
            timing = self._rules[name] = self.settings.rule(name)
        return timing

    def stats(self) -> dict[str, Any]:
        """Plain data: events this process reported, store errors, the webhook's figures."""
        sink = self.sink.stats() if isinstance(self.sink, AlertWebhook) else None
        return {
            "enabled": self.settings.enabled,
            **self.counts,
            "errors": self.errors,
            "last_error": self.last_error,
            "webhook": sink,
        }

    # -- one round -------------------------------------------------------------------------

    async def evaluate(self, report: HealthReport) -> list[dict[str, Any]]:
        """Judge every rule on ``report``; the events this process reported (each also
        sent to the sink). Never raises: a store failure is logged and counted."""
        if not self.settings.enabled:
            return []
        try:
            events = await self._evaluate(report)
        except StoreError as exc:
            self.errors += 1
            self.last_error = f"{type(exc).__name__}: {exc}"[:200]
            if not self._failing:
                log.warning("alerts: the store failed (%s); judged again next round", exc)
            self._failing = True
            return []
        except Exception as exc:  # a bug: logged, and the next round runs
            self.errors += 1
            self.last_error = f"{type(exc).__name__}: {exc}"[:200]
            log.exception("alerts: evaluating a round failed unexpectedly")
            return []
        if self._failing:
            log.warning("alerts: the store answers again")
        self._failing = False
        return events

    async def _evaluate(self, report: HealthReport) -> list[dict[str, Any]]:
        now = report.at
        alerts = self.store.alerts
        opened = {
            (a.rule, a.subject): a for a in await alerts.list(open_only=True, limit=OPEN_READ_LIMIT)
        }
        checks = {c.name: c for c in report.checks}
        names = list(checks)
        names += sorted({rule for rule, subject in opened if rule not in checks})
        events: list[dict[str, Any]] = []
        judged: set[tuple[str, str]] = set()
        for name in names:
            subject = self.subject_of(name)
            if (name, subject) in judged:
                continue
            judged.add((name, subject))
            timing = self.rule(name)
            check = checks.get(name) if timing.enabled else None
            track = self._tracks.get((name, subject))
            if track is None:
                track = self._tracks[(name, subject)] = _Track()
            status: Status = "ok" if check is None else check.status
            track.judged(status, now)
            alert = opened.get((name, subject))
            if check is not None and status != "ok":
                events += await self._bad(check, subject, track, alert, timing, now)
            elif alert is not None:
                assert track.ok_since is not None
                resolve_ms = round(timing.resolve_s * 1000)
                if now - track.ok_since >= resolve_ms:
                    reason = (
                        check.reason
                        if check is not None
                        else "no longer judged by this process's health rounds"
                    )
                    events += await self._resolve(alert, now, now - resolve_ms, reason)
        for key, alert in opened.items():
            if key not in judged:
                events += await self._orphan(alert, now)
        return events

    async def _bad(
        self,
        check: Check,
        subject: str,
        track: _Track,
        alert: Alert | None,
        timing: RuleTiming,
        now: int,
    ) -> list[dict[str, Any]]:
        alerts = self.store.alerts
        value = 0.0 if check.value is None else check.value
        due = track.due(round(timing.for_s * 1000), now)
        events: list[dict[str, Any]] = []
        if alert is None:
            if due is None:
                return events
            alert = await alerts.open(
                check.name,
                subject,
                due,
                check.reason,
                value,
                _threshold(check, due),
                warning=check.warning,
                critical=check.critical,
                unit=check.unit,
                at=now,
            )
            if alert is not None:
                events.append(self._report("opened", alert, check.reason, check.value, now))
            else:  # another process opened it first: judge that one
                alert = await alerts.get_open(check.name, subject)
                if alert is None:  # ... and it was resolved meanwhile: next round
                    return events
                self.counts["adopted"] += 1
                await alerts.seen(alert.id, value=value, message=check.reason, at=now)
        else:
            await alerts.seen(alert.id, value=value, message=check.reason, at=now)
        if due == "critical" and alert.severity == "warning":
            threshold = _threshold(check, "critical")
            if await alerts.escalate(
                alert.id, threshold=threshold, value=value, message=check.reason, at=now
            ):
                raised = replace(
                    alert,
                    severity="critical",
                    escalated_at=now,
                    threshold=threshold,
                    value=value,
                    message=check.reason,
                )
                events.append(self._report("escalated", raised, check.reason, check.value, now))
        return events

    async def _resolve(
        self, alert: Alert, now: int, quiet_since: int, reason: str
    ) -> list[dict[str, Any]]:
        if not await self.store.alerts.resolve(alert.id, resolved_at=now, quiet_since=quiet_since):
            return []  # resolved by another process, or another still sees it bad
        self._tracks.pop((alert.rule, alert.subject), None)
        done = replace(alert, resolved_at=now)
        return [self._report("resolved", done, reason, None, now)]

    async def _orphan(self, alert: Alert, now: int) -> list[dict[str, Any]]:
        """An open alert about a subject this process does not judge: resolved once nobody
        has seen it bad for its rule's ``resolve_s`` plus a few rounds."""
        silent_ms = round(
            (self.rule(alert.rule).resolve_s + ORPHAN_ROUNDS * self.interval_s) * 1000
        )
        seen = alert.seen_at if alert.seen_at is not None else alert.created_at
        if now - seen < silent_ms:
            return []
        reason = f"no process has judged it beyond a threshold for {fmt(silent_ms / 1000)} s"
        return await self._resolve(alert, now, now - silent_ms, reason)

    def _report(
        self, kind: AlertEvent, alert: Alert, reason: str, value: float | None, now: int
    ) -> dict[str, Any]:
        """Count the event, send it to the sink, and return it."""
        self.counts[kind] += 1
        row = alert_row(alert)
        event = {
            "event": kind,
            **row,
            "value": row["value"] if value is None else value,
            "thresholds": {"warning": alert.warning, "critical": alert.critical},
            "reason": reason,
            "at": now,
            "at_utc": _utc(now),
            "venue": self.venue,
            "host": self.host,
            "pid": self.pid,
            "source": "mystic",
        }
        log.warning(
            "alert %s: %s about %s (%s): %s",
            kind,
            alert.rule,
            alert.subject,
            alert.severity,
            reason,
        )
        if self.sink is not None:
            try:
                taken = self.sink.send(event)
            except Exception:  # a sink that breaks its promise never stops the round
                log.exception("alerts: the sink refused an event")
                taken = False
            self.counts["sent"] += int(taken)
        return event

    async def aclose(self) -> None:
        """Close the webhook this engine made (``from_settings``), giving queued events
        their timeout to go out; idempotent."""
        if self._own_sink is not None:
            await self._own_sink.aclose()
