"""One admitted request: what the caller reports back, classified.

A :class:`Slot` is what ``Throttler.slot()`` yields. The caller sends its request inside it
and reports the answer with :meth:`Slot.record`; leaving the block without a record (and
without an exception) is a programming error and raises, so no response escapes the
accounting. An exception inside the block is recorded for the caller (timeout, transport
error, or cancelled).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import httpx

from mystic_trading.throttle._queue import Priority
from mystic_trading.throttle._retry import parse_retry_after

if TYPE_CHECKING:
    from types import TracebackType

    from mystic_trading.throttle._throttler import Throttler

__all__ = ["HttpResponse", "Outcome", "Slot", "classify_status"]


class HttpResponse(Protocol):
    """What the throttler reads from a response (``httpx.Response`` is one)."""

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...


@dataclass(frozen=True, slots=True)
class Outcome:
    """A classified answer. ``kind``: ok, rejected, rate_limited, banned, server_error,
    timeout, transport, cancelled or error."""

    kind: str
    status: int | None = None
    retry_after: float | None = None
    used_weight: int | None = None
    latency_s: float | None = None


def classify_status(status: int) -> str:
    """The outcome kind of an HTTP status (rest-api.md "HTTP Return Codes")."""
    if status == 429:
        return "rate_limited"
    if status == 418:
        return "banned"
    if status >= 500:
        return "server_error"
    if status >= 400:
        return "rejected"
    return "ok"


def classify_exception(exc: BaseException) -> str:
    """The outcome kind of an exception raised while sending."""
    if isinstance(exc, (TimeoutError, httpx.TimeoutException)):
        return "timeout"
    if isinstance(exc, (httpx.TransportError, OSError)):
        return "transport"
    if isinstance(exc, BaseException) and not isinstance(exc, Exception):
        return "cancelled"
    return "error"


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header by case-insensitive name (``name`` given in lower case)."""
    value = headers.get(name)
    if value is not None:
        return value
    if isinstance(headers, httpx.Headers):
        return None
    for key, item in headers.items():
        if key.lower() == name:
            return item
    return None


class Slot:
    """Permission to send one request of ``weight`` to ``endpoint``; record its answer."""

    __slots__ = (
        "_throttler",
        "deadline",
        "endpoint",
        "outcome",
        "priority",
        "sent_at",
        "sent_wall_ms",
        "waited_s",
        "weight",
    )

    def __init__(
        self,
        throttler: Throttler,
        endpoint: str,
        weight: int,
        priority: Priority,
        deadline: float,
    ) -> None:
        self._throttler = throttler
        self.endpoint = endpoint
        self.weight = weight
        self.priority = priority
        self.deadline = deadline
        self.outcome: Outcome | None = None
        self.sent_at = math.nan
        self.sent_wall_ms = 0.0  # the exchange's clock (epoch ms) when it was sent
        self.waited_s = math.nan

    async def __aenter__(self) -> Slot:
        await self._throttler._admit(self)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.outcome is None:
            if exc is None:
                self._throttler._finish(self, Outcome("error"))
                raise RuntimeError(
                    f"throttle slot for {self.endpoint} left without record(): call "
                    "slot.record(status, headers) with the response"
                )
            self.record_error(exc)
        assert self.outcome is not None
        await self._throttler._settle(self, self.outcome)

    def record(self, status: int, headers: Mapping[str, str] | None = None) -> Outcome:
        """Report the response's status and headers; the latency is measured here."""
        if self.outcome is not None:
            raise RuntimeError(f"throttle slot for {self.endpoint} recorded twice")
        headers = headers or {}
        throttler = self._throttler
        kind = classify_status(status)
        retry_after = None
        if kind in ("rate_limited", "banned"):
            retry_after = parse_retry_after(
                header(headers, "retry-after"), now_epoch_s=throttler.wall_ms() / 1000
            )
        used_text = header(headers, throttler.budget.header)
        used = int(used_text) if used_text is not None and used_text.isdigit() else None
        outcome = Outcome(
            kind, status, retry_after, used, max(0.0, throttler.clock() - self.sent_at)
        )
        throttler._finish(self, outcome)
        return outcome

    def record_error(self, exc: BaseException) -> Outcome:
        """Report that sending raised ``exc`` (timeout, transport error, cancelled...)."""
        if self.outcome is not None:
            raise RuntimeError(f"throttle slot for {self.endpoint} recorded twice")
        latency = max(0.0, self._throttler.clock() - self.sent_at)
        outcome = Outcome(classify_exception(exc), latency_s=latency)
        self._throttler._finish(self, outcome)
        return outcome
