"""Every endpoint answers in Binance's documented shape: same keys, same JSON types, decimals
as strings with the same number of places as the real payloads."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from mystic_trading.sandbox import SandboxServer
from sandbox.support import NOW, fixture

_DECIMAL = re.compile(r"^-?\d+\.(\d+)$")
_INTEGER = re.compile(r"^-?\d+$")


def assert_shape(actual: Any, expected: Any, path: str = "$") -> None:
    """``actual`` has the keys, JSON types and decimal-string form of ``expected``."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{path}: expected an object, got {actual!r}"
        assert set(actual) == set(expected), f"{path}: keys differ: {set(actual) ^ set(expected)}"
        for key, value in expected.items():
            assert_shape(actual[key], value, f"{path}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list), f"{path}: expected an array, got {actual!r}"
        if not expected:  # e.g. "permissions": [] in the capture
            assert actual == [], f"{path}: expected [] as in the capture"
            return
        assert actual, f"{path}: an empty array shows no shape"
        kinds = {type(e) for e in expected}
        if len(kinds) > 1:  # a positional row, such as the 12-field kline
            assert len(actual) == len(expected), f"{path}: {len(actual)} fields"
            for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
                assert_shape(a, e, f"{path}[{i}]")
        else:
            for i, a in enumerate(actual):
                assert_shape(a, expected[0], f"{path}[{i}]")
    else:
        assert type(actual) is type(expected), f"{path}: {actual!r} is not like {expected!r}"
        if isinstance(expected, str):
            decimal = _DECIMAL.match(expected)
            if decimal:
                got = _DECIMAL.match(actual)
                assert got, f"{path}: {actual!r} is not a decimal string"
                assert len(got.group(1)) == len(decimal.group(1)), f"{path}: {actual!r} places"
            elif _INTEGER.match(expected):
                assert _INTEGER.match(actual), f"{path}: {actual!r} is not an integer string"


async def get(client: httpx.AsyncClient, path: str, **params: Any) -> Any:
    r = await client.get(f"/api/v3/{path}", params=params)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    return r.json()


SINGLE = [
    ("ping", {}, "ping.json"),
    ("time", {}, "time.json"),
    ("ticker/price", {"symbol": "BTCUSDT"}, "ticker_price_single.json"),
    ("ticker/bookTicker", {"symbol": "BTCUSDT"}, "bookTicker_single.json"),
    ("ticker/24hr", {"symbol": "BTCUSDT"}, "ticker_24hr_single.json"),
    ("ticker/24hr", {"symbol": "BTCUSDT", "type": "MINI"}, "ticker_24hr_mini_single_docs.json"),
    ("ticker/24hr", {"symbol": "BTCUSDT", "type": "FULL"}, "ticker_24hr_single.json"),
    ("avgPrice", {"symbol": "BTCUSDT"}, "avgPrice_docs.json"),
    ("depth", {"symbol": "BTCUSDT", "limit": "10"}, "depth_limit10.json"),
    (
        "klines",
        {"symbol": "BTCUSDT", "interval": "1m", "limit": "10"},
        "klines_BTCUSDT_1m_2021.json",
    ),
    (
        "klines",
        {"symbol": "ETHBTC", "interval": "1m"},
        "klines_ETHBTC_1m_2025-06-21_last_candle_open.json",
    ),
]
LISTS = [
    ("ticker/price", "ticker_price_list_docs.json"),
    ("ticker/bookTicker", "bookTicker_list_docs.json"),
    ("ticker/24hr", "ticker_24hr_list_docs.json"),
]


@pytest.mark.parametrize(("path", "params", "name"), SINGLE, ids=[s[2] for s in SINGLE])
async def test_single_answer_has_binance_shape(
    client: httpx.AsyncClient, path: str, params: dict[str, str], name: str
) -> None:
    """A single-symbol (or symbol-less) answer has the keys and types of the real payload."""
    body = await get(client, path, **params)
    expected = fixture(name)
    if name == "ping.json":
        assert body == expected == {}
        return
    assert_shape(body, expected)


@pytest.mark.parametrize(("path", "name"), LISTS, ids=[n for _, n in LISTS])
@pytest.mark.parametrize(
    "selection",
    [{}, {"symbols": '["BTCUSDT","ETHBTC"]'}, {"symbols": '["BTCUSDT", "ETHBTC"]'}],
    ids=["all", "json-array", "json-array-with-space"],
)
async def test_list_answer_has_binance_shape(
    client: httpx.AsyncClient, sandbox: SandboxServer, path: str, name: str, selection: Any
) -> None:
    """All symbols, or a ``symbols`` JSON array, give an array of single-shape entries."""
    body = await get(client, path, **selection)
    assert_shape(body, fixture(name))
    listed = [s.symbol for s in sandbox.market.listed(NOW)]
    expected = listed if not selection else ["BTCUSDT", "ETHBTC"]
    assert [e["symbol"] for e in body] == expected


async def test_symbols_param_url_encoded_by_hand_is_read(client: httpx.AsyncClient) -> None:
    """The docs' URL-encoded form %5B%22BTCUSDT%22,%22BNBUSDT%22%5D selects those symbols."""
    r = await client.get("/api/v3/ticker/price?symbols=%5B%22BTCUSDT%22,%22BNBUSDT%22%5D")
    assert r.status_code == 200, r.text
    assert [e["symbol"] for e in r.json()] == ["BTCUSDT", "BNBUSDT"]


async def test_mini_list_has_binance_shape(client: httpx.AsyncClient) -> None:
    """ticker/24hr type=MINI over several symbols has the MINI list shape."""
    body = await get(client, "ticker/24hr", type="MINI", symbols='["BTCUSDT","ETHBTC"]')
    assert_shape(body, fixture("ticker_24hr_mini_list_docs.json"))


async def test_exchange_info_has_capture_shape(client: httpx.AsyncClient) -> None:
    """exchangeInfo has the 2025 capture's keys; symbols carry PRICE_FILTER, LOT_SIZE, NOTIONAL."""
    body = await get(client, "exchangeInfo")
    capture = fixture("exchangeInfo_2025-06_ETHBTC.json")
    assert set(body) == set(capture)
    assert_shape(body["rateLimits"], capture["rateLimits"])
    real = capture["symbols"][0]
    by_type = {f["filterType"]: f for f in real["filters"]}
    assert len(body["symbols"]) >= 30
    for entry in body["symbols"]:
        assert set(entry) == set(real)
        assert_shape({k: v for k, v in entry.items() if k != "filters"},
                     {k: v for k, v in real.items() if k != "filters"})  # fmt: skip
        types = [f["filterType"] for f in entry["filters"]]
        assert types == ["PRICE_FILTER", "LOT_SIZE", "NOTIONAL"]
        for f in entry["filters"]:
            assert_shape(f, by_type[f["filterType"]])
    ethbtc = next(s for s in body["symbols"] if s["symbol"] == "ETHBTC")
    assert (ethbtc["baseAsset"], ethbtc["quoteAsset"], ethbtc["status"]) == (
        "ETH",
        "BTC",
        "TRADING",
    )
    assert ethbtc["filters"][0]["tickSize"] == real["filters"][0]["tickSize"]


async def test_exchange_info_selects_symbol_and_symbols(client: httpx.AsyncClient) -> None:
    """exchangeInfo?symbol= and ?symbols=[...] list only those symbols, in the order asked."""
    one = await get(client, "exchangeInfo", symbol="ETHBTC")
    assert [s["symbol"] for s in one["symbols"]] == ["ETHBTC"]
    two = await get(client, "exchangeInfo", symbols='["SOLUSDT","BTCUSDT"]')
    assert [s["symbol"] for s in two["symbols"]] == ["SOLUSDT", "BTCUSDT"]


async def test_exchange_info_rate_limits_reflect_budget(start_sandbox: Any) -> None:
    """rateLimits REQUEST_WEIGHT carries the configured budget and window; ORDERS and RAW too."""
    sb = await start_sandbox(weight_limit=321, window_s=10)
    async with httpx.AsyncClient(base_url=sb.url) as c:
        limits = (await get(c, "exchangeInfo"))["rateLimits"]
    assert limits[0] == {
        "rateLimitType": "REQUEST_WEIGHT",
        "interval": "SECOND",
        "intervalNum": 10,
        "limit": 321,
    }
    assert {x["rateLimitType"] for x in limits} == {"REQUEST_WEIGHT", "ORDERS", "RAW_REQUESTS"}


async def test_depth_levels_are_ordered_and_limited(client: httpx.AsyncClient) -> None:
    """depth: default 100 levels, bids descending below asks ascending, limit>5000 gives 5000."""
    book = await get(client, "depth", symbol="BTCUSDT")
    assert len(book["bids"]) == len(book["asks"]) == 100
    bids = [float(p) for p, _ in book["bids"]]
    asks = [float(p) for p, _ in book["asks"]]
    assert bids == sorted(bids, reverse=True)
    assert asks == sorted(asks)
    assert bids[0] < asks[0]
    big = await get(client, "depth", symbol="BTCUSDT", limit="9000")
    assert len(big["bids"]) == len(big["asks"]) == 5000
