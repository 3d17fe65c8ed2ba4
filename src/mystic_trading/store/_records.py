"""Values the repositories return besides the domain models."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

__all__ = ["Alert", "Ban", "ControlChange", "ControlState", "Severity", "Stored"]

T = TypeVar("T")
Severity = Literal["warning", "critical"]


@dataclass(frozen=True, slots=True)
class Stored(Generic[T]):
    """A stored snapshot and when it was fetched from upstream (UTC epoch ms)."""

    value: T
    fetched_at: int


@dataclass(frozen=True, slots=True)
class ControlState:
    """A provider's throttle level and tunables, and who changed them last."""

    provider: str
    level: str | None
    tunables: dict[str, Any]
    updated_at: int
    updated_by: str


@dataclass(frozen=True, slots=True)
class ControlChange:
    """One audit-log entry: ``field`` of ``provider`` went from ``from_value`` to ``to_value``."""

    id: int
    provider: str
    field: str
    actor: str
    at: int
    from_value: str | None
    to_value: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class Ban:
    """An upstream ban: no traffic to ``provider`` before ``until_ms`` (UTC epoch ms)."""

    provider: str
    until_ms: int
    reason: str
    created_at: int


@dataclass(frozen=True, slots=True)
class Alert:
    """A monitoring alert: a rule (the health check it follows) about a subject (a venue
    or a process), open while ``resolved_at`` is None. ``created_at`` is when it opened;
    ``value`` and ``message`` are the latest judged, ``threshold`` the one its severity
    crossed; ``seen_at`` is when a process last judged it beyond a threshold. Times are UTC
    epoch ms."""

    id: int
    rule: str
    severity: Severity
    message: str
    value: float
    threshold: float
    created_at: int
    resolved_at: int | None
    subject: str = ""
    escalated_at: int | None = None
    seen_at: int | None = None
    warning: float | None = None
    critical: float | None = None
    unit: str = ""

    @property
    def opened_at(self) -> int:
        return self.created_at
