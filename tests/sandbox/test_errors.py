"""Binance's parameter errors: HTTP 400 with the exact code and message of the real payloads."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from mystic_trading.sandbox import SandboxServer
from sandbox.support import fixture

ILLEGAL_LIMIT = {
    "code": -1100,
    "msg": "Illegal characters found in parameter 'limit'; legal range is '^[0-9]{1,20}$'.",
}
INVALID = "errors/400_-1121_invalid_symbol.json"
BAD_INTERVAL = "errors/400_-1120_invalid_interval.json"
ILLEGAL_SYMBOL = "errors/400_-1100_illegal_chars_symbol.json"
MANDATORY = "errors/400_-1102_mandatory_param_symbol.json"
BTC_1M = {"symbol": "BTCUSDT", "interval": "1m"}
COMBINATION = {"code": -1128, "msg": "Combination of optional parameters invalid."}

CASES: list[tuple[str, str, dict[str, str], Any]] = [
    ("unknown-symbol", "klines", {"symbol": "FOOBAR", "interval": "1m"}, INVALID),
    ("unknown-symbol-ticker", "ticker/price", {"symbol": "FOOBAR"}, INVALID),
    ("unknown-in-symbols", "ticker/24hr", {"symbols": '["BTCUSDT","FOOBAR"]'}, INVALID),
    ("unknown-exchange-info", "exchangeInfo", {"symbol": "FOOBAR"}, INVALID),
    ("bad-interval", "klines", {"symbol": "BTCUSDT", "interval": "1H"}, BAD_INTERVAL),
    ("lowercase-symbol", "klines", {"symbol": "btcusdt", "interval": "1m"}, ILLEGAL_SYMBOL),
    ("symbol-too-long", "depth", {"symbol": "A" * 21}, ILLEGAL_SYMBOL),
    ("missing-symbol", "klines", {"interval": "1m"}, MANDATORY),
    ("empty-symbol", "avgPrice", {"symbol": ""}, MANDATORY),
    ("missing-symbol-depth", "depth", {}, MANDATORY),
    ("limit-not-integer", "klines", {**BTC_1M, "limit": "ten"}, ILLEGAL_LIMIT),
    ("limit-negative", "depth", {"symbol": "BTCUSDT", "limit": "-5"}, ILLEGAL_LIMIT),
    (
        "symbol-and-symbols",
        "ticker/price",
        {"symbol": "BTCUSDT", "symbols": '["BTCUSDT"]'},
        COMBINATION,
    ),
]


@pytest.mark.parametrize(
    ("path", "params", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
async def test_error_answer_is_binances(
    sandbox: SandboxServer, path: str, params: dict[str, str], expected: Any
) -> None:
    """A bad parameter answers HTTP 400 with Binance's code and exact message."""
    body = fixture(expected) if isinstance(expected, str) else expected
    async with httpx.AsyncClient(base_url=sandbox.url) as c:
        r = await c.get(f"/api/v3/{path}", params=params)
    assert r.status_code == 400
    assert r.json() == body


async def test_missing_interval_is_mandatory(sandbox: SandboxServer) -> None:
    """klines without interval: -1102 naming 'interval'."""
    async with httpx.AsyncClient(base_url=sandbox.url) as c:
        r = await c.get("/api/v3/klines", params={"symbol": "BTCUSDT"})
    assert (r.status_code, r.json()) == (
        400,
        {
            "code": -1102,
            "msg": "Mandatory parameter 'interval' was not sent, was empty/null, or malformed.",
        },
    )


@pytest.mark.parametrize("raw", ["BTCUSDT", '["btcusdt"]', "[BTCUSDT]", '{"a":1}'])
async def test_malformed_symbols_is_illegal_chars(sandbox: SandboxServer, raw: str) -> None:
    """A symbols value that is not a JSON array of symbols: -1100 with Binance's pattern."""
    async with httpx.AsyncClient(base_url=sandbox.url) as c:
        r = await c.get("/api/v3/ticker/bookTicker", params={"symbols": raw})
    assert r.status_code == 400
    assert r.json()["code"] == -1100
    assert r.json()["msg"].startswith("Illegal characters found in parameter 'symbols'")


async def test_bad_ticker_type_is_rejected(sandbox: SandboxServer) -> None:
    """ticker/24hr type other than FULL or MINI: -1100 naming 'type'."""
    async with httpx.AsyncClient(base_url=sandbox.url) as c:
        r = await c.get("/api/v3/ticker/24hr", params={"symbol": "BTCUSDT", "type": "HUGE"})
    assert (r.status_code, r.json()["code"]) == (400, -1100)
    assert "'type'" in r.json()["msg"]


async def test_unknown_endpoint_is_404_and_uncharged(sandbox: SandboxServer) -> None:
    """A path Binance does not serve here is a plain 404 that spends no weight."""
    async with httpx.AsyncClient(base_url=sandbox.url) as c:
        before = sandbox.stats.total.requests
        r = await c.get("/api/v3/order")
    assert r.status_code == 404
    assert sandbox.stats.total.requests == before
