"""The synthetic tape: one symbol-day of 1m candles at a time, and the 1s candles of a minute.

Prices are integer ticks. A day opens at an anchor price computed in O(1) from the seed (a
sum of value-noise octaves, so day 3000 needs no walk through days 0..2999); inside the day a
bridged random walk leads from that day's anchor to the next day's, minute by minute, so the
close of one day is the open of the next. Minutes without trades keep the previous close and
carry zero volume, as Binance prints them.

Volumes are integer lot steps, quote volumes integer counts of 1e-8; a higher interval is the
plain integer sum of its minutes, so every aggregate is exact. A 1s candle row is carved out of
its minute so that the 60 seconds aggregate exactly back to the minute.

Randomness is splitmix64 over (seed, symbol, day, stream), never Python's ``hash`` or a global
generator, so every process with the same seed prints the same tape.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from mystic_trading.sandbox._catalog import DAY_MS, MINUTE_MS, UNIT, Gap, SymbolSpec, _mix

__all__ = ["Agg", "MinuteBlock", "generate_day", "merge", "merge_all", "split_minute"]

MINUTES_PER_DAY = 1440

# (open, high, low, close, volume, quote volume, trades, taker base, taker quote); prices
# and volumes in 1e-8.
Agg = tuple[int, int, int, int, int, int, int, int, int]

I64 = NDArray[np.int64]

# Value-noise octaves of the daily anchor: (period in days, amplitude of log price).
_OCTAVES: tuple[tuple[float, float], ...] = (
    (2.0, 0.02),
    (7.0, 0.05),
    (30.0, 0.12),
    (120.0, 0.3),
    (500.0, 0.6),
    (1500.0, 0.9),
)
_MINUTE_SIGMA = 0.0009  # per-minute volatility of price, so about 3.4 % a day
_MIN_TICKS = 10


def merge(a: Agg, b: Agg) -> Agg:
    """The candle made of ``a`` followed by ``b``."""
    return (
        a[0],
        a[1] if a[1] >= b[1] else b[1],
        a[2] if a[2] <= b[2] else b[2],
        b[3],
        a[4] + b[4],
        a[5] + b[5],
        a[6] + b[6],
        a[7] + b[7],
        a[8] + b[8],
    )


def merge_all(parts: list[Agg | None]) -> Agg | None:
    """The candle made of the present parts in order, or None when none is present."""
    out: Agg | None = None
    for p in parts:
        if p is not None:
            out = p if out is None else merge(out, p)
    return out


def _unit(seed: int, *key: int) -> float:
    """A uniform float in [-1, 1) from the key."""
    return (_mix(seed, *key) >> 11) * (2.0 / 2**53) - 1.0


def anchor_ticks(seed: int, sym_index: int, spec: SymbolSpec, day: int) -> int:
    """The open price of ``day`` (days since the epoch), in ticks."""

    def noise(d: int) -> float:
        f = 0.0
        for k, (period, amp) in enumerate(_OCTAVES):
            x = d / period
            i = math.floor(x)
            t = x - i
            s = t * t * (3.0 - 2.0 * t)
            a = _unit(seed, sym_index, k, i)
            b = _unit(seed, sym_index, k, i + 1)
            f += amp * (a + (b - a) * s)
        return f

    listing_day = spec.listed_ms // DAY_MS
    base = spec.price * UNIT / spec.tick
    return max(_MIN_TICKS, round(base * math.exp(noise(day) - noise(listing_day))))


def _uniforms(key: int, rows: int, n: int) -> NDArray[np.float64]:
    idx = np.arange(rows * n, dtype=np.uint64)
    z = idx * np.uint64(0x9E3779B97F4A7C15) + np.uint64(key)
    z ^= z >> np.uint64(30)
    z *= np.uint64(0xBF58476D1CE4E5B9)
    z ^= z >> np.uint64(27)
    z *= np.uint64(0x94D049BB133111EB)
    z ^= z >> np.uint64(31)
    return ((z >> np.uint64(11)).astype(np.float64) * (1.0 / 2**53)).reshape(rows, n)


@dataclass(frozen=True, slots=True)
class MinuteBlock:
    """The 1440 minutes of one symbol-day; ``exists`` is False before listing and in gaps."""

    day_start: int
    exists: NDArray[np.bool_]
    open: I64
    high: I64
    low: I64
    close: I64
    volume: I64
    quote: I64
    trades: I64
    taker: I64
    taker_quote: I64

    def agg(self, i: int) -> Agg | None:
        """Minute ``i`` of the day, or None if it does not exist."""
        if not self.exists[i]:
            return None
        return (
            int(self.open[i]),
            int(self.high[i]),
            int(self.low[i]),
            int(self.close[i]),
            int(self.volume[i]),
            int(self.quote[i]),
            int(self.trades[i]),
            int(self.taker[i]),
            int(self.taker_quote[i]),
        )

    def groups(self, size: int, lo: int = 0, hi: int = MINUTES_PER_DAY) -> list[Agg | None]:
        """Minutes [lo, hi) aggregated in consecutive groups of ``size`` (size divides hi-lo)."""
        m = self.exists[lo:hi].reshape(-1, size)
        present = m.any(axis=1)
        rows = np.arange(m.shape[0])
        first = np.argmax(m, axis=1)
        last = size - 1 - np.argmax(m[:, ::-1], axis=1)

        def cut(a: I64) -> I64:
            return a[lo:hi].reshape(-1, size)

        o = cut(self.open)[rows, first]
        c = cut(self.close)[rows, last]
        h = np.where(m, cut(self.high), 0).max(axis=1)
        lw = np.where(m, cut(self.low), np.iinfo(np.int64).max).min(axis=1)
        sums = [
            np.where(m, cut(a), 0).sum(axis=1)
            for a in (self.volume, self.quote, self.trades, self.taker, self.taker_quote)
        ]
        cols = [o, h, lw, c, *sums]
        lists: list[list[int]] = [col.tolist() for col in cols]
        flags: list[bool] = np.asarray(present, dtype=bool).tolist()
        return [
            (
                lists[0][g],
                lists[1][g],
                lists[2][g],
                lists[3][g],
                lists[4][g],
                lists[5][g],
                lists[6][g],
                lists[7][g],
                lists[8][g],
            )
            if flags[g]
            else None
            for g in range(len(flags))
        ]


def _exists(spec: SymbolSpec, day_start: int, gaps: tuple[Gap, ...]) -> NDArray[np.bool_]:
    times = day_start + np.arange(MINUTES_PER_DAY, dtype=np.int64) * MINUTE_MS
    ok = times >= spec.listed_ms
    day_end = day_start + DAY_MS
    for g in gaps:
        if g.start < day_end and g.end > day_start:
            ok &= (times < g.start) | (times >= g.end)
    return ok


def generate_day(
    seed: int, sym_index: int, spec: SymbolSpec, day: int, gaps: tuple[Gap, ...]
) -> MinuteBlock:
    """Every minute of ``day`` (days since the epoch) for one symbol."""
    n = MINUTES_PER_DAY
    start = anchor_ticks(seed, sym_index, spec, day)
    target = anchor_ticks(seed, sym_index, spec, day + 1)
    u = _uniforms(_mix(seed, sym_index, day, 0xDA7), 9, n)

    active = u[0] >= spec.quiet_share
    active[-1] = True  # a day always trades at least once, so it can reach the next anchor
    z = (u[1] + u[2] + u[3] - 1.5) * 2.0
    sigma = start * _MINUTE_SIGMA
    inc = np.where(active, z * sigma, 0.0)
    inc += active * ((target - start - inc.sum()) / active.sum())
    close = np.maximum(np.rint(start + np.cumsum(inc)).astype(np.int64), 1)
    last_active = int(np.flatnonzero(active)[-1])
    close[last_active:] += target - close[-1]
    close = np.maximum(close, 1)
    open_ = np.concatenate((np.array([start], dtype=np.int64), close[:-1]))

    wick = np.floor(sigma * 1.2)
    up = np.where(active, np.floor(u[4] ** 3 * wick), 0.0).astype(np.int64)
    dn = np.where(active, np.floor(u[5] ** 3 * wick), 0.0).astype(np.int64)
    high = np.maximum(open_, close) + up
    low = np.maximum(np.minimum(open_, close) - dn, 1)

    mean_steps = spec.minute_volume * UNIT / spec.step
    steps = np.where(active, np.maximum(np.floor(mean_steps * (0.1 + 2.7 * u[6] ** 2)), 1), 0)
    steps = steps.astype(np.int64)
    trades = np.rint(spec.trades_per_minute * (0.2 + 1.6 * u[7])).astype(np.int64)
    trades = np.where(active, np.clip(trades, 1, steps), 0)
    taker = np.floor(steps * u[8]).astype(np.int64)

    # quote = steps * step * price / 1e8 with price = typical ticks * tick; step*tick is a
    # power of ten, so the product stays an exact integer (truncated like Binance's 8 decimals).
    typical = (open_ + high + low + close) // 4
    scale = spec.step * spec.tick
    if scale >= UNIT:
        quote = steps * typical * (scale // UNIT)
        taker_quote = taker * typical * (scale // UNIT)
    else:
        quote = steps * typical // (UNIT // scale)
        taker_quote = taker * typical // (UNIT // scale)

    tick = spec.tick
    return MinuteBlock(
        day_start=day * DAY_MS,
        exists=_exists(spec, day * DAY_MS, gaps),
        open=open_ * tick,
        high=high * tick,
        low=low * tick,
        close=close * tick,
        volume=steps * spec.step,
        quote=quote,
        trades=trades,
        taker=taker * spec.step,
        taker_quote=taker_quote,
    )


def _cuts(total: int, parts: int, rng: random.Random) -> list[int]:
    """``total`` split into ``parts`` positive integers (needs total >= parts)."""
    if parts == 1:
        return [total]
    points = sorted(rng.sample(range(1, total), parts - 1))
    bounds = [0, *points, total]
    return [bounds[i + 1] - bounds[i] for i in range(parts)]


def _prorate(total: int, weights: list[int]) -> list[int]:
    """``total`` split in proportion to ``weights`` by cumulative floors (sums exactly)."""
    whole = sum(weights)
    if whole == 0:
        return [0] * len(weights)
    out: list[int] = []
    cum = 0
    prev = 0
    for w in weights:
        cum += w
        now = total * cum // whole
        out.append(now - prev)
        prev = now
    return out


def split_minute(seed: int, sym_index: int, minute_ms: int, m: Agg, spec: SymbolSpec) -> list[Agg]:
    """The 60 one-second candles of minute ``m``; they aggregate exactly back to ``m``."""
    o, h, lo, c, vol, quote, trades, taker, taker_quote = m
    if trades == 0:
        return [(o, o, o, o, 0, 0, 0, 0, 0)] * 60
    rng = random.Random(_mix(seed, sym_index, minute_ms, 0x5EC))  # noqa: S311 - simulation
    tick, step = spec.tick, spec.step
    steps = vol // step
    k = min(60, trades, steps, rng.randint(1, 40))
    seconds = sorted(rng.sample(range(60), k))
    lt, ht = lo // tick, h // tick
    closes = [rng.randint(lt, ht) * tick for _ in range(k - 1)] + [c]
    vols = [s * step for s in _cuts(steps, k, rng)]
    counts = _cuts(trades, k, rng)
    taker_steps = _prorate(taker // step, [v // step for v in vols])
    takers = [t * step for t in taker_steps]
    quotes = _prorate(quote, vols)
    taker_quotes = _prorate(taker_quote, takers)
    top, bottom = rng.randrange(k), rng.randrange(k)

    out: list[Agg] = []
    prev = o
    j = 0
    for s in range(60):
        if j < k and seconds[j] == s:
            sc = closes[j]
            sh = h if j == top else min(h, max(prev, sc) + rng.randint(0, 2) * tick)
            sl = lo if j == bottom else max(lo, min(prev, sc) - rng.randint(0, 2) * tick)
            out.append(
                (prev, sh, sl, sc, vols[j], quotes[j], counts[j], takers[j], taker_quotes[j])
            )
            prev = sc
            j += 1
        else:
            out.append((prev, prev, prev, prev, 0, 0, 0, 0, 0))
    return out
