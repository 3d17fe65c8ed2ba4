"""The HeartbeatKeeper contract, run over every keeper (the store on both backends, Redis):
a beat is dated on the keeper's clock, read back whole, a late beat changes nothing, a stop
is kept, and the start time stays what the first beat made it."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from collections.abc import AsyncIterator

import pytest

from mystic_trading.monitor import Beat, HeartbeatKeeper, RedisHeartbeats, StoreHeartbeats
from mystic_trading.store import Store

from .conftest import FakeClock, delete_prefix


@pytest.fixture(params=["store", pytest.param("redis", marks=pytest.mark.redis)])
async def keeper(request: pytest.FixtureRequest, store: Store) -> AsyncIterator[HeartbeatKeeper]:
    """Each keeper; Redis under a prefix unique to the test, deleted after."""
    if request.param == "store":
        yield StoreHeartbeats(store)
        return
    url: str = request.getfixturevalue("redis_url")
    prefix = f"test:monitor:{uuid.uuid4().hex}"
    beats = RedisHeartbeats(url, prefix=prefix)
    yield beats
    await beats.aclose()
    await delete_prefix(url, prefix)


def beat(process_id: str, seq: int, *, uptime_ms: int = 5_000, **figures: object) -> Beat:
    return Beat(
        process_id=process_id,
        venue="sandbox-s0-test",
        host="host-a",
        pid=4242,
        version="0.1.0",
        uptime_ms=uptime_ms,
        interval_ms=2_000,
        seq=seq,
        figures={"requests": seq, "hits": {"memory": 3}, "rate": 0.125, "level": None, **figures},
    )


async def test_a_beat_is_dated_by_the_keeper_and_read_back_whole(keeper: HeartbeatKeeper) -> None:
    """publish dates the beat on the keeper's clock and derives the start from the uptime;
    read gives it back, figures exact, with the keeper's time now."""
    kept = await keeper.publish(beat("a", 1))
    assert kept.started_at == kept.beat_at - 5_000 and kept.stopped_at is None
    snapshot = await keeper.read()
    assert snapshot.keeper == keeper.name and snapshot.now_ms >= kept.beat_at
    [read] = snapshot.heartbeats
    assert read == kept


async def test_each_process_is_one_record_and_late_beats_change_nothing(
    keeper: HeartbeatKeeper,
) -> None:
    """Beats replace their process's record; a beat with a lower seq than the kept one does
    not; the start time stays as the first beat made it."""
    first = await keeper.publish(beat("a", 1))
    await keeper.publish(beat("b", 1))
    await keeper.publish(beat("a", 3, uptime_ms=9_000_000, extra=1))
    await keeper.publish(beat("a", 2))
    by_id = {h.process_id: h for h in (await keeper.read()).heartbeats}
    assert set(by_id) == {"a", "b"}
    a = by_id["a"]
    assert a.seq == 3 and a.figures["extra"] == 1
    assert a.started_at == first.started_at


async def test_stop_is_kept_and_a_later_beat_clears_it(keeper: HeartbeatKeeper) -> None:
    """stop marks the process stopped on the keeper's clock; stopping an unknown process is
    harmless; a later beat of the process clears the mark."""
    kept = await keeper.publish(beat("a", 1))
    await keeper.stop("a")
    await keeper.stop("nobody")
    [stopped] = (await keeper.read()).heartbeats
    assert stopped.stopped_at is not None and stopped.stopped_at >= kept.beat_at
    await keeper.publish(beat("a", 2))
    [again] = (await keeper.read()).heartbeats
    assert again.stopped_at is None


async def test_a_beats_sample_joins_its_process_ring_read_back_by_venue(
    keeper: HeartbeatKeeper, wall: FakeClock
) -> None:
    """A beat with a sample adds it to its process's ring, stamped as the beat; the rings
    are read back per venue since a time, oldest first; a beat without one adds nothing;
    another venue's processes are not read."""
    values = [
        [k, k, 0, 0, 0, 0, 0, 0, 0, 60.0, 6000.0, 3000.0, 1.0, 2.0, 0, None, 0, 0] for k in range(3)
    ]
    stamps = []
    for k, sample in enumerate(values):
        kept = await keeper.publish(
            dataclasses.replace(beat("a", k + 1), sample=json.dumps(sample))
        )
        stamps.append(kept.beat_at)
        # Beats are 2 s apart in life: one stamp each (the store's clock is the test's,
        # Redis's its own).
        wall.advance(2.0)
        await asyncio.sleep(0.005)
    await keeper.publish(beat("b", 1))  # no sample
    other = dataclasses.replace(beat("c", 1), venue="another-venue", sample=json.dumps(values[0]))
    await keeper.publish(other)
    now, rings = await keeper.samples("sandbox-s0-test", stamps[0])
    assert now >= stamps[-1]
    [ring] = rings
    assert ring.process_id == "a" and ring.interval_ms == 2_000
    assert [at for at, _ in ring.samples] == sorted(stamps)
    assert [v for _, v in ring.samples] == values
    _, later = await keeper.samples("sandbox-s0-test", stamps[-1] + 1)
    assert all(not r.samples for r in later)
