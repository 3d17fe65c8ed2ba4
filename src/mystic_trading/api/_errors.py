"""Binance's error answers, and Mystic's errors turned into them.

Bodies are Binance's ``{"code", "msg"}`` with the HTTP status Binance gives the same fault
(errors.md; tests/fixtures/binance/errors/), so a client's own mapping (ccxt's ``exact`` codes:
-1121 BadSymbol, -1120 and -1100 BadRequest, -1003 RateLimitExceeded, -2015
AuthenticationError) works unchanged. Where the fault is Mystic's upstream (a ban, a 429
pause, an outage) and nothing can be served, the answer is 429 with ``Retry-After`` in the
-1003 form: the client is not banned, the exchange is holding Mystic back, and 429 is what
every Binance client already backs off from. Never a 5xx for that (issue 13, item 2).

Mystic's own ``/api/v1/`` answers the same faults in its own envelope (:class:`V1Error`,
:func:`v1_error_of`): ``{"error": {"code": "<snake_case>", "message": "<one line>", "field":
"<parameter or null>"}}``, 422 for invalid input naming the parameter, 404 for an unknown
symbol, 409 for a change the controller refused, 429/503 with ``Retry-After`` where the
exchange or the store holds Mystic back.
"""

from __future__ import annotations

import math
from typing import Any

from mystic_trading.errors import (
    Banned,
    ConfigError,
    DataError,
    InvalidInterval,
    InvalidRange,
    InvalidSymbol,
    MalformedPayload,
    MysticError,
    RateLimited,
    StoreError,
    ThrottleError,
    UnknownSymbol,
    UpstreamRejected,
    UpstreamUnavailable,
    VenueMismatch,
)
from mystic_trading.models import iso_from_ms

__all__ = [
    "ApiRefusal",
    "V1Error",
    "illegal_chars",
    "invalid",
    "invalid_symbol",
    "mandatory",
    "refusal_of",
    "signed_refused",
    "v1_error_of",
]

SYMBOL_PATTERN = "^[A-Z0-9-_.]{1,20}$"
SYMBOLS_PATTERN = '^\\[("[A-Z0-9-_.]{1,20}"(,"[A-Z0-9-_.]{1,20}"){0,}){0,1}\\]$'
INTEGER_PATTERN = "^[0-9]{1,20}$"
# How long a client told "the exchange is unreachable" should wait before asking again.
OUTAGE_RETRY_S = 5
# How long a client told "Mystic's own queue to the exchange is full" should wait.
QUEUE_RETRY_S = 1


class ApiRefusal(Exception):
    """An answer Binance would give instead of data: HTTP ``status``, ``code`` and ``msg``,
    with ``retry_after`` seconds when the client should wait."""

    def __init__(self, status: int, code: int, msg: str, retry_after: int | None = None):
        super().__init__(msg)
        self.status = status
        self.code = code
        self.msg = msg
        self.retry_after = retry_after


def invalid_symbol() -> ApiRefusal:
    """-1121, as rest-api.md's "Error Codes" sample."""
    return ApiRefusal(400, -1121, "Invalid symbol.")


def illegal_chars(param: str, pattern: str) -> ApiRefusal:
    """-1100 ILLEGAL_CHARS, errors.md's template."""
    return ApiRefusal(
        400, -1100, f"Illegal characters found in parameter '{param}'; legal range is '{pattern}'."
    )


def mandatory(param: str) -> ApiRefusal:
    """-1102, the CHANGELOG 2022-04-12 wording."""
    return ApiRefusal(
        400, -1102, f"Mandatory parameter '{param}' was not sent, was empty/null, or malformed."
    )


def not_valid(param: str, why: str = "") -> ApiRefusal:
    """-1130 INVALID_PARAMETER: "Data sent for parameter '%s' is not valid."."""
    return ApiRefusal(
        400, -1130, f"Data sent for parameter '{param}' is not valid." + (f" {why}" if why else "")
    )


def signed_refused(path: str) -> ApiRefusal:
    """-2015 (HTTP 401): what Binance answers a request its key may not make. Mystic holds
    no key and never forwards signed or account requests; the message says where to go."""
    return ApiRefusal(
        401,
        -2015,
        "Invalid API-key, IP, or permissions for action. Mystic serves public market data "
        f"only and never forwards {path}: send signed and account requests to the exchange "
        "itself.",
    )


def _seconds_until(until_ms: int, now_ms: int) -> int:
    return max(1, math.ceil((until_ms - now_ms) / 1000))


