"""The store's heartbeats table over both backends: upsert per process, the seq guard,
stop, the recent read and the prune."""

from __future__ import annotations

from mystic_trading.store import Heartbeat, Store

from .conftest import FakeClock


def beat(process_id: str, *, at: int, seq: int, **kw: object) -> Heartbeat:
    fields: dict[str, object] = {
        "process_id": process_id,
        "venue": "sandbox-s0-test",
        "host": "host-a",
        "pid": 4242,
        "version": "0.1.0",
        "started_at": at - 5_000,
        "beat_at": at,
        "interval_ms": 2_000,
        "seq": seq,
        "figures": {"requests": seq, "hits": {"memory": 3}, "ceiling": 40.5, "level": None},
    }
    fields.update(kw)
    return Heartbeat(**fields)  # type: ignore[arg-type]


async def test_one_row_per_process_replaced_by_each_beat(store: Store) -> None:
    """A process has one row; its next beat replaces it, figures and all, start kept."""
    repo = store.heartbeats
    assert await repo.save(beat("a", at=10_000, seq=1))
    assert await repo.save(beat("a", at=12_000, seq=2, started_at=9_999, host="host-b"))
    [kept] = await repo.recent(0)
    assert kept.beat_at == 12_000 and kept.seq == 2 and kept.host == "host-b"
    assert kept.started_at == 5_000  # as first written
    assert kept.figures == {"requests": 2, "hits": {"memory": 3}, "ceiling": 40.5, "level": None}
    assert kept.stopped_at is None


async def test_an_older_beat_never_replaces_a_newer_one(store: Store) -> None:
    """A beat delayed behind newer ones (lower seq) changes nothing."""
    repo = store.heartbeats
    await repo.save(beat("a", at=12_000, seq=5))
    assert not await repo.save(beat("a", at=13_000, seq=4))
    [kept] = await repo.recent(0)
    assert (kept.seq, kept.beat_at) == (5, 12_000)


async def test_stop_marks_the_row_on_the_store_clock(store: Store, wall: FakeClock) -> None:
    """stop stamps stopped_at with the store's clock; a second stop and an unknown id do
    nothing; a later beat of the same process clears it."""
    repo = store.heartbeats
    await repo.save(beat("a", at=10_000, seq=1))
    assert await repo.stop("a")
    assert not await repo.stop("a")
    assert not await repo.stop("nobody")
    [kept] = await repo.recent(0)
    assert kept.stopped_at == int(wall.now * 1000) == repo.now_ms()
    await repo.save(beat("a", at=11_000, seq=2))
    assert (await repo.recent(0))[0].stopped_at is None


async def test_recent_and_prune_by_last_beat(store: Store) -> None:
    """recent gives processes that beat since a time, oldest start first; prune deletes the
    others, and a save prunes in its own transaction."""
    repo = store.heartbeats
    await repo.save(beat("old", at=1_000, seq=1, started_at=500))
    await repo.save(beat("b", at=50_000, seq=1, started_at=40_000))
    await repo.save(beat("a", at=60_000, seq=1, started_at=30_000))
    assert [h.process_id for h in await repo.recent(10_000)] == ["a", "b"]
    assert [h.process_id for h in await repo.recent(0)] == ["old", "a", "b"]
    assert await repo.prune(10_000) == 1
    await repo.save(beat("a", at=70_000, seq=2), prune_before=55_000)
    assert [h.process_id for h in await repo.recent(0)] == ["a"]
