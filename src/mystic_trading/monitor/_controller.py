"""The controller: a deployment's control operations as plain async functions.

What ``mystic status``, ``mystic increase`` and ``mystic decrease`` do (and the HTTP API of a
later issue will), with no MarketData and no process running: it reads and writes the
control state the processes share, and never prints nor contacts the exchange::

    async with Controller.open(settings) as controller:
        seen = await controller.status()          # plain data, JSON-ready
        step = await controller.increase(reason="quiet market", actor="ops")

**What it reads.** The store (levels, bans, the audit log, alerts, the kept exchangeInfo,
heartbeats) and, when ``redis_url`` is configured, Redis (heartbeats on Redis's clock, and
the ban in the shared quota). Redis unreachable is no error: the store is read alone and the
answer says why (``redis.error``); a Redis that refuses the credentials is a ConfigError, as
for every command. A store that cannot be opened is a StoreError naming it.

**The venue.** Everything is per venue: the one given, else ``provider.venue``, else what the
configured base URL identified as when last reached (kept in the store), else the base URL's
own id, as ``mystic throttle`` finds it.

**Levels.** ``increase`` and ``decrease`` move the venue's level one step (``Level.up`` /
``down``) from the level in force (the stored one, else the setting), saved in the store
with an audit entry; every running process follows the audit log and applies it within 2 s
(``marketdata/control_watch.py``). At the top or the bottom nothing is written and the
answer says so (``changed`` False). A step between two levels whose ceilings are the same
(aggressive and unlimited are both capped at the exchange's safe rate on most budgets) is
saved and audited, as the operator asked, and the answer says it changes nothing in effect
(``effective`` False). A ceiling is the throttler's own: ``level_ceiling`` over
the safe rate a :class:`Throttler` computes for the venue's budget (the stored exchangeInfo's
REQUEST_WEIGHT limit, else ``throttle.fallback_weight_per_minute``), so the numbers shown are
the ones the processes enforce.

**Recommendations and optimize** (``monitor/_recommend.py``, ``monitor/_optimize.py``).
With no ring of figures, the evidence is the last heartbeat of every process of the venue,
alive or gone within the registry's hour: its ``recent`` block, the differences of its
counters over the last ``monitor.optimize.quiet_s`` (cut where the level in force came in),
or, for a heartbeat without one (an older version), its counters against zero at its start.
A caller that kept a ring of figures (a process, the auto-optimize leader) passes it and
the evidence is the difference between its samples. ``optimize`` applies at most one level
step, within bounds, outside the cooldown, audited with its evidence.

**Health** in ``status`` is the worst of each check over the processes alive, from the
``health`` each heartbeat carries (``{"overall", "at", "checks": {name: {"status", "value",
"unit", "reason"}}}``); ``unknown`` when no process alive reports one.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from mystic_trading.config import ProviderSettings, Settings, default_database_url
from mystic_trading.errors import ConfigError, StoreError
from mystic_trading.models import utc_text
from mystic_trading.monitor._optimize import optimize
from mystic_trading.monitor._recommend import (
    FigureHistory,
    ProcessFigures,
    Sample,
    recommend,
)
from mystic_trading.monitor._registry import Deployment, ProcessRegistry, ProcessStatus
from mystic_trading.providers.venue import venue_from_url
from mystic_trading.store import Store, open_store
from mystic_trading.store._target import parse_target
from mystic_trading.throttle import (
    Budget,
    Level,
    Throttler,
    budget_from_exchange_info,
    burst_for,
    level_ceiling,
    parse_level,
)

if TYPE_CHECKING:
    from mystic_trading.monitor._redis_beats import RedisHeartbeats
    from mystic_trading.throttle import RedisQuota

__all__ = ["Controller"]

# How far a change reaches, and how fast: the control log every process polls once a second
# (marketdata/control_watch.py, POLL_S).
APPLIED_WITHIN_S = 2.0
AUDIT_SHOWN = 5
ALERTS_SHOWN = 50
# The counters summed over the processes alive, as the heartbeat figures name them.
TOTALS = ("requests", "upstream_calls", "upstream_weight", "errors", "stale", "n429", "n418")
# Health statuses from best to worst; "unknown" when nobody reports a check.
HEALTH_ORDER = ("ok", "unknown", "warning", "critical")


def _check_sqlite_directory(settings: Settings) -> None:
    """A SQLite store whose directory does not exist is a mistyped URL (or a deployment that
    never ran), not a store to create: a command that reads and steers a deployment must not
    make an empty one and report on it, or write a level nobody will read."""
    if settings.store.url == default_database_url():
        return  # the default place, not there yet: nothing has run here; status says so
    target = parse_target(settings.store.url)
    path = target.sqlite_path
    if path is not None and not path.parent.is_dir():
        raise StoreError(
            f"no store at {target.display}: its directory {path.parent} does not exist (is "
            "store.url right? a process of the deployment, or `mystic db upgrade`, creates it)",
            target=target.display,
        )


def check_venue(venue: str) -> str:
    """``venue`` if it is a venue id as ``provider.venue`` accepts it; ConfigError otherwise."""
    try:
        ProviderSettings(venue=venue)
    except ValidationError as exc:
        why = exc.errors()[0]["msg"].removeprefix("Value error, ")
        raise ConfigError(
            f"venue {venue!r} is not a venue id: {why}", setting="venue", value=venue
        ) from exc
    return venue


def _with_alive(process: ProcessFigures, alive: bool) -> ProcessFigures:
    return ProcessFigures(
        process.process_id, process.host, process.started_at_s, alive, process.samples
    )


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


class Controller:
    """A deployment's control operations (see the module docstring); open with :meth:`open`."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        heartbeats: RedisHeartbeats | None = None,
        quota: RedisQuota | None = None,
        redis_error: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.store = store
        self.heartbeats = heartbeats
        self.quota = quota
        self.redis_error = redis_error
        self.clock = clock
        self.registry = ProcessRegistry(store, heartbeats)

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.time,
        heartbeats_prefix: str = "mystic:monitor",
        quota_prefix: str = "mystic:throttle",
    ) -> AsyncIterator[Controller]:
        """The store of ``settings`` (StoreError if it cannot be opened) and, when
        configured, Redis's heartbeats and shared quota; all closed on exit. ``clock`` is the
        wall time (seconds) stamped on writes and measured against for bans."""
        async with contextlib.AsyncExitStack() as stack:
            _check_sqlite_directory(settings)
            store = await open_store(settings.store, clock=clock)
            stack.push_async_callback(store.aclose)
            beats = quota = error = None
            if settings.redis_url is not None:
                # Imported only when Redis is configured: redis-py is a tenth of a second
                # of every `mystic status` that has no Redis.
                from redis.exceptions import AuthenticationError, AuthorizationError

                from mystic_trading.monitor._redis_beats import REDIS_FAILURES, RedisHeartbeats
                from mystic_trading.throttle import RedisQuota

                url = settings.redis_url.get_secret_value()
                beats = RedisHeartbeats(url, prefix=heartbeats_prefix)
                stack.push_async_callback(beats.aclose)
                try:
                    await beats.ping()
                except REDIS_FAILURES as exc:
                    # Unreachable: read the store alone and say why. Refused credentials:
                    # the quota's start below names the setting (ConfigError).
                    if not isinstance(exc, AuthenticationError | AuthorizationError):
                        error = beats.describe(exc)
                if error is None:
                    quota = RedisQuota(
                        url, prefix=quota_prefix, wall_ms=lambda: int(clock() * 1000)
                    )
                    stack.push_async_callback(quota.aclose)
                    await quota.start()
            yield cls(
                settings, store, heartbeats=beats, quota=quota, redis_error=error, clock=clock
            )

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    # -- the venue, its level and its ceiling -------------------------------------------

    async def venue(self, given: str | None = None) -> tuple[str, str]:
        """The venue to act on and where it came from (see the module docstring)."""
        if given:
            return check_venue(given), "given"
        if self.settings.provider.venue:
            return self.settings.provider.venue, "setting provider.venue"
        base_url = str(self.settings.provider.base_url).rstrip("/")
        known = await self.store.venues.known(base_url)
        if known is not None:
            return known.venue, f"what {base_url} identified as when last reached"
        return venue_from_url(base_url), f"the id of {base_url}"

    async def level(self, venue: str) -> tuple[Level, str]:
        """The level in force for ``venue``: the stored one, else the setting; and which."""
        stored = await self.store.control.load_level(venue)
        if stored is not None:
            return parse_level(stored), "store"
        return parse_level(self.settings.throttle.level), "setting throttle.level"

    async def budget(self, venue: str) -> tuple[Budget, str, int | None]:
        """The venue's budget, as every process will take it: the kept exchangeInfo's
        REQUEST_WEIGHT limit, else the fallback setting; its source and the info's stamp."""
        fallback = self.settings.throttle.fallback_weight_per_minute
        kept = await self.store.venues.load_info(venue)
        if kept is not None:
            try:
                raw = json.loads(kept[0].value)
            except ValueError:
                raw = None
            limits = raw.get("rateLimits") if isinstance(raw, Mapping) else None
            if isinstance(limits, list) and any(
                isinstance(item, Mapping) and item.get("rateLimitType") == "REQUEST_WEIGHT"
                for item in limits
            ):
                assert isinstance(raw, Mapping)
                budget = budget_from_exchange_info(raw, fallback_limit=fallback)
                return budget, "exchangeInfo kept in the store", kept[0].fetched_at
        budget = Budget(limit=fallback, window_s=60.0, max_weight=burst_for(fallback))
        return budget, "setting throttle.fallback_weight_per_minute", None

    def rates(self, venue: str, budget: Budget) -> tuple[float, float]:
        """The safe rate of ``budget`` (weight/s: its limit less the safety margin) and the
        reference weight, computed by a Throttler exactly as a process's
        (``Throttler.set_budget``); it is never started, so it sends nothing."""
        throttler = Throttler(venue, budget, settings=self.settings.throttle)
        return throttler.safe_rate, throttler.reference_weight

    async def ceilings(self, venue: str) -> dict[Level, float]:
        """Each level's ceiling for ``venue`` in weight per second."""
        budget, _, _ = await self.budget(venue)
        safe_rate, reference_weight = self.rates(venue, budget)
        return {
            level: level_ceiling(level, reference_weight=reference_weight, safe_rate=safe_rate)
            for level in Level
        }

    # -- changing the level -------------------------------------------------------------

    async def clear_ban(
        self, *, venue: str | None = None, actor: str = "operator", reason: str = ""
    ) -> dict[str, Any]:
        """Lift the venue's ban in the store (audited) and in the shared quota in Redis: a
        stale ban, e.g. a sandbox's. If the exchange's ban is real, the next request earns
        a longer one. Every running process applies it within 2 s."""
        name, _ = await self.venue(venue)
        in_store = await self.store.control.clear_ban(
            name, actor=actor, reason=reason or "ban lifted"
        )
        in_redis = False
        if self.quota is not None:
            in_redis = await self.quota.banned_until(name) is not None
            await self.quota.clear_ban(name)
        cleared = in_store or in_redis
        return {
            "venue": name,
            "cleared": cleared,
            "in_store": in_store,
            "in_redis": in_redis,
            "message": f"{name}: ban lifted" if cleared else f"{name}: there was no ban to lift",
        }

    async def clear(
        self,
        *,
        venue: str | None = None,
        memory: bool = True,
        redis: bool = True,
        query_cache: bool = True,
        symbol: str | None = None,
        actor: str = "operator",
        reason: str = "",
    ) -> dict[str, Any]:
        """Clear cached answers of the venue (all, or one symbol's) in the layers asked, in
        every running process within 2 s, audited (``monitor/_clear.py``). Stored candles
        are never deleted. Adds ``processes_alive``, the processes that will apply it."""
        from mystic_trading.monitor._clear import clear_deployment

        name, _ = await self.venue(venue)
        url = self.settings.redis_url
        done = await clear_deployment(
            self.store,
            venue=name,
            memory=memory,
            redis=redis,
            query_cache=query_cache,
            symbol=symbol,
            actor=actor,
            reason=reason,
            redis_url=None if url is None else url.get_secret_value(),
        )
        alive = (await self.registry.read(name)).alive
        return {**done, "processes_alive": len(alive)}

    async def increase(
        self, *, reason: str = "", actor: str = "operator", venue: str | None = None
    ) -> dict[str, Any]:
        """One level up for the venue; at the top nothing changes (``changed`` False)."""
        name, _ = await self.venue(venue)
        current, _ = await self.level(name)
        up = current.up()
        if up is None:
            return await self._unchanged(name, current, "highest")
        return await self._save(name, current, up, actor=actor, reason=reason or "increase")

    async def decrease(
        self, *, reason: str = "", actor: str = "operator", venue: str | None = None
    ) -> dict[str, Any]:
        """One level down for the venue; at the bottom nothing changes (``changed`` False)."""
        name, _ = await self.venue(venue)
        current, _ = await self.level(name)
        down = current.down()
        if down is None:
            return await self._unchanged(name, current, "lowest")
        return await self._save(name, current, down, actor=actor, reason=reason or "decrease")

    async def set_level(
        self,
        level: Level | str,
        *,
        reason: str = "",
        actor: str = "operator",
        venue: str | None = None,
    ) -> dict[str, Any]:
        """Set the venue's level (ConfigError naming the accepted ones for an unknown one);
        the level already in force changes nothing."""
        new = parse_level(level, setting="level")
        name, _ = await self.venue(venue)
        current, _ = await self.level(name)
        if new is current:
            return await self._unchanged(name, current, None)
        return await self._save(name, current, new, actor=actor, reason=reason or "set level")

    async def _save(
        self, venue: str, old: Level, new: Level, *, actor: str, reason: str
    ) -> dict[str, Any]:
        await self.store.control.save_level(venue, new.value, actor=actor, reason=reason)
        message = (
            f"{venue}: level {old.value} -> {new.value}; every running process applies it "
            f"within {APPLIED_WITHIN_S:g} s"
        )
        return await self._change(venue, old, new, changed=True, message=message)

    async def _unchanged(self, venue: str, level: Level, end: str | None) -> dict[str, Any]:
        message = (
            f"{venue}: already at the {end} level ({level.value}); nothing changed"
            if end
            else f"{venue}: level already {level.value}; nothing changed"
        )
        return await self._change(venue, level, level, changed=False, message=message)

    async def _change(
        self, venue: str, old: Level, new: Level, *, changed: bool, message: str
    ) -> dict[str, Any]:
        ceilings = await self.ceilings(venue)
        alive = (await self.registry.read(venue)).alive
        effective = ceilings[new] != ceilings[old]
        if changed and not effective:
            message += (
                f"; no effective change: both levels are capped at the exchange's safe rate "
                f"({ceilings[new] * 60:,.0f} weight/min), so the ceiling stays the same"
            )
        return {
            "venue": venue,
            "from": old.value,
            "to": new.value,
            "changed": changed,
            "effective": changed and effective,
            "ceiling_weight_per_s": ceilings[new],
            "ceiling_weight_per_min": ceilings[new] * 60,
            "from_ceiling_weight_per_min": ceilings[old] * 60,
            "processes_alive": len(alive),
            "applied_within_s": APPLIED_WITHIN_S if changed else None,
            "message": message,
        }

    # -- status -------------------------------------------------------------------------

    async def status(self, venue: str | None = None) -> dict[str, Any]:
        """The deployment of the venue at a glance, as plain data (see ``mystic status``)."""
        name, venue_source = await self.venue(venue)
        level, level_source = await self.level(name)
        state = await self.store.control.load(name)
        budget, budget_source, info_at = await self.budget(name)
        safe_rate, reference_weight = self.rates(name, budget)
        ceiling = level_ceiling(level, reference_weight=reference_weight, safe_rate=safe_rate)
        deployment = await self.registry.read()
        mine = [p for p in deployment.processes if p.heartbeat.venue == name]
        alive = [p for p in mine if p.alive]
        others: dict[str, int] = {}
        for p in deployment.alive:
            if p.heartbeat.venue != name:
                others[p.heartbeat.venue] = others.get(p.heartbeat.venue, 0) + 1
        used_per_s = sum(_number(p.heartbeat.figures.get("weight_per_s")) for p in alive)
        now = self.now_ms()
        limit_per_min = budget.limit * 60 / budget.window_s
        return {
            "venue": name,
            "venue_source": venue_source,
            "now": utc_text(now),
            "store": {"backend": self.store.backend, "target": self.store.target},
            "redis": {
                "configured": self.settings.redis_url is not None,
                "available": None
                if self.settings.redis_url is None
                else self.redis_error is None and "redis" in deployment.read_from,
                "error": self.redis_error or deployment.errors.get("redis"),
            },
            "level": {
                "name": level.value,
                "source": level_source,
                "set_at": utc_text(state.updated_at) if state and state.level else None,
                "set_by": state.updated_by if state and state.level else None,
                "ceiling_weight_per_s": ceiling,
                "ceiling_weight_per_min": ceiling * 60,
                "highest": level.up() is None,
                "lowest": level.down() is None,
            },
            "limit": {
                "weight": budget.limit,
                "window_s": budget.window_s,
                "weight_per_min": limit_per_min,
                "safe_weight_per_min": safe_rate * 60,
                "safety_margin": self.settings.throttle.safety_margin,
                "burst": budget.max_weight,
                "source": budget_source,
                "info_kept_at": None if info_at is None else utc_text(info_at),
            },
            "weight_used": {
                "weight_per_s": used_per_s,
                "weight_per_min": used_per_s * 60,
                "of_limit_pct": 100 * used_per_s * 60 / limit_per_min,
                "of_ceiling_pct": 100 * used_per_s / ceiling if ceiling else None,
                "processes": len(alive),
            },
            "pause": self._pause(alive),
            "ban": await self._ban(name, now),
            "processes": [self._process(p) for p in mine],
            "alive": len(alive),
            "gone": len(mine) - len(alive),
            "totals": {**self._totals(alive), "weight_per_s": used_per_s},
            "other_venues": dict(sorted(others.items())),
            "heartbeats": {
                "read_from": list(deployment.read_from),
                "errors": dict(deployment.errors),
            },
            "health": self._health(alive),
            "recommendations": len(
                (await self.recommendations(name, deployment=deployment))["recommendations"]
            ),
            "alerts": await self._alerts(),
            "audit": await self._audit(name),
        }

    @staticmethod
    def _health(alive: list[ProcessStatus]) -> dict[str, Any]:
        """Each check's worst status over the processes alive (with that process's value
        and reason, and how many reported it); ``overall`` the worst of them."""
        worst: dict[str, dict[str, Any]] = {}
        for p in alive:
            health = p.heartbeat.figures.get("health")
            checks = health.get("checks") if isinstance(health, Mapping) else None
            if not isinstance(checks, Mapping):
                continue
            for check, seen in checks.items():
                if not isinstance(seen, Mapping):
                    continue
                status = str(seen.get("status"))
                rank = HEALTH_ORDER.index(status) if status in HEALTH_ORDER else 1
                known = worst.get(check)
                if known is None or rank > HEALTH_ORDER.index(known["status"]):
                    worst[check] = {
                        "name": check,
                        "status": HEALTH_ORDER[rank],
                        "value": seen.get("value"),
                        "unit": seen.get("unit"),
                        "reason": seen.get("reason"),
                        "process": p.process_id,
                        "processes": (known or {}).get("processes", 0) + 1,
                    }
                else:
                    known["processes"] += 1
        checks_out = [worst[name] for name in sorted(worst)]
        overall = (
            max((c["status"] for c in checks_out), key=HEALTH_ORDER.index)
            if checks_out
            else "unknown"
        )
        return {"overall": overall, "checks": checks_out}

    # -- recommendations and optimize ----------------------------------------------------

    async def recommendations(
        self,
        venue: str | None = None,
        *,
        history: FigureHistory | None = None,
        own: ProcessFigures | None = None,
        deployment: Deployment | None = None,
    ) -> dict[str, Any]:
        """The venue's recommendations (plain data), from the heartbeats of its processes
        (alive, and gone within the hour); ``history`` holds rings of their figures where
        kept, ``own`` the calling process's own ring (see the module docstring)."""
        name, _ = await self.venue(venue)
        level, _ = await self.level(name)
        ceilings = await self.ceilings(name)
        if deployment is None:
            deployment = await self.registry.read(name)
        processes = []
        for p in deployment.processes:
            if p.heartbeat.venue != name:
                continue
            if own is not None and own.process_id == p.process_id:
                processes.append(_with_alive(own, p.alive))
                own = None
                continue
            kept = None if history is None else history.process(p.process_id, alive=p.alive)
            beat = p.heartbeat
            processes.append(
                kept
                if kept is not None
                else ProcessFigures(
                    beat.process_id,
                    beat.host,
                    beat.started_at / 1000,
                    p.alive,
                    (Sample(beat.beat_at / 1000, beat.figures),),
                )
            )
        if own is not None:  # the caller does not beat (monitor off) or not yet
            processes.append(_with_alive(own, True))
        found = recommend(processes, self.settings, level=level, ceilings=ceilings)
        return {
            "venue": name,
            "now": utc_text(self.now_ms()),
            "level": level.value,
            "processes": len(processes),
            "alive": sum(1 for p in processes if p.alive),
            "recommendations": [r.as_dict() for r in found],
        }

    async def optimize(
        self,
        venue: str | None = None,
        *,
        dry_run: bool = False,
        actor: str = "optimize",
        reason: str = "",
        history: FigureHistory | None = None,
        own: ProcessFigures | None = None,
    ) -> dict[str, Any]:
        """Apply the safe recommendations within bounds: at most one level step, outside
        the cooldown, audited with its evidence; ``dry_run`` shows without applying."""
        return await optimize(
            self, venue, dry_run=dry_run, actor=actor, reason=reason, history=history, own=own
        )

    @staticmethod
    def _totals(alive: list[ProcessStatus]) -> dict[str, int]:
        """The counters of the processes alive, summed (gone ones' runs are over)."""
        return {
            key: int(sum(_number(p.heartbeat.figures.get(key)) for p in alive)) for key in TOTALS
        }

    @staticmethod
    def _process(p: ProcessStatus) -> dict[str, Any]:
        beat, figures = p.heartbeat, p.heartbeat.figures
        return {
            "id": beat.process_id,
            "host": beat.host,
            "pid": beat.pid,
            "venue": beat.venue,
            "version": beat.version,
            "state": "alive" if p.alive else "stopped" if p.stopped else "gone",
            "alive": p.alive,
            "started_at": utc_text(beat.started_at),
            "last_beat_at": utc_text(beat.beat_at),
            "age_s": round(p.age_s, 3),
            "keeper": p.keeper,
            "level": figures.get("level"),
            "ceiling_weight_per_s": figures.get("ceiling"),
            "weight_per_s": _number(figures.get("weight_per_s")),
            **{key: int(_number(figures.get(key))) for key in TOTALS},
            "figures": dict(figures),
        }

    @staticmethod
    def _pause(alive: list[ProcessStatus]) -> dict[str, Any]:
        """A 429 pause as the processes alive last reported it: the one with most left.
        Its end is dated on the clock of the keeper that holds the beat."""
        best: tuple[float, ProcessStatus] | None = None
        for p in alive:
            left = _number(p.heartbeat.figures.get("paused_for_s")) - p.age_s
            if left > 0 and (best is None or left > best[0]):
                best = (left, p)
        if best is None:
            return {"paused": False, "until": None, "until_ms": None, "remaining_s": 0.0}
        left, p = best
        until = p.heartbeat.beat_at + round(_number(p.heartbeat.figures["paused_for_s"]) * 1000)
        return {
            "paused": True,
            "until": utc_text(until),
            "until_ms": until,
            "remaining_s": round(left, 3),
        }

    async def _ban(self, venue: str, now: int) -> dict[str, Any]:
        """The venue's ban: the store's and the shared quota's, whichever ends last."""
        record = await self.store.control.ban(venue)
        in_redis = None if self.quota is None else await self.quota.banned_until(venue)
        ends = [u for u in (None if record is None else record.until_ms, in_redis) if u]
        until = max(ends) if ends else None
        return {
            "banned": until is not None and until > now,
            "until": None if until is None else utc_text(until),
            "until_ms": until,
            "remaining_s": 0.0 if until is None else max(0.0, (until - now) / 1000),
            "reason": None if record is None else record.reason,
            "in_store": record is not None,
            "in_redis": in_redis is not None,
        }

    async def _alerts(self) -> list[dict[str, Any]]:
        from mystic_trading.monitor._alerts import alert_rows

        return await alert_rows(self.store, open_only=True, limit=ALERTS_SHOWN)

    async def _audit(self, venue: str) -> list[dict[str, Any]]:
        return [
            {
                "id": c.id,
                "at": utc_text(c.at),
                "field": c.field,
                "actor": c.actor,
                "from": c.from_value,
                "to": c.to_value,
                "reason": c.reason,
            }
            for c in await self.store.control.audit(venue, limit=AUDIT_SHOWN)
        ]