def refusal_of(exc: MysticError, now_ms: int) -> ApiRefusal:
    """The Binance answer for a Mystic error raised while serving a request."""
    if isinstance(exc, InvalidSymbol | UnknownSymbol):
        return invalid_symbol()
    if isinstance(exc, InvalidInterval):
        return ApiRefusal(400, -1120, "Invalid interval.")
    if isinstance(exc, Banned):
        wait = _seconds_until(exc.until, now_ms)
        return ApiRefusal(
            429,
            -1003,
            f"Too much request weight used; the exchange has banned Mystic's IP until "
            f"{exc.until} ({iso_from_ms(exc.until)}) and Mystic holds no answer for this "
            f"request. Retry after {wait} s.",
            retry_after=wait,
        )
    if isinstance(exc, RateLimited):
        wait = max(1, math.ceil(exc.retry_after))
        return ApiRefusal(
            429,
            -1003,
            "Too much request weight used; the exchange asked Mystic to pause and Mystic "
            f"holds no answer for this request. Retry after {wait} s.",
            retry_after=wait,
        )
    if isinstance(exc, ThrottleError):
        return ApiRefusal(
            429,
            -1003,
            "Too much request weight used; Mystic's queue to the exchange is full or too "
            f"slow for this request ({exc}). Retry after {QUEUE_RETRY_S} s.",
            retry_after=QUEUE_RETRY_S,
        )
    if isinstance(exc, UpstreamUnavailable):
        return ApiRefusal(
            429,
            -1003,
            "The exchange is unreachable and Mystic holds no answer for this request. "
            f"Retry after {OUTAGE_RETRY_S} s.",
            retry_after=OUTAGE_RETRY_S,
        )
    if isinstance(exc, UpstreamRejected):
        return ApiRefusal(exc.status, exc.code if exc.code is not None else -1000, str(exc))
    if isinstance(exc, InvalidRange):
        return ApiRefusal(400, -1130, f"Data sent for a parameter is not valid: {exc}")
    if isinstance(exc, DataError):
        return ApiRefusal(400, -1130, f"Data sent for a parameter is not valid: {exc}")
    if isinstance(exc, MalformedPayload | VenueMismatch):
        return ApiRefusal(502, -1000, f"The exchange's answer could not be used: {exc}")
    if isinstance(exc, StoreError):
        return ApiRefusal(503, -1000, f"Mystic's store is unavailable: {exc}")
    return ApiRefusal(500, -1000, f"An unknown error occurred while processing the request: {exc}")


# -- /api/v1 ----------------------------------------------------------------------------------


class V1Error(Exception):
    """An error answer of ``/api/v1``: HTTP ``status``, a snake_case ``code``, a one-line
    ``message`` naming what was wrong, the parameter (``field``) when one was, and
    ``retry_after`` seconds when the client should wait."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        retry_after: int | None = None,
        result: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.retry_after = retry_after
        # A refused change's answer as the Controller gave it (409): what stands and why, so
        # a client prints exactly what the local command would.
        self.result = result

    def body(self) -> dict[str, Any]:
        error = {"code": self.code, "message": self.message, "field": self.field}
        return {"error": error} if self.result is None else {"error": error, "result": self.result}


def invalid(field: str, message: str) -> V1Error:
    """422: the parameter ``field`` is not valid; ``message`` says how."""
    return V1Error(422, "invalid", f"{field}: {message}", field)


def v1_error_of(exc: MysticError, now_ms: int, field: str | None = None) -> V1Error:
    """The ``/api/v1`` answer for a Mystic error raised while serving a request; ``field``
    names the parameter an invalid-input error is about when the caller knows it."""
    line = " ".join(str(exc).split())
    if isinstance(exc, UnknownSymbol):
        return V1Error(404, "unknown_symbol", line, field or "symbol")
    if isinstance(exc, InvalidSymbol):
        return V1Error(422, "invalid", line, field or "symbol")
    if isinstance(exc, InvalidInterval):
        return V1Error(422, "invalid", line, field or "interval")
    if isinstance(exc, ConfigError):
        return V1Error(422, "invalid", line, field or exc.setting or None)
    if isinstance(exc, DataError):
        return V1Error(422, "invalid", line, field)
    refusal = refusal_of(exc, now_ms)
    if isinstance(exc, Banned):
        return V1Error(429, "banned", refusal.msg, None, refusal.retry_after)
    if isinstance(exc, RateLimited):
        return V1Error(429, "rate_limited", refusal.msg, None, refusal.retry_after)
    if isinstance(exc, ThrottleError):
        return V1Error(429, "throttled", refusal.msg, None, refusal.retry_after)
    if isinstance(exc, UpstreamUnavailable):
        return V1Error(429, "upstream_unavailable", refusal.msg, None, refusal.retry_after)
    if isinstance(exc, UpstreamRejected):
        status = exc.status if 400 <= exc.status < 500 and exc.status != 418 else 502
        return V1Error(status, "upstream_rejected", line)
    if isinstance(exc, MalformedPayload | VenueMismatch):
        return V1Error(502, "bad_upstream", refusal.msg)
    if isinstance(exc, StoreError):
        return V1Error(503, "store_unavailable", refusal.msg, None, OUTAGE_RETRY_S)
    return V1Error(500, "internal", refusal.msg)
