"""Candle upserts, reads, exact decimals, and the coverage map: over SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest
from msgspec.structs import replace

from mystic_trading.errors import InvalidInterval, InvalidRange, StoreError
from mystic_trading.models import Interval, Symbol
from mystic_trading.store import RangeWrite, Store

from .conftest import BTC, MIN, candle

P = "binance"


async def test_reinserting_a_closed_candle_changes_nothing(store: Store) -> None:
    """A closed candle upserted again, even with other values, keeps its first version."""
    first = candle(0, close="100.5")
    await store.candles.upsert(P, [first], fetched_at=1)
    await store.candles.upsert(P, [first], fetched_at=2)
    await store.candles.upsert(P, [replace(first, close=Decimal("7"))], fetched_at=3)
    assert await store.candles.range(P, BTC, "1m", 0, MIN) == [first]


async def test_open_candle_is_replaced_by_newer_open_and_by_closed(store: Store) -> None:
    """An open candle gives way to a newer open version, then to its closed version."""
    await store.candles.upsert(P, [candle(0, close="1", closed=False)], fetched_at=10)
    await store.candles.upsert(P, [candle(0, close="2", closed=False)], fetched_at=20)
    got = await store.candles.get(P, BTC, "1m", 0)
    assert got is not None and got.close == Decimal("2") and not got.closed
    await store.candles.upsert(P, [candle(0, close="1.5", closed=False)], fetched_at=15)
    got = await store.candles.get(P, BTC, "1m", 0)
    assert got is not None and got.close == Decimal("2"), "an older open version won"
    await store.candles.upsert(P, [candle(0, close="3", closed=True)], fetched_at=5)
    assert await store.candles.get(P, BTC, "1m", 0) == candle(0, close="3", closed=True)


async def test_closed_candle_is_never_replaced_by_open(store: Store) -> None:
    """A stored closed candle survives a later open version of itself."""
    closed = candle(0, close="3", closed=True)
    await store.candles.upsert(P, [closed], fetched_at=1)
    await store.candles.upsert(P, [candle(0, close="9", closed=False)], fetched_at=99)
    assert await store.candles.get(P, BTC, Interval.M1, 0) == closed


@pytest.mark.parametrize(
    "text",
    ["12345678.12345678", "0.00000001", "1.10000000", "98765432109876543210.123456789", "0"],
)
async def test_decimals_round_trip_exactly(store: Store, text: str) -> None:
    """Prices and quantities come back as the exact decimal strings stored."""
    value = Decimal(text)
    c = candle(0, open=value, volume=value, taker_buy_quote_volume=value, close=text)
    await store.candles.upsert(P, [c])
    got = await store.candles.get(P, BTC, "1m", 0)
    assert got is not None
    fields = (got.open, got.close, got.volume, got.taker_buy_quote_volume)
    # Same digits and same exponent: "1.10000000" keeps its eight places.
    assert [f.as_tuple() for f in fields] == [value.as_tuple()] * 4


async def test_range_reads_half_open_window_in_order(store: Store) -> None:
    """range() returns candles opening in [start, end), oldest first."""
    await store.candles.upsert(P, [candle(t * MIN) for t in (3, 1, 0, 2)])
    got = await store.candles.range(P, "BTCUSDT", "1m", MIN, 3 * MIN)
    assert [c.open_time for c in got] == [MIN, 2 * MIN]


async def test_gaps_skip_ranges_known_to_be_empty(store: Store) -> None:
    """A range marked covered with no candles is known empty: no gap, no candles."""
    await store.candles.mark_covered(P, BTC, "1m", 0, 10 * MIN)
    await store.candles.save_range(P, BTC, "1m", 20 * MIN, 22 * MIN, [candle(20 * MIN)])
    assert await store.candles.gaps(P, BTC, "1m", 0, 30 * MIN) == [
        (10 * MIN, 20 * MIN),
        (22 * MIN, 30 * MIN),
    ]
    assert await store.candles.range(P, BTC, "1m", 0, 10 * MIN) == []
    assert await store.candles.gaps(P, BTC, "1m", 2 * MIN, 8 * MIN) == []


async def test_gaps_are_aligned_to_the_interval(store: Store) -> None:
    """Unaligned bounds become open times: [ceil(start), ceil(end))."""
    await store.candles.mark_covered(P, BTC, "1m", 2 * MIN, 4 * MIN)
    assert await store.candles.gaps(P, BTC, "1m", 30_000, 5 * MIN + 1) == [
        (MIN, 2 * MIN),
        (4 * MIN, 6 * MIN),
    ]


async def test_coverage_merges_adjacent_and_overlapping_ranges(store: Store) -> None:
    """Touching or overlapping ranges merge into one; disjoint ones stay apart."""
    c = store.candles
    await c.mark_covered(P, BTC, "1m", 0, 2 * MIN)
    await c.mark_covered(P, BTC, "1m", 2 * MIN, 4 * MIN)
    await c.mark_covered(P, BTC, "1m", 10 * MIN, 12 * MIN)
    assert await c.coverage(P, BTC, "1m") == [(0, 4 * MIN), (10 * MIN, 12 * MIN)]
    await c.mark_covered(P, BTC, "1m", 3 * MIN, 11 * MIN)
    assert await c.coverage(P, BTC, "1m") == [(0, 12 * MIN)]
    await c.mark_covered(P, BTC, "1m", MIN, 2 * MIN)
    assert await c.coverage(P, BTC, "1m") == [(0, 12 * MIN)]
    assert await c.coverage(P, BTC, "5m") == []


async def test_bad_interval_and_reversed_range_are_refused_before_sql(store: Store) -> None:
    """InvalidInterval and InvalidRange are raised with no statement executed."""
    with pytest.raises(InvalidInterval):
        await store.candles.range(P, BTC, "7m", 0, MIN)
    with pytest.raises(InvalidRange):
        await store.candles.range(P, BTC, "1m", MIN, 0)
    with pytest.raises(InvalidRange):
        await store.candles.gaps(P, BTC, "1m", MIN, 0)
    with pytest.raises(InvalidRange):
        await store.candles.mark_covered(P, BTC, "1m", MIN, 0)
    assert store.metrics.snapshot() == {}


async def test_failed_batch_leaves_nothing_written(store: Store) -> None:
    """A batch that fails on its last row stores none of its candles nor its coverage."""
    good = [candle(t * MIN) for t in range(50)]
    bad = candle(50 * MIN, trades=2**63)  # beyond BIGINT: the driver refuses this row
    with pytest.raises(StoreError) as info:
        await store.candles.save_range(P, BTC, "1m", 0, 51 * MIN, [*good, bad])
    assert info.value.target == store.target
    assert await store.candles.range(P, BTC, "1m", 0, 51 * MIN) == []
    assert await store.candles.coverage(P, BTC, "1m") == []
    assert store.metrics.snapshot()["coverage.save"]["errors"] == 1


async def test_large_range_is_read_whole(store: Store) -> None:
    """A range beyond the on-loop row limit (read in a worker on SQLite) is complete."""
    n = 6_000
    await store.candles.upsert(P, [candle(t * MIN) for t in range(n)])
    got = await store.candles.range(P, BTC, "1m", 0, n * MIN)
    assert len(got) == n and got[-1].open_time == (n - 1) * MIN


async def test_save_ranges_stores_many_series_in_one_transaction(store: Store) -> None:
    """Ranges of several series go in together, each covered, and a batch that fails stores
    none of them (an invalid interval in the last write)."""
    eth = "ETH/USDT"
    await store.candles.save_ranges(
        P,
        [
            RangeWrite(BTC, "1m", 0, 3 * MIN, [candle(0), candle(MIN), candle(2 * MIN)]),
            RangeWrite(eth, "1m", 10 * MIN, 20 * MIN, [], fetched_at=5),  # known empty
        ],
    )
    assert len(await store.candles.range(P, BTC, "1m", 0, 3 * MIN)) == 3
    assert await store.candles.gaps(P, BTC, "1m", 0, 3 * MIN) == []
    assert await store.candles.gaps(P, eth, "1m", 10 * MIN, 20 * MIN) == []
    with pytest.raises(InvalidInterval):
        await store.candles.save_ranges(
            P,
            [
                RangeWrite(BTC, "1m", 3 * MIN, 4 * MIN, [candle(3 * MIN)]),
                RangeWrite(BTC, "7m", 0, MIN, []),
            ],
        )
    assert len(await store.candles.range(P, BTC, "1m", 0, 4 * MIN)) == 3
    assert await store.candles.gaps(P, BTC, "1m", 0, 4 * MIN) == [(3 * MIN, 4 * MIN)]


async def test_two_stores_saving_the_same_series_in_opposite_orders_both_succeed(
    make_store: Any,
) -> None:
    """Two processes' write-behind batches hold the same two series queued in opposite
    orders: both commit (rows and coverage locks are taken in one order; on PostgreSQL the
    order of the queue made one of them a deadlock victim)."""
    a, b = await make_store(), await make_store()
    eth = "ETH/USDT"
    n = 3_000
    wx = RangeWrite(BTC, "1m", 0, n * MIN, [candle(i * MIN) for i in range(n)], fetched_at=1)
    wy = RangeWrite(
        eth, "1m", 0, n * MIN, [candle(i * MIN, symbol=Symbol("ETH", "USDT")) for i in range(n)]
    )
    results = await asyncio.gather(
        a.candles.save_ranges(P, [wx, wy]),
        b.candles.save_ranges(P, [wy, wx]),
        return_exceptions=True,
    )
    assert results == [None, None]
    for name in (BTC, eth):
        assert len(await a.candles.range(P, name, "1m", 0, n * MIN)) == n
        assert await a.candles.gaps(P, name, "1m", 0, n * MIN) == []
