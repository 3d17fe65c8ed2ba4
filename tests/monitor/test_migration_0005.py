"""Migration 0005 (heartbeat samples) upgrades and downgrades on both backends, and a beat's
sample is kept with the beat once it is there."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection

from mystic_trading.config import StoreSettings
from mystic_trading.monitor import HeartbeatPublisher
from mystic_trading.store import Store, head_revision, migration_status, upgrade

from .conftest import FakeClock


def _downgrade_to_0004(conn: Connection) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", "mystic_trading.store:migrations")
    cfg.attributes["connection"] = conn
    command.downgrade(cfg, "0004")


def _has_samples(conn: Connection) -> bool:
    return sa.inspect(conn).has_table("heartbeat_samples")


async def test_0005_upgrades_and_downgrades_and_keeps_samples(
    store: Store, store_url: str, mono: FakeClock
) -> None:
    assert head_revision() >= "0005"
    settings = StoreSettings(url=store_url)
    async with store.engine.begin() as conn:
        await conn.run_sync(_downgrade_to_0004)
    status = await migration_status(settings)
    assert status.current == "0004" and not status.up_to_date
    async with store.engine.connect() as conn:
        assert not await conn.run_sync(_has_samples)
        assert await conn.run_sync(lambda c: sa.inspect(c).has_table("heartbeats"))
    assert (await upgrade(settings)).current == head_revision()
    async with store.engine.connect() as conn:
        assert await conn.run_sync(_has_samples)
    publisher = HeartbeatPublisher(
        store, lambda: {"requests": 7, "hits": {"memory": 7}}, venue="v", monotonic=mono
    )
    kept = await publisher.beat_once()
    assert kept is not None
    [(process_id, beat_at, sample)] = await store.heartbeats.samples("v", 0)
    assert (process_id, beat_at) == (publisher.process_id, kept.beat_at)
    assert sample.startswith("[7,7,")
