"""Alembic migrations: ``upgrade`` and ``status``, safe when processes start together.

The migration scripts ship inside the package (``mystic_trading.store:migrations``) and run
on the store's own connection. An upgrade first takes a lock that every other upgrader of the
same database also takes, then reads the revision again, and migrates only if it is still
behind. So two processes starting at once migrate once; the second finds the schema at head.

- SQLite: an ``fcntl`` lock on ``<file>.migrate.lock`` beside the database (released by the
  kernel when a process dies, so a crash never leaves it held), then the migration in one
  ``BEGIN IMMEDIATE`` transaction.
- PostgreSQL: ``pg_advisory_xact_lock`` keyed on the database and schema, taken inside the
  migration's transaction and released at its commit or rollback.
"""

from __future__ import annotations

import asyncio
import fcntl
import functools
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy import inspect as sa_inspect
from sqlalchemy import text
from sqlalchemy.engine import Connection

from mystic_trading.config import StoreSettings
from mystic_trading.errors import StoreError
from mystic_trading.store._engine import EnginePool, open_pool, wrap_error
from mystic_trading.store._target import Target, parse_target

__all__ = ["MigrationStatus", "head_revision", "migration_status", "upgrade"]

SCRIPT_LOCATION = "mystic_trading.store:migrations"
# How long an upgrader waits for another process's migration before giving up.
LOCK_WAIT_S = 120.0


@dataclass(frozen=True, slots=True)
class MigrationStatus:
    """The database's revision against the newest one this code ships."""

    target: str
    current: str | None
    head: str

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


VERSIONS = Path(__file__).with_name("migrations") / "versions"
_REVISION = re.compile(r'^revision: str = "([^"]+)"$', re.M)
_REVISES = re.compile(r'^down_revision: str \| None = "([^"]+)"$', re.M)


def _config() -> Any:
    from alembic.config import Config  # Alembic (and Mako) only when a migration runs

    cfg = Config()
    cfg.set_main_option("script_location", SCRIPT_LOCATION)
    return cfg


@functools.cache
def head_revision() -> str:
    """The newest revision shipped with this version of Mystic: the one no other revises.

    Read from the version files' ``revision`` and ``down_revision`` lines rather than through
    Alembic's ScriptDirectory: a store already at head (every start but the first) then never
    imports Alembic and Mako, about 100 ms of every `mystic status`. The history is linear;
    tests/store check this reading against Alembic's."""
    revisions: set[str] = set()
    revised: set[str] = set()
    for path in VERSIONS.glob("[0-9]*.py"):
        text = path.read_text(encoding="utf-8")
        revisions.update(_REVISION.findall(text))
        revised.update(_REVISES.findall(text))
    heads = revisions - revised
    if len(heads) != 1:
        raise StoreError(f"the shipped migrations have {len(heads)} heads: {sorted(heads)}")
    return heads.pop()


def _current(conn: Connection) -> str | None:
    """The revision the database is at (None before the first migration), read as Alembic
    keeps it: the one row of ``alembic_version``."""
    if not sa_inspect(conn).has_table("alembic_version"):
        return None
    row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
    return None if row is None else str(row[0])


def _upgrade_on(conn: Connection) -> None:
    from alembic import command

    cfg = _config()
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, "head")


async def upgrade_pool(pool: EnginePool) -> MigrationStatus:
    """Bring the schema behind ``pool`` to head, once, whoever else is upgrading."""
    target = pool.target
    head = head_revision()
    try:
        if target.backend == "sqlite":
            assert target.sqlite_path is not None
            lock_fd = await _lock_file(Path(f"{target.sqlite_path}.migrate.lock"), target)
            try:
                current = await _migrate(pool, head, advisory=False)
            finally:
                os.close(lock_fd)  # closing the descriptor releases the flock
        else:
            current = await _migrate(pool, head, advisory=True)
    except (sa_exc.DBAPIError, OSError) as exc:
        raise wrap_error(target, "migration failed", exc) from exc
    return MigrationStatus(target.display, current, head)


async def _migrate(pool: EnginePool, head: str, *, advisory: bool) -> str | None:
    async with pool.begin() as conn:
        if advisory:
            # One key per database and schema: upgraders of other schemas do not wait.
            await conn.execute(
                text(
                    "SELECT pg_advisory_xact_lock(hashtextextended("
                    "'mystic-migrate:' || current_database() || '.' || current_schema(), 0))"
                )
            )
        current = await conn.run_sync(_current)
        if current != head:
            await conn.run_sync(_upgrade_on)
            current = await conn.run_sync(_current)
    return current


async def _lock_file(path: Path, target: Target) -> int:
    """Hold an exclusive flock on ``path``; polls so the wait can be cancelled."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + LOCK_WAIT_S
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if time.monotonic() > deadline:
                os.close(fd)
                raise StoreError(
                    f"store {target.display}: another process held the migration lock "
                    f"{path} for over {LOCK_WAIT_S:g} s",
                    target=target.display,
                ) from None
            await asyncio.sleep(0.02)
        except BaseException:
            os.close(fd)
            raise
        else:
            return fd


async def status_pool(pool: EnginePool) -> MigrationStatus:
    """The schema revision behind ``pool`` and the head revision."""
    try:
        conn = await pool.connect()
        try:
            current = await conn.run_sync(_current)
        finally:
            await conn.close()
    except sa_exc.DBAPIError as exc:
        raise wrap_error(pool.target, "cannot read the schema revision", exc) from exc
    return MigrationStatus(pool.target.display, current, head_revision())


async def upgrade(settings: StoreSettings) -> MigrationStatus:
    """``mystic db upgrade``: migrate the configured database to head and report."""
    return await _with_pool(settings, upgrade_pool)


async def migration_status(settings: StoreSettings) -> MigrationStatus:
    """``mystic db status``: the current and head revisions of the configured database."""
    return await _with_pool(settings, status_pool)


async def _with_pool(settings: StoreSettings, work: Any) -> MigrationStatus:
    target = parse_target(settings.url)
    pool = await open_pool(target, settings, application_name="mystic-migrate")
    try:
        result: MigrationStatus = await work(pool)
        return result
    finally:
        await pool.aclose()
