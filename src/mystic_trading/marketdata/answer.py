"""Provenance: every answer says which layer served it, how old it is, and whether it is stale."""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass
from typing import Generic, NamedTuple, TypeVar

__all__ = ["Answer", "Layer", "Part", "stamp_ms"]

T = TypeVar("T")


class Layer(enum.StrEnum):
    """Where an answer came from, closest first."""

    MEMORY = "memory"
    REDIS = "redis"
    STORE = "store"
    UPSTREAM = "upstream"


class Part(NamedTuple):
    """A range of a candle answer, ``[start, end)`` in open times (UTC ms), and the layer it
    was read from when the answer was assembled: the store's covered ranges, the exchange's
    pages (the candle open now among them)."""

    start: int
    end: int
    layer: Layer


@dataclass(frozen=True, slots=True)
class Answer(Generic[T]):
    """A value with its provenance.

    ``fetched_at`` is when the value arrived from the exchange, on this machine's wall clock
    (UTC epoch ms, :func:`stamp_ms`), so ``age_ms`` is the same whichever layer served it and
    is not shifted by the exchange's clock being skewed against ours (a value fetched from an
    exchange 5 s ahead read 0 ms old for 5 s). ``stale`` is True only when the value is past its
    freshness and was served anyway: while a refresh runs (stale-while-revalidate) or because
    the exchange failed (stale-if-error).

    ``parts``, for a candle window, says where each range of it was read when the answer was
    assembled (:class:`Part`, in order, covering the window), which ``layer`` (where this
    answer was served from: memory, say, for a window assembled a minute ago from the store
    and one upstream page) does not; memory and Redis keep them with the value. Empty when
    the whole value came from ``layer``, or for anything but candles.
    """

    value: T
    layer: Layer
    fetched_at: int
    stale: bool = False
    parts: tuple[Part, ...] = ()

    @property
    def age_ms(self) -> int:
        return max(0, stamp_ms() - self.fetched_at)


def stamp_ms() -> int:
    """This machine's wall clock in UTC epoch ms: what ``fetched_at`` and ``age_ms`` use."""
    return time.time_ns() // 1_000_000
