"""The Throttler: one provider's budget, level, adaptive rate, queue, retries and stats.

Use it around every upstream call, either by hand::

    async with throttler.slot("/api/v3/klines", 2) as slot:
        response = await client.get(url, params=params)
        slot.record(response.status_code, response.headers)

or with retries (idempotent GETs; 429/5xx/timeouts; backoff with full jitter, Retry-After,
a retry budget)::

    response = await throttler.call("/api/v3/klines", 2, lambda: client.get(url))

Admission: a request takes its weight from the :class:`Quota` at the current adaptive rate
(never above the level's ceiling, never above the exchange's safe rate) or waits in the
:class:`WaitQueue`. The quota paces with a GCRA and counts each of the exchange's fixed
windows, on the exchange's clock (``exchange_ms``, within ``exchange_error_ms``), up to the
rate's share of the window (see ``_gcra``). One dispatcher task serves the queue in order,
sleeping until the head's weight is nearly free; with nobody queued a caller is admitted on
the spot (the fast path). The one exception to the order: when the head cannot start before
the window ends, lighter waiters behind it take what is left of the window (the head goes
first in the next one; ``_fill_window``).
A grant may come up to the quota's ``reserve_ahead_s`` early: it is charged at its exact
start and the caller sleeps until then, so event-loop latency never wastes budget.
A 429 pauses the whole budget for its Retry-After (every caller, every process sharing the
quota); a 418 bans the provider until its end (kept in the :class:`ControlStateStore`, so a
restarted process sends nothing), and every caller gets :class:`Banned` at once.

A ban answered by the quota (another process earned it) stops queued callers at once too,
dated by the time it has left, so a quota whose clock differs from ours can never leave a
caller queued behind a ban we think is over. A request granted ahead asks the quota for a
ban again after its sleep, so a peer's ban recorded meanwhile stops it before it is sent.
:meth:`Throttler.refresh_control` applies the control state as it is now: a level set
elsewhere, a ban recorded elsewhere, and a ban lifted by an operator.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx

from mystic_trading.config import ThrottleSettings
from mystic_trading.errors import (
    Banned,
    ConfigError,
    RateLimited,
    ThrottleError,
    UpstreamError,
    UpstreamUnavailable,
)
from mystic_trading.throttle._adaptive import AimdController
from mystic_trading.throttle._control import ControlStateStore, MemoryControlStore
from mystic_trading.throttle._gcra import Grant
from mystic_trading.throttle._levels import Level, LevelChange, level_ceiling, parse_level
from mystic_trading.throttle._queue import Priority, Waiter, WaitQueue
from mystic_trading.throttle._quota import BucketSpec, MemoryQuota, Quota, wall_clock_ms
from mystic_trading.throttle._retry import RETRYABLE, Backoff, RetryBudget
from mystic_trading.throttle._slot import HttpResponse, Outcome, Slot
from mystic_trading.throttle._stats import ThrottleStats, UsageStats
from mystic_trading.throttle._weights import Budget

__all__ = ["Throttler"]

log = logging.getLogger("mystic_trading.throttle")

R = TypeVar("R", bound=HttpResponse)
# An admission gate: (endpoint, weight) -> None, raising to refuse (see add_gate).
Gate = Callable[[str, int], Awaitable[None]]

# Slack on each side of a window boundary within which a usage header is not trusted to
# belong to the window we think: covers clock offset to the exchange and the round trip.
_HEADER_SKEW_S = 0.05

# How many lighter waiters the dispatcher looks at per pass when the head cannot fit in what is
# left of the exchange's window (see Throttler._fill_window).
_FILL_SCAN = 256

# A ban end the control store knows is handed to the quota only when it is later than the
# quota's by more than this: ends dated on two clocks differ by a few ms for the same ban.
_BAN_SLACK_MS = 1_000


def _wake_up(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _utc_text(ms: int) -> str:
    """UTC epoch ms as ``2026-12-02 07:30:05 UTC``."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _span_text(ms: int) -> str:
    """A duration in its two largest units: ``1h 59m``, ``2d 3h``, ``4m 10s``, ``45s``."""
    seconds = max(0, math.ceil(ms / 1000))
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {seconds}s"
    return f"{seconds}s"


