"""Migration 0003 (heartbeats) upgrades and downgrades on both backends; a publisher whose
store lost the table loses beats without raising and keeps them again after the upgrade."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection

from mystic_trading.config import StoreSettings
from mystic_trading.monitor import HeartbeatPublisher
from mystic_trading.store import Store, head_revision, migration_status, upgrade

from .conftest import FakeClock


def _alembic(conn: Connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", "mystic_trading.store:migrations")
    cfg.attributes["connection"] = conn
    return cfg


def _downgrade_to_0002(conn: Connection) -> None:
    command.downgrade(_alembic(conn), "0002")


def _has_heartbeats(conn: Connection) -> bool:
    return sa.inspect(conn).has_table("heartbeats")


def _heartbeat_indexes(conn: Connection) -> list[str]:
    return sorted(str(ix["name"]) for ix in sa.inspect(conn).get_indexes("heartbeats"))


async def test_0003_upgrades_and_downgrades(store: Store, store_url: str) -> None:
    """0003 (head or before it) builds the table with its index; a downgrade to 0002 drops
    both and leaves the rest; upgrading again brings them back."""
    assert head_revision() >= "0003"
    settings = StoreSettings(url=store_url)
    async with store.engine.connect() as conn:
        assert await conn.run_sync(_has_heartbeats)
        assert await conn.run_sync(_heartbeat_indexes) == ["ix_heartbeats_beat_at"]
    async with store.engine.begin() as conn:
        await conn.run_sync(_downgrade_to_0002)
    status = await migration_status(settings)
    assert status.current == "0002" and not status.up_to_date
    async with store.engine.connect() as conn:
        assert not await conn.run_sync(_has_heartbeats)
        assert await conn.run_sync(lambda c: sa.inspect(c).has_table("venues"))
    assert (await upgrade(settings)).current == head_revision()
    async with store.engine.connect() as conn:
        assert await conn.run_sync(_has_heartbeats)


async def test_a_store_without_the_table_loses_beats_without_raising(
    store: Store, store_url: str, mono: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """With the table gone (downgraded), beats are lost and logged once, never raised; after
    the upgrade the next beat is kept and the publisher says so."""
    p = HeartbeatPublisher(store, dict, venue="v", monotonic=mono)
    async with store.engine.begin() as conn:
        await conn.run_sync(_downgrade_to_0002)
    with caplog.at_level("WARNING", logger="mystic_trading.monitor"):
        assert await p.beat_once() is None
        assert await p.beat_once() is None
        assert p.state == "failing" and p.lost == 2 and p.last_error
        assert caplog.text.count("the store failed (") == 1
        await upgrade(StoreSettings(url=store_url))
        assert await p.beat_once() is not None
    assert p.state == "store" and "kept again" in caplog.text
    assert [h.process_id for h in await store.heartbeats.recent(0)] == [p.process_id]
