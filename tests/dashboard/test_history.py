"""The dashboard's hour comes from every process's ring of samples (monitor/_history.py),
merged across the deployment: a service started late draws the hour the venue's processes
lived, not only what it saw itself."""

from __future__ import annotations

import json
from typing import Any

from mystic_trading.api._dashboard import FIELDS, DashboardSampler, history_rows
from mystic_trading.monitor._history import SAMPLE_FIGURES, ProcessSamples, values_of
from mystic_trading.store import Heartbeat

from .conftest import Served

STEP = 2_000


def _row(values: list[Any]) -> dict[str, Any]:
    return dict(zip(FIELDS, values, strict=True))


def _sample(requests: int, upstream: int, *, used: float = 600.0, qd: int = 0) -> list[Any]:
    figures = {
        "requests": requests,
        "hits": {"memory": requests - upstream, "upstream": upstream},
        "upstream_calls": upstream,
        "weight_per_s": used / 60,
        "limit": 6000,
        "window_s": 60,
        "ceiling": 50.0,
        "upstream_latency_p95_ms": 40.0 + qd,
        "queue_depth": qd,
    }
    return values_of(figures)


def test_values_of_a_heartbeat_are_the_sample_figures() -> None:
    values = dict(zip(SAMPLE_FIGURES, _sample(10, 4, qd=2), strict=True))
    assert values["req"] == 10 and values["memory"] == 6 and values["upstream"] == 4
    assert values["calls"] == 4
    assert values["used"] == 600.0 and values["limit"] == 6000.0 and values["ceiling"] == 3000.0
    assert values["qd"] == 2 and values["paused"] == 0 and values["banned_until"] == 0


def test_rows_difference_each_process_and_sum_the_deployment() -> None:
    """Two processes, one gone half-way: counters are per-step differences per process,
    summed; gauges summed (weight, queue) or worst (latency); alive and gone counted."""
    t0 = 1_800_000_000_000
    a = ProcessSamples(
        "a", STEP, tuple((t0 + k * STEP, _sample(10 * k, k, qd=1)) for k in range(10))
    )
    b = ProcessSamples("b", STEP, tuple((t0 + k * STEP, _sample(100 + 5 * k, 0)) for k in range(4)))
    rows = [_row(r) for r in history_rows([a, b], end_ms=t0 + 9 * STEP, step_ms=STEP, count=10)]
    assert [r["t"] for r in rows] == [t0 + k * STEP for k in range(10)]
    first, second = rows[0], rows[1]
    assert first["req"] == 0  # a baseline: totals since each process started
    assert second["req"] == 10 + 5 and second["upstream"] == 1 and second["calls"] == 1
    assert second["used"] == 1200.0 and second["qd"] == 1 and second["alive"] == 2
    assert second["p95"] == 41.0
    # b's last sample is at step 3; three intervals later it is gone.
    assert rows[6]["alive"] == 2 and rows[7]["alive"] == 1 and rows[7]["gone"] == 1
    assert rows[7]["req"] == 10 and rows[7]["used"] == 600.0


def test_steps_before_any_sample_give_no_row() -> None:
    t0 = 1_800_000_000_000
    a = ProcessSamples("a", STEP, ((t0, _sample(1, 1)), (t0 + STEP, _sample(2, 1))))
    rows = history_rows([a], end_ms=t0 + STEP, step_ms=STEP, count=30)
    assert len(rows) == 2


async def test_a_sampler_started_late_draws_the_hour_the_processes_kept(served: Served) -> None:
    """Another process of the venue beat for the last 40 minutes (its samples in the store);
    a dashboard sampler started now draws those 40 minutes at once, before its first live
    row, with that process's requests per step."""
    state = served.state
    md = state.md
    store = md.store
    venue = md.provider.venue
    now = store.heartbeats.now_ms()
    start = now - 40 * 60_000
    steps = 40 * 60_000 // STEP
    for k in range(steps):
        beat = Heartbeat(
            process_id="other-process",
            venue=venue,
            host="elsewhere",
            pid=4242,
            version="0.1.0",
            started_at=start - 1_000,
            beat_at=start + k * STEP,
            interval_ms=STEP,
            seq=k + 1,
            figures={},
        )
        await store.heartbeats.save(beat, sample=json.dumps(_sample(3 * k, k)))
    sampler = DashboardSampler(state)
    await sampler.sample(md)
    assert sampler.backfilled >= steps - 2
    rows = [_row(r) for r in sampler.ring]
    assert len(rows) == sampler.backfilled + 1  # and the first live row
    drawn = [r for r in rows[:-1] if r["alive"] >= 1]
    assert drawn[0]["t"] <= start + 2 * STEP
    # Each 2 s step saw the other process answer 3 requests (and this process's own rings
    # add what it answered itself, nothing here).
    middle = drawn[len(drawn) // 2]
    assert middle["req"] >= 3 and middle["upstream"] >= 1
    assert sum(r["req"] for r in drawn) >= 3 * (steps - 2)
