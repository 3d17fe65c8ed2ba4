"""Provenance: every answer says which layer served it, how old it is, and whether it is stale."""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["Answer", "Layer"]

T = TypeVar("T")


class Layer(enum.StrEnum):
    """Where an answer came from, closest first."""

    MEMORY = "memory"
    REDIS = "redis"
    STORE = "store"
    UPSTREAM = "upstream"


@dataclass(frozen=True, slots=True)
class Answer(Generic[T]):
    """A value with its provenance.

    ``fetched_at`` is when the exchange produced the value (UTC epoch ms), so ``age_ms`` is
    the same whichever layer served it. ``stale`` is True only when the value is past its
    freshness and was served anyway: while a refresh runs (stale-while-revalidate) or because
    the exchange failed (stale-if-error).
    """

    value: T
    layer: Layer
    fetched_at: int
    stale: bool = False

    @property
    def age_ms(self) -> int:
        return max(0, int(time.time() * 1000) - self.fetched_at)
