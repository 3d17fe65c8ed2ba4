"""The coverage map's arithmetic: alignment, merging and gaps of [start, end) ranges.

A range covers the candles whose *open time* lies in it, so [s, e) and [ceil(s), ceil(e))
cover the same candles; ranges are kept in that aligned form, and every gap computed from
them is aligned to the interval as well. "Covered" means known: a covered open time with no
stored candle is a candle known not to exist (before listing, exchange downtime).
"""

from __future__ import annotations

from collections.abc import Iterable

from mystic_trading.errors import InvalidRange
from mystic_trading.models import Interval

__all__ = ["aligned", "check_range", "gaps", "merged"]

Range = tuple[int, int]


def check_range(start: int, end: int) -> None:
    """Refuse an end before its start (an empty range, end == start, is fine)."""
    if end < start:
        raise InvalidRange(
            f"invalid range: end {end} is before start {start} (UTC epoch ms, [start, end))",
            start=start,
            end=end,
        )


def aligned(interval: Interval, start: int, end: int) -> Range:
    """[start, end) widened or narrowed to open times: (ceil(start), ceil(end))."""
    check_range(start, end)
    return interval.ceil(start), interval.ceil(end)


def merged(new: Range, touching: Iterable[Range]) -> Range:
    """``new`` merged with the stored ranges that overlap or touch it."""
    lo, hi = new
    for s, e in touching:
        lo = min(lo, s)
        hi = max(hi, e)
    return lo, hi


def gaps(covered: Iterable[Range], start: int, end: int) -> list[Range]:
    """The parts of [start, end) outside ``covered`` (disjoint ranges, ascending)."""
    out: list[Range] = []
    cursor = start
    for s, e in covered:
        if s > cursor:
            out.append((cursor, min(s, end)))
        cursor = max(cursor, e)
        if cursor >= end:
            break
    if cursor < end:
        out.append((cursor, end))
    return out
