"""The trades inside one second, so an open candle can be seen to the millisecond.

Each 1s candle of :func:`~mystic_trading.sandbox._generator.split_minute` is carved into
1-12 *prints*: the trades matched at one millisecond (one taker order sweeping the book fills
several makers at the same ``T``, as Binance's trade stream shows). Print ``j`` happens at
``offsets[j]`` ms into the second and is itself a small candle (price path from the close
before it, its high and low, volume, quote volume, trade count, taker volumes); the second's
open is the close before it, as every candle of the tape opens at the previous close.

The candle as seen at ``now`` holds exactly the prints with ``timestamp <= now``. Every view is
a valid candle (high >= max(open, close), low <= min(open, close)), volumes and trade counts
only grow, and the view once the second is over is the 1s candle itself, exactly, in integer
units: one print reaches the second's high, one its low, the last closes at its close, and
volumes are split by integer cuts and cumulative floors that sum back exactly.

Randomness is ``random.Random`` seeded by splitmix64 over (seed, symbol, second), as the rest
of the tape, so every process with the same seed prints the same trades.
"""

from __future__ import annotations

import random
from bisect import bisect_right
from dataclasses import dataclass

from mystic_trading.sandbox._catalog import SymbolSpec, _mix
from mystic_trading.sandbox._generator import Agg, _cuts, _prorate, merge

__all__ = ["MinuteTape", "SecondTape", "minute_tape", "split_second"]

_MAX_PRINTS = 12


@dataclass(frozen=True, slots=True)
class SecondTape:
    """One second's prints: at ``offsets`` ms (ascending, distinct, 0-999), and ``views[k]``,
    the 1s candle after the first ``k`` prints (``views[0]`` is flat at the open, no trade;
    ``views[-1]`` is the final 1s candle)."""

    offsets: tuple[int, ...]
    views: tuple[Agg, ...]

    def at(self, offset: int) -> Agg:
        """The candle as seen ``offset`` ms into its second (prints at or before it)."""
        return self.views[bisect_right(self.offsets, offset)]

    def last_before(self, offset: int) -> int | None:
        """Offset of the last print at or before ``offset``, None if none yet."""
        k = bisect_right(self.offsets, offset)
        return self.offsets[k - 1] if k else None


def split_second(seed: int, sym_index: int, second_ms: int, s: Agg, spec: SymbolSpec) -> SecondTape:
    """The prints of the 1s candle ``s`` that opens at ``second_ms``."""
    o, h, lo, c, vol, quote, trades, taker, taker_quote = s
    flat: Agg = (o, o, o, o, 0, 0, 0, 0, 0)
    if trades == 0:
        return SecondTape((), (s,))
    rng = random.Random(_mix(seed, sym_index, second_ms, 0x7AD35))  # noqa: S311 - simulation
    tick, step = spec.tick, spec.step
    steps = vol // step
    k = min(trades, steps, rng.randint(1, _MAX_PRINTS))
    offsets = sorted(rng.sample(range(1000), k))
    lt, ht = lo // tick, h // tick
    closes = [rng.randint(lt, ht) * tick for _ in range(k - 1)] + [c]
    vols = [x * step for x in _cuts(steps, k, rng)]
    counts = _cuts(trades, k, rng)
    takers = [t * step for t in _prorate(taker // step, [v // step for v in vols])]
    quotes = _prorate(quote, vols)
    taker_quotes = _prorate(taker_quote, takers)
    top, bottom = rng.randrange(k), rng.randrange(k)

    views: list[Agg] = [flat]
    seen = flat
    prev = o
    for j in range(k):
        pc = closes[j]
        ph = h if j == top else min(h, max(prev, pc) + rng.randint(0, 1) * tick)
        pl = lo if j == bottom else max(lo, min(prev, pc) - rng.randint(0, 1) * tick)
        seen = merge(
            seen, (prev, ph, pl, pc, vols[j], quotes[j], counts[j], takers[j], taker_quotes[j])
        )
        views.append(seen)
        prev = pc
    return SecondTape(tuple(offsets), tuple(views))


@dataclass(frozen=True, slots=True)
class MinuteTape:
    """The 60 final 1s candles of a minute and ``before[k]``, the aggregate of the first
    ``k`` of them (None for k = 0), so a partial minute costs one merge."""

    seconds: list[Agg]
    before: list[Agg | None]


def minute_tape(seconds: list[Agg]) -> MinuteTape:
    """A :class:`MinuteTape` of the 60 1s candles ``seconds``."""
    before: list[Agg | None] = [None]
    acc: Agg | None = None
    for s in seconds:
        acc = s if acc is None else merge(acc, s)
        before.append(acc)
    return MinuteTape(seconds, before)