class Throttler:
    """Rate control for one provider; see the module docstring."""

    # The GCRA paces this much faster than each exchange window's cap allows on average, so
    # a moment without demand (callers busy, the event loop late) is made up before the
    # window ends instead of being lost; the window's cap keeps the total.
    pace = 1.05

    def __init__(
        self,
        provider: str,
        budget: Budget,
        *,
        settings: ThrottleSettings | None = None,
        quota: Quota | None = None,
        control: ControlStateStore | None = None,
        reference_weight: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        wall_ms: Callable[[], int] = wall_clock_ms,
        exchange_ms: Callable[[], float] | None = None,
        exchange_error_ms: Callable[[], float | None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings or ThrottleSettings()
        if not reference_weight > 0:
            raise ConfigError(
                f"reference_weight must be positive, got {reference_weight!r}",
                setting="reference_weight",
                value=reference_weight,
            )
        self.provider = provider
        self.clock = clock
        self.wall_ms = wall_ms
        # The exchange's clock (UTC epoch ms) and its error bound, where its windows are
        # counted: an ExchangeClock's now_ms and error_ms; this host's clock by default.
        self.exchange_ms: Callable[[], float] = exchange_ms or wall_ms
        self.exchange_error_ms = exchange_error_ms
        self.reference_weight = reference_weight
        self._quota: Quota = (
            quota if quota is not None else MemoryQuota(clock=clock, wall_ms=wall_ms)
        )
        self._control: ControlStateStore = control or MemoryControlStore()
        self._level = parse_level(self.settings.level)
        self.budget = budget
        self._limit_eff = 0.0
        self._safe_rate = 0.0
        self._aimd = AimdController(1.0, window_s=budget.window_s, now=clock())
        self._wake: asyncio.Future[None] | None = None
        self.set_budget(budget)
        self._queue = WaitQueue(self.settings.queue_max, clock=clock, on_head_change=self._kick)
        self._backoff = Backoff(rng=rng)
        self._retry_budget = RetryBudget(ratio=self.settings.retry_budget)
        self._stats = ThrottleStats(budget.window_s)
        self._usage = UsageStats(_HEADER_SKEW_S)
        self._paused_until = -float("inf")
        self._last_429_at = -float("inf")
        self._banned_until_ms = 0
        # Bumped whenever a ban is noted; with the count of 418s still being recorded it
        # keeps refresh_control from lifting a ban it read the store and quota too early for.
        self._ban_epoch = 0
        self._recording_bans = 0
        self._store_has_ban = False  # as last read or written here
        self._window_used = (-1, 0)
        self._started = False
        self._closed = False
        self._dispatcher: asyncio.Task[None] | None = None
        self._reserving = False
        # While the head waits for the next window: newcomers lighter than this may still fit
        # in what is left of this one (see _fill_window); 0 otherwise.
        self._fill_below = 0
        self._background: set[asyncio.Task[Any]] = set()
        self._gates: list[Gate] = []

    def add_gate(self, gate: Gate) -> None:
        """Call ``gate(endpoint, weight)`` as each request (each retry too) comes to be
        admitted, before any weight is reserved or it waits in the queue: raising refuses it
        there, with nothing spent of the budget (the service's per-client shares)."""
        if gate not in self._gates:
            self._gates.append(gate)

    # -- life cycle -------------------------------------------------------------------------

    async def __aenter__(self) -> Throttler:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Check the quota (ConfigError on a wrong Redis password) and load the level and
        any ban from the control store; done on first use if not called."""
        if self._started:
            return
        self._started = True
        try:
            await self._quota.start()
            await self.refresh_control()
        except BaseException:
            self._started = False
            raise

    async def refresh_control(self) -> None:
        """Apply the control state as it is now in the control store and the shared quota.

        The level kept in the store is applied if it changed. A ban either holds (the
        store's, if it has not ended, or the shared quota's) stops every call, and a ban the
        store holds but the quota does not is handed to the quota. A ban neither holds any
        more (an operator ran ``mystic throttle ban clear``) is lifted here, with a log line,
        unless this process noted a ban meanwhile or is still recording one.

        A quota of this process only (``mode == "memory"``) is no one else's truth: the ban
        is lifted when the store held it and no longer does, and the quota's copy goes too.

        Cheap enough to call about once a second: two reads of the store and one of the
        quota; the quota is written only when the store knows a ban it does not.
        """
        epoch = self._ban_epoch
        level = await self._control.load_level(self.provider)
        if level is not None:
            new = parse_level(level)
            if new is not self._level:
                self._apply_level(new)
        stored = await self._control.load_ban(self.provider)
        shared = await self._quota.banned_until(self.provider)
        local_only = self._quota.mode == "memory"
        now = self.wall_ms()
        if stored is not None and stored <= now:
            stored = None
        store_had_it, self._store_has_ban = self._store_has_ban, stored is not None
        live = [u for u in (stored, None if local_only else shared) if u is not None]
        if live:
            # The quota answers only bans in force, whatever its clock says of their end.
            self._note_ban(max(*live, now + 1))
            if stored is not None and (shared is None or stored > shared + _BAN_SLACK_MS):
                await self._quota.ban(self.provider, stored)
            return
        if local_only and not store_had_it:
            return  # nothing was cleared: the quota's ban, if any, is this process's own
        if self._ban_epoch != epoch or self._recording_bans:
            return  # a ban noted meanwhile, or not yet in the store and quota
        if local_only and shared is not None:
            await self._quota.clear_ban(self.provider)
        if self._banned_until_ms > self.wall_ms():
            log.warning(
                "%s: the ban until %s is lifted (no longer in the control store%s); calls go "
                "out again",
                self.provider,
                _utc_text(self._banned_until_ms),
                "" if local_only else " nor in the shared quota",
            )
        self._banned_until_ms = 0

    async def aclose(self) -> None:
        """Stop the dispatcher, fail queued callers, close the quota (as httpx does)."""
        if self._closed:
            return
        self._closed = True
        self._queue.fail_all(ThrottleError(f"throttler for {self.provider} closed"))
        tasks = [t for t in (self._dispatcher, *self._background) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._quota.aclose()

    # -- budget and level -------------------------------------------------------------------

    def set_budget(self, budget: Budget) -> None:
        """A new exchange budget (e.g. a fresh exchangeInfo); rates follow at once."""
        limit_eff = budget.limit * (1 - self.settings.safety_margin)
        if limit_eff - budget.max_weight <= 0 and limit_eff >= 2:
            # A budget this small after the margin keeps a quarter of itself as the burst.
            budget = replace(budget, max_weight=max(1, round(limit_eff) // 4))
        if not limit_eff - budget.max_weight > 0:
            raise ConfigError(
                f"budget {budget.limit}/{budget.window_s}s less the "
                f"{self.settings.safety_margin:.0%} margin leaves no room for the heaviest "
                f"request, weight {budget.max_weight}",
                setting="max_weight",
                value=budget.max_weight,
            )
        # Each exchange window is counted (see _gcra), so the whole limit less the margin is
        # the rate: no burst is kept aside.
        safe_rate = limit_eff / budget.window_s
        self.budget, self._limit_eff, self._safe_rate = budget, limit_eff, safe_rate
        self._aimd.set_ceiling(self.ceiling, self.clock())
        self._kick()

    @property
    def level(self) -> Level:
        """The current level."""
        return self._level

    @property
    def ceiling(self) -> float:
        """The level's ceiling, weight per second, clamped to the exchange's safe rate."""
        return level_ceiling(
            self._level, reference_weight=self.reference_weight, safe_rate=self._safe_rate
        )

    @property
    def safe_rate(self) -> float:
        """The exchange's limit less the margin, per second ("unlimited")."""
        return self._safe_rate

    def rate(self) -> float:
        """The adaptive rate in force, weight per second."""
        return self._aimd.rate(self.clock())

    def _apply_level(self, level: Level) -> None:
        self._level = level
        self._aimd.set_ceiling(self.ceiling, self.clock())
        self._kick()

    async def set_level(self, level: Level | str, *, actor: str, reason: str) -> LevelChange:
        """Set the level and keep it in the control store."""
        new = parse_level(level)
        old = self._level
        self._apply_level(new)
        await self._control.save_level(self.provider, new.value, actor=actor, reason=reason)
        moved = new is not old
        message = (
            f"{self.provider}: level {old.value} -> {new.value}"
            if moved
            else (f"{self.provider}: level already {new.value}")
        )
        return LevelChange(self.provider, old, new, moved, message)

    async def increase(self, *, actor: str = "operator", reason: str = "") -> LevelChange:
        """One level up; at the top nothing changes and the message says so."""
        up = self._level.up()
        if up is None:
            return LevelChange(
                self.provider,
                self._level,
                self._level,
                False,
                f"{self.provider}: already at the highest level ({self._level.value}); "
                "nothing changed",
            )
        return await self.set_level(up, actor=actor, reason=reason or "increase")

    async def decrease(self, *, actor: str = "operator", reason: str = "") -> LevelChange:
        """One level down; at the bottom nothing changes and the message says so."""
        down = self._level.down()
        if down is None:
            return LevelChange(
                self.provider,
                self._level,
                self._level,
                False,
                f"{self.provider}: already at the lowest level ({self._level.value}); "
                "nothing changed",
            )
        return await self.set_level(down, actor=actor, reason=reason or "decrease")

    # -- admission --------------------------------------------------------------------------

    def slot(
        self,
        endpoint: str,
        weight: int,
        *,
        priority: Priority = Priority.INTERACTIVE,
        deadline_s: float | None = None,
    ) -> Slot:
        """An async context manager admitting one request; record its answer inside."""
        if not 1 <= weight <= self.budget.max_weight:
            raise ValueError(
                f"weight {weight!r} of {endpoint} outside 1..{self.budget.max_weight} "
                "(the budget's max_weight)"
            )
        timeout = self.settings.default_deadline_s if deadline_s is None else deadline_s
        return Slot(self, endpoint, weight, Priority(priority), self.clock() + timeout)

    def _spec(self, now: float) -> BucketSpec:
        """The GCRA at the adaptive rate, and each exchange window capped at the exchange's
        limit less the margin. A lower level or an adaptive cut is a rate, not a smaller
        cap: a cap at the new rate's share would stall every caller until the window ends
        when the level drops after most of the window is spent (measured: a decrease to
        conservative sent nothing for the rest of the minute). The GCRA paces above the
        rate only at the top, where the cap binds and keeps the total; below it the rate is
        the operator's ceiling (or the controller's cut) and is kept as is."""
        rate = self._aimd.rate(now)
        window = self.budget.window_s
        error = self.exchange_error_ms() if self.exchange_error_ms is not None else None
        pace = self.pace if rate >= self._safe_rate * (1 - 1e-9) else 1.0
        return BucketSpec(
            rate * pace,
            self.budget.max_weight,
            window,
            cap=self._limit_eff,
            exchange_s=self.exchange_ms() / 1000,
            skew_s=0.0 if error is None else error / 1000,
        )

    def _banned(self, endpoint: str = "") -> Banned:
        until = self._banned_until_ms
        return Banned(
            f"{self.provider} has banned this IP until {_utc_text(until)} "
            f"(in {_span_text(until - self.wall_ms())}); nothing is sent before then",
            provider=self.provider,
            endpoint=endpoint,
            until=until,
        )

    def _check_ban(self, endpoint: str) -> None:
        if self._banned_until_ms > self.wall_ms():
            raise self._banned(endpoint)

    def _ban_end(self, grant: Grant) -> int:
        """A ban the quota answered, dated on our clock: by the time it has left, so a quota
        whose clock differs from ours still gives a ban that is in force here."""
        assert grant.banned_until_ms is not None
        return max(grant.banned_until_ms, self.wall_ms() + max(1, math.ceil(grant.delay_s * 1000)))

    async def _reserve(self, weight: int, max_delay: float) -> Grant:
        try:
            return await self._quota.reserve(
                self.provider, weight, self._spec(self.clock()), max_delay
            )
        except Exception as exc:
            log.exception("throttle quota failed for %s", self.provider)
            raise ThrottleError(f"throttle quota failed for {self.provider}: {exc!r}") from exc

    async def _shared_ban(self) -> None:
        """Note a ban the quota holds now (another process may have recorded it)."""
        try:
            until = await self._quota.banned_until(self.provider)
        except Exception as exc:
            log.exception("throttle quota failed for %s", self.provider)
            raise ThrottleError(f"throttle quota failed for {self.provider}: {exc!r}") from exc
        if until is not None:
            self._note_ban(max(until, self.wall_ms() + 1))

    async def _admit(self, slot: Slot) -> None:
        if self._closed:
            raise ThrottleError(f"throttler for {self.provider} is closed")
        if not self._started:
            await self.start()
        self._check_ban(slot.endpoint)
        for gate in self._gates:
            await gate(slot.endpoint, slot.weight)
        entered = self.clock()
        while True:
            delay = -1.0
            if not self._queue and not self._reserving and self.clock() >= self._paused_until:
                grant = await self._reserve(slot.weight, self._quota.reserve_ahead_s)
                if grant.banned_until_ms is not None:
                    self._note_ban(self._ban_end(grant))
                    raise self._banned(slot.endpoint)
                if grant.granted:
                    delay = grant.delay_s
            if delay < 0:
                waiter = self._queue.push(slot.endpoint, slot.weight, slot.priority, slot.deadline)
                self._ensure_dispatcher()
                if slot.weight < self._fill_below:
                    self._kick()  # it may fit in what the blocked head leaves of the window
                delay = await waiter.future
            if delay <= 0:
                break
            # Granted ahead of time (the weight is counted at its exact start, so a late
            # wake-up loses no budget): a 429 or 418 that arrives meanwhile still stops it,
            # and so does a ban another process recorded in the shared quota meanwhile.
            await asyncio.sleep(delay)
            self._check_ban(slot.endpoint)
            await self._shared_ban()
            self._check_ban(slot.endpoint)
            if self.clock() >= self._paused_until:
                break
        slot.sent_at = self.clock()
        slot.sent_wall_ms = self.exchange_ms()
        slot.waited_s = slot.sent_at - entered
        self._stats.admitted(slot.endpoint, slot.weight, slot.waited_s, slot.sent_at)
        self._usage.sent(slot.sent_wall_ms / 1000, slot.weight, self.budget.window_s)

    def _ensure_dispatcher(self) -> None:
        if self._dispatcher is None or self._dispatcher.done():
            self._dispatcher = asyncio.get_running_loop().create_task(
                self._dispatch(), name=f"throttle-dispatch-{self.provider}"
            )

    def _kick(self) -> None:
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    async def _nap(self, seconds: float | None) -> None:
        loop = asyncio.get_running_loop()
        self._wake = wake = loop.create_future()
        handle = None
        if seconds is not None:
            handle = loop.call_later(max(seconds, 0.0), _wake_up, wake)
        try:
            await wake
        finally:
            if handle is not None:
                handle.cancel()
            self._wake = None

    async def _dispatch(self) -> None:
        while True:
            waiter = self._queue.peek()
            if waiter is None:
                await self._nap(None)
                continue
            now = self.clock()
            if now < self._paused_until:
                await self._nap(self._paused_until - now)
                continue
            grant = await self._reserve_for(waiter)
            if grant is None:
                continue
            if grant.banned_until_ms is not None:
                # Fails every waiter, the head included, even when the ban is one we knew:
                # nothing stays queued behind a ban, so this loop cannot spin on it.
                self._note_ban(self._ban_end(grant))
            elif grant.granted:
                self._fill_below = 0
                self._queue.admit(waiter, grant.delay_s)
            else:
                filled, retry_s = await self._fill_window(waiter, grant.delay_s)
                if not filled:
                    await self._nap(min(grant.delay_s, retry_s) - self._quota.reserve_ahead_s / 2)
                    self._fill_below = 0

    async def _reserve_for(self, waiter: Waiter) -> Grant | None:
        """Reserve ``waiter``'s weight; None when the quota failed, which the waiter (if it
        still waits) is given as its answer."""
        self._reserving = True
        try:
            return await self._reserve(waiter.weight, self._quota.reserve_ahead_s)
        except ThrottleError as exc:
            if waiter.live:
                waiter.future.set_exception(exc)
            return None
        finally:
            self._reserving = False

    async def _fill_window(self, head: Waiter, delay: float) -> tuple[bool, float]:
        """Admit lighter waiters into what is left of the window ``head`` cannot start in.

        Only when the head's earliest start is past the end of the exchange's window: it
        would wait for the next window anyway, and goes first there (a waiter admitted here
        charges this window, or the next one by at most the quota's reservation horizon).
        Without this, up to one heavy request's weight of every window went unspent. At most
        ``_FILL_SCAN`` waiters are looked at per pass, and only those lighter than every one
        refused in it are tried (what is left of the window only shrinks). Answers whether any
        was admitted (or a ban ended the queue), so the dispatcher looks at the head again,
        and otherwise how soon one refused by the pace alone could go (``delay`` if none).
        """
        remaining = self._window_remaining(self.exchange_ms() / 1000)
        if delay <= remaining:
            self._fill_below = 0
            return False, delay
        admitted = False
        retry_s = delay
        refused = head.weight  # what is left only shrinks: nothing this heavy fits any more
        for waiter in self._queue.behind(head, _FILL_SCAN):
            if not waiter.live or waiter.weight >= refused:
                continue
            grant = await self._reserve_for(waiter)
            if grant is None:
                continue
            if grant.banned_until_ms is not None:
                self._note_ban(self._ban_end(grant))
                return True, 0.0
            if grant.granted:
                self._queue.admit(waiter, grant.delay_s)
                admitted = True
            else:
                refused = waiter.weight
                if grant.delay_s < remaining:  # the pace, not the window: it fits later on
                    retry_s = min(retry_s, grant.delay_s)
        # A newcomer lighter than every refusal wakes the dispatcher to try it.
        self._fill_below = refused
        return admitted, retry_s

    # -- outcomes ---------------------------------------------------------------------------

    def _note_ban(self, until_ms: int) -> None:
        """Banned until ``until_ms`` (or later, if known): every queued caller fails now."""
        if until_ms > self._banned_until_ms:
            self._banned_until_ms = until_ms
            self._ban_epoch += 1
            log.error(
                "%s banned this IP until %s (in %s); all calls stop",
                self.provider,
                _utc_text(until_ms),
                _span_text(until_ms - self.wall_ms()),
            )
        self._queue.fail_all(self._banned())

    def _finish(self, slot: Slot, outcome: Outcome) -> None:
        """Local effects of an answer, at once: stats, adaptive rate, pause, ban."""
        slot.outcome = outcome
        now = self.clock()
        kind = outcome.kind
        self._stats.finished(slot.endpoint, kind, outcome.latency_s)
        if kind == "ok" and outcome.latency_s is not None:
            self._aimd.on_latency(outcome.latency_s, now)
        elif kind in ("server_error", "timeout", "transport"):
            self._aimd.on_failure(now)
        elif kind == "rate_limited":
            pause = outcome.retry_after
            if pause is None:
                pause = self._window_remaining(self.exchange_ms() / 1000)
            self._paused_until = max(self._paused_until, now + pause)
            if slot.sent_at >= self._last_429_at:
                # One cut per incident: answers to requests sent before the first 429 of a
                # pause arrived are the same signal.
                self._aimd.on_throttled(now, self._implied_rate())
            self._last_429_at = now
            log.warning(
                "%s answered 429 on %s; pausing every call for %.1fs",
                self.provider,
                slot.endpoint,
                pause,
            )
        elif kind == "banned":
            seconds = outcome.retry_after if outcome.retry_after is not None else 120.0
            self._recording_bans += 1  # until _settle has kept it in the quota and store
            self._note_ban(self.wall_ms() + int(seconds * 1000))
        if outcome.used_weight is not None:
            self._note_usage(slot, outcome.used_weight)

    def _window_remaining(self, wall_s: float) -> float:
        window = self.budget.window_s
        return window - wall_s % window

    def _window_of(self, slot: Slot) -> int | None:
        """The exchange window a usage header belongs to, None when it may be either."""
        window = self.budget.window_s
        index = int((slot.sent_wall_ms / 1000 - _HEADER_SKEW_S) // window)
        if index != int((self.exchange_ms() / 1000 + _HEADER_SKEW_S) // window):
            return None
        return index

    def _note_usage(self, slot: Slot, used: int) -> None:
        index = self._window_of(slot)
        if index is None:
            return
        if self._window_used[0] != index or used > self._window_used[1]:
            self._window_used = (index, used)
        self._usage.header(index, used)

    def _implied_rate(self) -> float | None:
        index, used = self._window_used
        window = self.budget.window_s
        if index != int(self.exchange_ms() / 1000 // window) or used <= 0:
            return None
        return used * (1 - self.settings.safety_margin) / window

    async def _settle(self, slot: Slot, outcome: Outcome) -> None:
        """Shared effects of an answer: the exchange's usage, the pause, the ban."""
        if outcome.kind == "rate_limited":
            await self._quota.pause(self.provider, max(0.0, self._paused_until - self.clock()))
        elif outcome.kind == "banned":
            try:
                if self._banned_until_ms > self.wall_ms():
                    await self._quota.ban(self.provider, self._banned_until_ms)
                    await self._control.save_ban(
                        self.provider, self._banned_until_ms, f"HTTP 418 on {slot.endpoint}"
                    )
                    self._store_has_ban = True
            finally:
                self._recording_bans -= 1
        if (
            outcome.used_weight is not None
            and outcome.kind != "banned"
            and self._window_of(slot) is not None
        ):
            await self._quota.sync_usage(
                self.provider,
                outcome.used_weight,
                self._limit_eff,
                self._window_remaining(self.exchange_ms() / 1000),
                self._spec(self.clock()),
            )

    # -- calls with retries -----------------------------------------------------------------

    async def call(
        self,
        endpoint: str,
        weight: int,
        send: Callable[[], Awaitable[R]],
        *,
        priority: Priority = Priority.INTERACTIVE,
        deadline_s: float | None = None,
        idempotent: bool = True,
    ) -> R:
        """Send through the throttle with retries; the response unless it is an upstream error.

        Returns 2xx/3xx answers and 4xx rejections (other than 429/418) for the caller to
        read. Raises Banned on a 418, RateLimited or UpstreamUnavailable once retries are
        spent, out of budget or past the deadline; QueueFull and DeadlinePassed from the queue.
        """
        timeout = self.settings.default_deadline_s if deadline_s is None else deadline_s
        deadline = self.clock() + timeout
        self._retry_budget.record_request(self.clock())
        attempt = 0
        while True:
            slot = self.slot(endpoint, weight, priority=priority)
            slot.deadline = deadline
            cause: BaseException | None = None
            response: R | None = None
            async with slot:
                try:
                    response = await send()
                except (TimeoutError, OSError, httpx.TransportError) as exc:
                    cause = exc
                    slot.record_error(exc)
                else:
                    slot.record(response.status_code, response.headers)
            outcome = slot.outcome
            assert outcome is not None
            if response is not None and outcome.kind in ("ok", "rejected"):
                return response
            if outcome.kind == "banned":
                self._check_ban(endpoint)
            error = self._error(endpoint, outcome)
            now = self.clock()
            delay = self._backoff.delay(attempt, outcome.retry_after)
            if (
                not idempotent
                or outcome.kind not in RETRYABLE
                or attempt >= self.settings.max_retries
                or now + delay >= deadline
                or not self._retry_budget.try_spend(now)
            ):
                raise error from cause
            self._stats.retried(endpoint)
            await asyncio.sleep(delay)
            attempt += 1

    def _error(self, endpoint: str, outcome: Outcome) -> UpstreamError:
        if outcome.kind == "rate_limited":
            return RateLimited(
                f"{self.provider} answered 429 on {endpoint}",
                provider=self.provider,
                endpoint=endpoint,
                retry_after=outcome.retry_after or 0.0,
            )
        what = f"HTTP {outcome.status}" if outcome.status is not None else outcome.kind
        return UpstreamUnavailable(
            f"{self.provider} unavailable on {endpoint}: {what}",
            provider=self.provider,
            endpoint=endpoint,
            status=outcome.status,
        )

    def held_back(self) -> bool:
        """Whether nothing can be sent now: a 429 pause or a ban stands (cheap; callers
        holding a good value are answered from it rather than made to wait)."""
        return self.clock() < self._paused_until or self._banned_until_ms > self.wall_ms()

    # -- stats ------------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Plain data: counters, percentiles, rate, level, queue, and the quota: its mode
        ("memory", "redis", "local-fallback"), how often it fell back, its last error."""
        now = self.clock()
        interactive, background = self._queue.depth()
        data = self._stats.snapshot(now)
        data.update(
            {
                "provider": self.provider,
                "level": self._level.value,
                "ceiling": self.ceiling,
                "rate": self._aimd.rate(now),
                "safe_rate": self._safe_rate,
                "limit": self.budget.limit,
                "window_s": self.budget.window_s,
                "queue_depth": interactive + background,
                "queue_depth_by_priority": {"interactive": interactive, "background": background},
                "paused_for_s": max(0.0, self._paused_until - now),
                "banned_until_ms": self._banned_until_ms or None,
                "quota": {
                    "mode": self._quota.mode,
                    "fallbacks": self._quota.fallbacks,
                    "last_error": self._quota.last_error,
                },
                "adaptive_cuts": self._aimd.cuts,
                "usage": self._usage_stats(),
            }
        )
        return data

    def used_weight(self) -> int:
        """The exchange's own count of the weight used in its current window, as its last
        usage header in that window said (everything sent from this IP, so the deployment's
        use and any other client's); 0 when no header came in this window yet."""
        seen, used = self._window_used
        return used if seen == int(self.exchange_ms() / 1000 // self.budget.window_s) else 0

    def _usage_stats(self) -> dict[str, Any]:
        """The exchange's usage header for its current window, what this process sent in
        that window, and the weight the exchange counted that this process did not send,
        summed over its windows (other clients behind the same IP; see UsageStats)."""
        index = int(self.exchange_ms() / 1000 // self.budget.window_s)
        seen, used = self._window_used
        return {
            "header_used": used if seen == index else None,
            "own_in_window": self._usage.own_in(index),
            "foreign_weight": self._usage.foreign_weight,
        }
