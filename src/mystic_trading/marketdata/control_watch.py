"""Control changes made elsewhere reach this process: a level, a ban, a lifted ban, a clear.

Every control change is an entry in the store's audit log (``store/_control.py``): a level
set with ``mystic throttle level``, a ban earned by any process or lifted with ``mystic
throttle ban clear``, a cache clear. A running process follows that log: about once a
second it reads the entries after the last one it saw (one indexed read, nearly always
empty), and applies those of its venue: a level or ban entry makes the throttler re-read
its control state (``Throttler.refresh_control``, which also lifts a cleared ban); a cache
clear clears here the layers it names that live in each process, for its symbol or all:
memory entries and store query-cache entries (Redis, shared, was cleared by whoever cleared;
an entry written before layers could be named means every layer). So a change takes effect
in every process of the deployment within two seconds.

Redis pub/sub was the close alternative. It is not used: the store holds the truth anyway
(the audit, and what a restarted process reads), the poll works in every deployment,
including those without Redis, and a subscriber that reconnects misses what was published
meanwhile, so it would need this poll behind it all the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from mystic_trading._tasks import stop
from mystic_trading.store import ControlChange, ControlRepository

__all__ = ["POLL_S", "ControlLog", "ControlWatch"]

log = logging.getLogger(__name__)

# Half the two seconds a change may take to reach every process, so a poll that lands just
# after a change and one slow read still make it.
POLL_S = 1.0
_BATCH = 100


class ControlLog(Protocol):
    """The audit log as the watch reads it (the store's ControlRepository)."""

    async def head(self) -> int: ...

    async def changes_after(self, after_id: int, *, limit: int = 100) -> list[ControlChange]: ...


class ControlWatch:
    """Follows the control log and applies what concerns this process's venue."""

    def __init__(
        self,
        control: ControlLog,
        *,
        venue: Callable[[], str],
        refresh: Callable[[], Awaitable[None]],
        drop: Callable[[str | None], int],
        drop_queries: Callable[[str | None], int] | None = None,
        interval_s: float = POLL_S,
    ) -> None:
        """``drop`` and ``drop_queries`` clear this process's memory entries and store
        query-cache entries of a symbol (exchange form), or all for None; each returns how
        many went."""
        self.control = control
        self.venue = venue
        self.refresh = refresh
        self.drop = drop
        self.drop_queries = drop_queries
        self.interval_s = interval_s
        self.last_id: int | None = None
        self.applied = 0
        self.polls = 0
        self.errors = 0
        self.last_error: str | None = None
        self._own: set[int] = set()
        # A refresh owed for entries already passed (it failed, or the watch started without
        # knowing where the log stood): retried at every poll until it succeeds.
        self._refresh_due = False
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start following from the newest entry (what came before, the process read at
        start); polling begins in the background."""
        if self._task is not None:
            return
        with contextlib.suppress(Exception):
            self.last_id = await self.control.head()
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name="mystic-control-watch"
        )

    async def aclose(self) -> None:
        """Stop polling."""
        task, self._task = self._task, None
        await stop(task)

    def mine(self, entry_id: int) -> None:
        """An entry this process wrote and applied already: skipped when it comes round."""
        self._own.add(entry_id)

    async def poll(self) -> int:
        """Apply the entries written since the last poll; how many concerned this venue."""
        self.polls += 1
        if self.last_id is None:
            # What was written before we knew where the log stood is read by one refresh.
            self.last_id = await self.control.head()
            self._refresh_due = True
        applied = 0
        while True:
            changes = await self.control.changes_after(self.last_id, limit=_BATCH)
            for change in changes:
                self.last_id = change.id
                if change.provider != self.venue() or change.id in self._own:
                    self._own.discard(change.id)
                    continue
                applied += 1
                clear = ControlRepository.cache_clear_of(change)
                if clear is not None:
                    self._clear(change, *clear)
                else:
                    self._refresh_due = True
                    log.info(
                        "%s of %s changed by %s (%s -> %s): applying",
                        change.field,
                        change.provider,
                        change.actor,
                        change.from_value,
                        change.to_value,
                    )
            if len(changes) < _BATCH:
                break
        self.applied += applied
        if self._refresh_due:
            await self.refresh()
            self._refresh_due = False
        return applied

    def _clear(self, change: ControlChange, target: str | None, layers: frozenset[str]) -> None:
        dropped = self.drop(target) if "memory" in layers else 0
        queries = (
            self.drop_queries(target)
            if "query_cache" in layers and self.drop_queries is not None
            else 0
        )
        log.info(
            "cache clear of %s (%s) by %s: %d memory and %d query-cache entries dropped",
            target or "every symbol",
            ", ".join(sorted(layers)),
            change.actor,
            dropped,
            queries,
        )

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.poll()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.errors += 1
                text = f"{type(exc).__name__}: {exc}"
                if text != self.last_error:
                    log.warning("control log unreadable (%s); polling again", text)
                self.last_error = text
            else:
                self.last_error = None

    def stats(self) -> dict[str, Any]:
        """Plain data: where the watch is in the log and what it applied."""
        return {
            "last_id": self.last_id,
            "applied": self.applied,
            "polls": self.polls,
            "errors": self.errors,
            "last_error": self.last_error,
            "interval_s": self.interval_s,
        }
