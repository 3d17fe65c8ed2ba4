"""Control state (throttle level and tunables per provider), its audit log, and bans.

Control state is how an operator's change reaches every process, so its reads always go to
the database, never to the per-process query cache. Every change of a level or a tunable
writes one audit entry (who, when, from, to, why) in the same transaction as the change;
saving the value already stored is not a change and writes nothing. Bans are set and
cleared with an audit entry too (actor ``system`` unless given), and so is a cache clear.

A cache clear's entry says what to clear: ``to_value`` the symbol's exchange form (``*`` for
every symbol), ``field`` the layers. A clear of every layer is ``cache_clear``, as every clear
was written before layers could be chosen (so those old entries mean every layer, and a
process running older code still applies a full clear); a clear of some is
``cache_clear:<layer>+<layer>`` in the order of :data:`CACHE_LAYERS`, the way a tunable's
entry is ``tunable:<key>``. :meth:`ControlRepository.cache_clear_of` reads one back.

The audit log is also how a change reaches processes already running: each follows it
(``changes_after``, about once a second, see ``marketdata/control_watch.py``) and applies
the entries of its venue.

This repository is the throttler's persistence: it has ``load_ban``, ``save_ban``,
``load_level`` and ``save_level`` with the signatures the throttler's Protocol expects.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from mystic_trading.store import _sql
from mystic_trading.store._core import Database
from mystic_trading.store._records import Ban, ControlChange, ControlState

__all__ = ["CACHE_LAYERS", "ControlRepository"]

CONTROL = ("control_state", "control_audit")
BANS = ("bans", "control_audit")
# The layers a cache clear can name: each process's memory (L1), the shared Redis (L2), and
# each process's store query cache. The store's candles are never a cache to clear.
CACHE_LAYERS = ("memory", "redis", "query_cache")
_CLEAR = "cache_clear"


class ControlRepository:
    """Levels, tunables and bans per provider, with the audit log of their changes."""

    CACHE_LAYERS = CACHE_LAYERS

    def __init__(self, db: Database) -> None:
        self._db = db
        q = db.sql
        self._get = q(_sql.CONTROL_GET)
        # Under PostgreSQL's READ COMMITTED, lock the row so two changers audit in order.
        self._get_for_update = self._get + (" FOR UPDATE" if db.backend == "postgresql" else "")
        self._put = q(_sql.CONTROL_UPSERT)
        self._audit = q(_sql.AUDIT_INSERT)
        self._audit_by = q(_sql.AUDIT_BY_PROVIDER)
        self._audit_all = q(_sql.AUDIT_ALL)
        self._audit_after = q(_sql.AUDIT_AFTER)
        self._audit_head = q(_sql.AUDIT_HEAD)
        self._audit_id = q(_sql.AUDIT_INSERT_ID)
        self._ban_get = q(_sql.BAN_GET)
        self._ban_put = q(_sql.BAN_UPSERT)
        self._ban_delete = q(_sql.BAN_DELETE)

    # -- levels and tunables ------------------------------------------------------------

    async def load(self, provider: str) -> ControlState | None:
        """The control state of ``provider``, or None if never set."""

        def build(row: Any) -> ControlState:
            return ControlState(provider, row[0], json.loads(row[1]), row[2], row[3])

        return await self._db.read_one(
            "control.load", self._get, (provider,), build, detail=provider
        )

    async def load_level(self, provider: str) -> str | None:
        """The throttle level set for ``provider``, or None if never set."""
        state = await self.load(provider)
        return None if state is None else state.level

    async def save_level(self, provider: str, level: str, *, actor: str, reason: str) -> None:
        """Set the level of ``provider`` and audit the change."""

        async def work(conn: AsyncConnection) -> None:
            current = await self._current(conn, provider)
            if current is not None and current[0] == level:
                return
            old_level, tunables = current if current is not None else (None, "{}")
            await self._save(conn, provider, level, tunables, actor)
            await self._log(conn, provider, "level", actor, old_level, level, reason)

        await self._db.write("control.save_level", work, tables=CONTROL, detail=provider)

    async def save_tunables(
        self, provider: str, changes: Mapping[str, Any], *, actor: str, reason: str
    ) -> None:
        """Merge ``changes`` (JSON values) into the tunables of ``provider``, auditing each."""

        async def work(conn: AsyncConnection) -> None:
            current = await self._current(conn, provider)
            level, text = current if current is not None else (None, "{}")
            tunables: dict[str, Any] = json.loads(text)
            changed = {k: v for k, v in changes.items() if tunables.get(k, _ABSENT) != v}
            if not changed:
                return
            for key, value in sorted(changed.items()):
                old = tunables.get(key, _ABSENT)
                await self._log(
                    conn,
                    provider,
                    f"tunable:{key}",
                    actor,
                    None if old is _ABSENT else json.dumps(old),
                    json.dumps(value),
                    reason,
                )
                tunables[key] = value
            await self._save(conn, provider, level, json.dumps(tunables, sort_keys=True), actor)

        await self._db.write("control.save_tunables", work, tables=CONTROL, detail=provider)

    async def audit(self, provider: str | None = None, *, limit: int = 100) -> list[ControlChange]:
        """The latest audit entries, newest first; of one provider or of all."""
        params: tuple[Any, ...]
        if provider is None:
            sql, params = self._audit_all, (limit,)
        else:
            sql, params = self._audit_by, (provider, limit)
        return await self._db.read_all(
            "audit.list",
            sql,
            params,
            lambda rows: [ControlChange(*r) for r in rows],
            detail=provider or "*",
        )

    async def head(self) -> int:
        """The id of the newest audit entry (0 when there is none): where a follower starts."""
        found = await self._db.read_one("audit.head", self._audit_head, (), lambda row: row[0] or 0)
        return int(found or 0)

    async def changes_after(self, after_id: int, *, limit: int = 100) -> list[ControlChange]:
        """Audit entries newer than ``after_id``, oldest first, of every provider: what a
        running process follows to apply another's change (one indexed read, usually empty)."""
        return await self._db.read_all(
            "audit.after",
            self._audit_after,
            (after_id, limit),
            lambda rows: [ControlChange(*r) for r in rows],
        )

    async def note_clear(
        self,
        provider: str,
        target: str | None,
        *,
        actor: str,
        reason: str = "",
        layers: Iterable[str] = CACHE_LAYERS,
    ) -> int:
        """Audit a cache clear of ``provider`` (one symbol's exchange form, or all when
        ``target`` is None) in ``layers`` (of :data:`CACHE_LAYERS`; ValueError for another
        or none), so every running process clears the same; the entry's id."""
        wanted = set(layers)
        unknown = sorted(wanted.difference(CACHE_LAYERS))
        if unknown or not wanted:
            raise ValueError(
                f"cache layers must be some of {', '.join(CACHE_LAYERS)}, got {sorted(wanted)}"
            )
        field = _CLEAR
        if len(wanted) < len(CACHE_LAYERS):
            field += ":" + "+".join(layer for layer in CACHE_LAYERS if layer in wanted)

        async def work(conn: AsyncConnection) -> int:
            params = (provider, field, actor, self._db.now_ms(), None, target or "*")
            row: Any = (
                await conn.exec_driver_sql(self._audit_id, (*params, reason or "cleared"))
            ).first()
            return int(row[0])

        return await self._db.write("control.note_clear", work, tables=CONTROL, detail=provider)

    @staticmethod
    def cache_clear_of(change: ControlChange) -> tuple[str | None, frozenset[str]] | None:
        """What a cache-clear entry clears: the symbol (None for every symbol) and the
        layers; None when ``change`` is not a cache clear. A bare ``cache_clear`` (every
        entry written before layers could be chosen) is every layer."""
        field = change.field
        if field == _CLEAR:
            layers = frozenset(CACHE_LAYERS)
        elif field.startswith(_CLEAR + ":"):
            layers = frozenset(field[len(_CLEAR) + 1 :].split("+")).intersection(CACHE_LAYERS)
        else:
            return None
        target = None if change.to_value in (None, "*") else change.to_value
        return target, layers

    async def _current(self, conn: AsyncConnection, provider: str) -> tuple[Any, str] | None:
        row: Any = (await conn.exec_driver_sql(self._get_for_update, (provider,))).first()
        return None if row is None else (row[0], row[1])

    async def _save(
        self, conn: AsyncConnection, provider: str, level: str | None, tunables: str, actor: str
    ) -> None:
        params = (provider, level, tunables, self._db.now_ms(), actor)
        await conn.exec_driver_sql(self._put, params)

    async def _log(
        self,
        conn: AsyncConnection,
        provider: str,
        field: str,
        actor: str,
        old: str | None,
        new: str | None,
        reason: str,
    ) -> None:
        params = (provider, field, actor, self._db.now_ms(), old, new, reason)
        await conn.exec_driver_sql(self._audit, params)

    # -- bans ---------------------------------------------------------------------------

    async def ban(self, provider: str) -> Ban | None:
        """The stored ban of ``provider`` (possibly expired: compare ``until_ms``), or None."""

        def build(row: Any) -> Ban:
            return Ban(provider, row[0], row[1], row[2])

        return await self._db.read_one("ban.load", self._ban_get, (provider,), build)

    async def load_ban(self, provider: str) -> int | None:
        """When the ban of ``provider`` ends (UTC epoch ms), or None if there is none."""
        ban = await self.ban(provider)
        return None if ban is None else ban.until_ms

    async def save_ban(
        self, provider: str, until_ms: int, reason: str, *, actor: str = "system"
    ) -> None:
        """Record a ban of ``provider`` until ``until_ms``; it survives restarts."""

        async def work(conn: AsyncConnection) -> None:
            old = (await conn.exec_driver_sql(self._ban_get, (provider,))).first()
            params = (provider, until_ms, reason, self._db.now_ms())
            await conn.exec_driver_sql(self._ban_put, params)
            before = None if old is None else str(old[0])
            await self._log(conn, provider, "ban", actor, before, str(until_ms), reason)

        await self._db.write("ban.save", work, tables=BANS, detail=provider)

    async def clear_ban(self, provider: str, *, actor: str = "system", reason: str = "") -> bool:
        """Remove the ban of ``provider``; False if there was none."""

        async def work(conn: AsyncConnection) -> bool:
            old = (await conn.exec_driver_sql(self._ban_get, (provider,))).first()
            if old is None:
                return False
            await conn.exec_driver_sql(self._ban_delete, (provider,))
            await self._log(conn, provider, "ban", actor, str(old[0]), None, reason or "cleared")
            return True

        return await self._db.write("ban.clear", work, tables=BANS, detail=provider)


_ABSENT: Any = object()
