"""What candles.range returns: a lazy, read-only sequence equal to the candles stored."""

from __future__ import annotations

import gc
from decimal import Decimal

import msgspec
import pytest

from mystic_trading.models import Candle, Interval, Symbol
from mystic_trading.store import CandleRange, Store

from .conftest import BTC, MIN, candle

P = "binance"


def _stored(n: int) -> list[Candle]:
    return [
        candle(t * MIN, close=f"{100 + t}.{t:02d}", closed=t % 2 == 0, trades=t) for t in range(n)
    ]


async def test_range_equals_the_candles_upserted(store: Store) -> None:
    """list(range) is the upserted candles; the range itself equals that list both ways."""
    want = _stored(5)
    await store.candles.upsert(P, want)
    got = await store.candles.range(P, BTC, "1m", 0, 5 * MIN)
    assert isinstance(got, CandleRange)
    assert list(got) == want and got == want and want == got
    assert got == tuple(want) and got != want[:4] and got != [*want[:4], candle(9 * MIN)]
    assert len(got) == 5 and got[0] == want[0] and got[-1] == want[-1]
    assert want[2] in got and got.index(want[3]) == 3


async def test_candles_are_built_once_and_shared_by_cache_hits(store: Store) -> None:
    """The same candle object comes back on a second access and from a cache hit."""
    await store.candles.upsert(P, _stored(3))
    first = await store.candles.range(P, BTC, "1m", 0, 3 * MIN)
    one = first[1]
    assert first[1] is one and next(x for i, x in enumerate(first) if i == 1) is one
    again = await store.candles.range(P, BTC, "1m", 0, 3 * MIN)
    assert store.cache.hits == 1 and again[1] is one


async def test_slices_are_ranges_of_the_same_candles(store: Store) -> None:
    """A slice is a CandleRange of the selected candles; built candles carry over."""
    want = _stored(6)
    await store.candles.upsert(P, want)
    got = await store.candles.range(P, BTC, "1m", 0, 6 * MIN)
    built = got[2]
    part = got[1:5:2]
    assert isinstance(part, CandleRange) and part == want[1:5:2]
    assert got[2:4][0] is built
    assert got[10:] == [] and len(got[::-1]) == 6 and list(got[::-1]) == want[::-1]
    with pytest.raises(IndexError):
        got[6]
    assert got[-6] == want[0]


async def test_columns_match_the_candles(store: Store) -> None:
    """Column accessors give each field of every candle, exact and typed as in Candle."""
    want = _stored(4)
    await store.candles.upsert(P, want)
    got = await store.candles.range(P, BTC, "1m", 0, 4 * MIN)
    assert got.closes() == [c.close for c in want]
    assert [d.as_tuple() for d in got.closes()] == [c.close.as_tuple() for c in want]
    assert got.open_times() == [c.open_time for c in want]
    assert got.opens() == [c.open for c in want] and got.highs() == [c.high for c in want]
    assert got.lows() == [c.low for c in want] and got.volumes() == [c.volume for c in want]
    assert got.column("closed") == [c.closed for c in want]
    assert got.column("trades") == [c.trades for c in want]
    assert all(isinstance(v, Decimal) for v in got.column("taker_buy_quote_volume"))
    with pytest.raises(KeyError, match="no candle column 'symbol'"):
        got.column("symbol")


async def test_rows_hold_the_exact_text_of_every_field(store: Store) -> None:
    """str() of each raw row field is the stored value's exact text, in column order."""
    want = candle(0, close="1.10000000")
    await store.candles.upsert(P, [want])
    got = await store.candles.range(P, BTC, "1m", 0, MIN)
    (row,) = got.rows
    assert str(row[4]) == "1.10000000" and row[0] == 0 and bool(row[11]) is True
    assert got.symbol == BTC and got.interval is Interval.M1


async def test_empty_range_is_falsy_and_equal_to_empty_list(store: Store) -> None:
    """No candles stored: an empty range, equal to [] and shown as empty."""
    got = await store.candles.range(P, BTC, "1m", 0, MIN)
    assert not got and got == [] and list(got) == [] and "empty" in repr(got)
    with pytest.raises(TypeError):
        hash(got)


def test_candle_is_frozen_hashable_and_untracked_by_the_gc() -> None:
    """A Candle built positionally equals one built by keyword, hashes alike, refuses
    assignment, replaces fields through msgspec, and is not tracked by the cyclic GC (the
    point of it being a gc=False struct: cached candles never lengthen a collection)."""
    values = {name: getattr(candle(7 * MIN, trades=9), name) for name in Candle.__struct_fields__}
    values["symbol"] = Symbol("ETH", "BTC")  # every field distinct from its neighbours
    made = Candle(*values.values())
    assert made == Candle(**values) and hash(made) == hash(Candle(**values))
    assert type(made) is Candle and msgspec.structs.replace(made, trades=1).trades == 1
    assert not gc.is_tracked(made)
    with pytest.raises(AttributeError):
        made.close = Decimal(1)  # type: ignore[misc]
