"""Alembic migrations: from empty, re-run, status, and the schema they build."""

from __future__ import annotations

import pytest

from mystic_trading.config import StoreSettings
from mystic_trading.store import head_revision, migration_status, upgrade

from .conftest import OpenStore


async def test_upgrade_from_empty_then_rerun_is_idempotent(store_url: str) -> None:
    """An empty database is behind; upgrade brings it to head; a second upgrade is a no-op."""
    settings = StoreSettings(url=store_url)
    before = await migration_status(settings)
    assert before.current is None and not before.up_to_date
    assert before.head == head_revision()
    first = await upgrade(settings)
    second = await upgrade(settings)
    assert first.current == second.current == head_revision()
    assert (await migration_status(settings)).up_to_date


async def test_open_store_migrates_to_head(make_store: OpenStore) -> None:
    """open_store migrates by default; the store reports its own status."""
    store = await make_store()
    status = await store.migration_status()
    assert status.up_to_date and status.target == store.target


async def test_sqlite_connections_are_tuned(make_store: OpenStore) -> None:
    """Every SQLite connection runs WAL, synchronous=NORMAL, foreign keys and the settings."""
    store = await make_store(busy_timeout_ms=1234, sqlite_cache_size_kib=2048)
    if store.backend != "sqlite":
        pytest.skip("SQLite pragmas")
    async with store.engine.connect() as conn:
        values = {
            p: (await conn.exec_driver_sql(f"PRAGMA {p}")).scalar()
            for p in ("journal_mode", "synchronous", "busy_timeout", "foreign_keys", "temp_store")
        }
        cache = (await conn.exec_driver_sql("PRAGMA cache_size")).scalar()
    assert values == {
        "journal_mode": "wal",
        "synchronous": 1,
        "busy_timeout": 1234,
        "foreign_keys": 1,
        "temp_store": 2,
    }
    assert cache == -2048


def test_the_head_is_read_as_alembic_reads_it() -> None:
    """head_revision() reads the version files without Alembic; Alembic agrees."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from mystic_trading.store._migrate import SCRIPT_LOCATION

    cfg = Config()
    cfg.set_main_option("script_location", SCRIPT_LOCATION)
    assert head_revision() == ScriptDirectory.from_config(cfg).get_current_head()
