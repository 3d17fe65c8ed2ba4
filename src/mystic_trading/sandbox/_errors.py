"""Binance's error answers: ``{"code": ..., "msg": ...}`` with the exact published wording.

Texts come from errors.md and real bodies in /work/shared/exchange-payloads/binance/errors/
(copied to tests/fixtures/binance/errors/). ``ApiError`` is the sandbox's internal signal from
parameter checks to the HTTP layer; it never leaves the sandbox.
"""

from __future__ import annotations

import json

__all__ = [
    "SYMBOLS_PATTERN",
    "SYMBOL_PATTERN",
    "ApiError",
    "banned",
    "body",
    "illegal_chars",
    "invalid_interval",
    "invalid_symbol",
    "mandatory",
    "optional_combination",
    "server_error",
    "too_much_weight",
]

SYMBOL_PATTERN = "^[A-Z0-9-_.]{1,20}$"
SYMBOLS_PATTERN = '^\\[("[A-Z0-9-_.]{1,20}"(,"[A-Z0-9-_.]{1,20}"){0,}){0,1}\\]$'
INTEGER_PATTERN = "^[0-9]{1,20}$"


class ApiError(Exception):
    """An answer Binance would give instead of data: HTTP ``status`` with ``code`` and ``msg``."""

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.status = status

    @property
    def body(self) -> bytes:
        return body(self.code, self.msg)


def body(code: int, msg: str) -> bytes:
    """Binance's error envelope, compact as the exchange sends it."""
    return json.dumps({"code": code, "msg": msg}, separators=(",", ":")).encode()


def invalid_symbol() -> ApiError:
    """-1121 BAD_SYMBOL (rest-api.md "Error Codes" sample)."""
    return ApiError(-1121, "Invalid symbol.")


def invalid_interval() -> ApiError:
    """-1120 BAD_INTERVAL."""
    return ApiError(-1120, "Invalid interval.")


def illegal_chars(param: str, pattern: str) -> ApiError:
    """-1100 ILLEGAL_CHARS: "Illegal characters found in parameter '%s'; legal range is '%s'."."""
    return ApiError(
        -1100, f"Illegal characters found in parameter '{param}'; legal range is '{pattern}'."
    )


def mandatory(param: str) -> ApiError:
    """-1102 MANDATORY_PARAM_EMPTY_OR_MALFORMED (CHANGELOG 2022-04-12 wording)."""
    return ApiError(
        -1102, f"Mandatory parameter '{param}' was not sent, was empty/null, or malformed."
    )


def optional_combination() -> ApiError:
    """-1128 OPTIONAL_PARAMS_BAD_COMBO: e.g. both ``symbol`` and ``symbols``."""
    return ApiError(-1128, "Combination of optional parameters invalid.")


def too_much_weight(limit: int, per: str) -> ApiError:
    """-1003 with HTTP 429, current errors.md wording; ``per`` is e.g. "1 MINUTE"."""
    return ApiError(
        -1003,
        f"Too much request weight used; current limit is {limit} request weight per {per}. "
        "Please use WebSocket Streams for live updates to avoid polling the API.",
        status=429,
    )


def banned(until_ms: int) -> ApiError:
    """-1003 with HTTP 418: the IP is banned until ``until_ms`` (epoch ms, as Binance prints)."""
    return ApiError(
        -1003,
        f"Way too much request weight used; IP banned until {until_ms}. "
        "Please use WebSocket Streams for live updates to avoid bans.",
        status=418,
    )


def server_error(status: int) -> ApiError:
    """An injected 5xx: -1001 DISCONNECTED for 500, -1008 SERVER_BUSY for 503 (errors.md)."""
    if status == 503:
        return ApiError(
            -1008,
            "Server is currently overloaded with other requests. "
            "Please try again in a few minutes.",
            status=503,
        )
    return ApiError(
        -1001, "Internal error; unable to process your request. Please try again.", status=status
    )
