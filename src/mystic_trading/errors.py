"""Every error Mystic raises, in one tree.

Callers catch the branch they can act on; each error keeps its facts in attributes
(``retry_after``, ``until``, ``symbol``), not only in its message. Errors from drivers and
HTTP clients are wrapped at the boundary with ``raise ... from exc``, so the original stays
reachable as ``__cause__``.

::

    MysticError
    ├── ConfigError                 a setting is missing or invalid (setting, value, accepted)
    ├── StoreError                  the database failed or cannot be opened (target)
    ├── VenueMismatch               the exchange is not the venue this process keys data by
    ├── UpstreamError               the exchange did not give a usable answer (provider, endpoint)
    │   ├── UpstreamUnavailable     connection refused, timeout, 5xx
    │   ├── UpstreamRejected        a 4xx the caller caused (status, code)
    │   ├── RateLimited             429: back off for retry_after seconds
    │   ├── Banned                  418: no traffic until `until` (UTC ms)
    │   └── MalformedPayload        not JSON, truncated, a field missing or of the wrong type
    ├── ThrottleError               the throttler refused to queue or keep a request
    │   ├── QueueFull               the bounded queue is at capacity (capacity)
    │   └── DeadlinePassed          the request's deadline passed while it waited (deadline)
    └── DataError                   the request itself is wrong; also a ValueError
        ├── InvalidSymbol           not a symbol at all ("BTC//USDT", "")
        ├── UnknownSymbol           well formed but not listed on the exchange
        ├── InvalidInterval         not one of the exchange's intervals
        └── InvalidRange            end before start, or a range too large to serve
"""

from __future__ import annotations

__all__ = [
    "Banned",
    "ConfigError",
    "DataError",
    "DeadlinePassed",
    "InvalidInterval",
    "InvalidRange",
    "InvalidSymbol",
    "MalformedPayload",
    "MysticError",
    "QueueFull",
    "RateLimited",
    "StoreError",
    "ThrottleError",
    "UnknownSymbol",
    "UpstreamError",
    "UpstreamRejected",
    "UpstreamUnavailable",
    "VenueMismatch",
]


class MysticError(Exception):
    """Base of every error Mystic raises."""


class ConfigError(MysticError):
    """A setting is invalid; names the setting, the value given and what is accepted."""

    def __init__(self, message: str, *, setting: str = "", value: object = None) -> None:
        super().__init__(message)
        self.setting = setting
        self.value = value


class StoreError(MysticError):
    """The store failed; ``target`` names the file or the URL with its password masked."""

    def __init__(self, message: str, *, target: str = "") -> None:
        super().__init__(message)
        self.target = target


class VenueMismatch(MysticError):
    """The exchange at the base URL identifies as another venue than the one this process
    keys its data by (``expected``, ``found``): nothing it answers is served or stored.

    Not an UpstreamError on purpose: no stale answer covers it up; the process must be
    restarted against the exchange it now talks to.
    """

    def __init__(self, message: str, *, expected: str, found: str) -> None:
        super().__init__(message)
        self.expected = expected
        self.found = found


class UpstreamError(MysticError):
    """The exchange did not give a usable answer."""

    def __init__(self, message: str, *, provider: str = "", endpoint: str = "") -> None:
        super().__init__(message)
        self.provider = provider
        self.endpoint = endpoint


class UpstreamUnavailable(UpstreamError):
    """Connection refused, timed out, or a 5xx answer."""

    def __init__(
        self, message: str, *, provider: str = "", endpoint: str = "", status: int | None = None
    ) -> None:
        super().__init__(message, provider=provider, endpoint=endpoint)
        self.status = status


class UpstreamRejected(UpstreamError):
    """A 4xx answer caused by the request (never retried)."""

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        endpoint: str = "",
        status: int,
        code: int | None = None,
    ) -> None:
        super().__init__(message, provider=provider, endpoint=endpoint)
        self.status = status
        self.code = code


class RateLimited(UpstreamError):
    """HTTP 429: the exchange asks for ``retry_after`` seconds of silence."""

    def __init__(
        self, message: str, *, provider: str = "", endpoint: str = "", retry_after: float
    ) -> None:
        super().__init__(message, provider=provider, endpoint=endpoint)
        self.retry_after = retry_after


class Banned(UpstreamError):
    """HTTP 418: the exchange banned this IP until ``until`` (UTC epoch milliseconds)."""

    def __init__(self, message: str, *, provider: str = "", endpoint: str = "", until: int) -> None:
        super().__init__(message, provider=provider, endpoint=endpoint)
        self.until = until


class MalformedPayload(UpstreamError):
    """The answer could not be parsed; nothing of it is used or stored."""


class ThrottleError(MysticError):
    """The throttler refused a request before it reached the exchange."""


class QueueFull(ThrottleError):
    """The bounded request queue is full."""

    def __init__(self, message: str, *, capacity: int) -> None:
        super().__init__(message)
        self.capacity = capacity


class DeadlinePassed(ThrottleError):
    """A request's deadline passed before budget was free for it."""

    def __init__(self, message: str, *, deadline: float) -> None:
        super().__init__(message)
        self.deadline = deadline


class DataError(MysticError, ValueError):
    """The request is wrong in itself; retrying it cannot help."""


class InvalidSymbol(DataError):
    """Text that is not a symbol."""

    def __init__(self, message: str, *, symbol: str) -> None:
        super().__init__(message)
        self.symbol = symbol


class UnknownSymbol(DataError):
    """A well-formed symbol the exchange does not list."""

    def __init__(self, message: str, *, symbol: str) -> None:
        super().__init__(message)
        self.symbol = symbol


class InvalidInterval(DataError):
    """Not one of the exchange's candle intervals."""

    def __init__(self, message: str, *, interval: str) -> None:
        super().__init__(message)
        self.interval = interval


class InvalidRange(DataError):
    """A time range that cannot be served: end before start, or too large."""

    def __init__(self, message: str, *, start: int | None = None, end: int | None = None) -> None:
        super().__init__(message)
        self.start = start
        self.end = end
