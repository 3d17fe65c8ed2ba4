"""/api/v3 of the service against the sandbox: Binance's shapes, headers, errors."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx

from mystic_trading.sandbox import SandboxServer

from .conftest import Served

FIXTURES = Path(__file__).parent.parent / "fixtures" / "binance"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def same_shape(got: Any, real: Any) -> None:
    """``got`` has ``real``'s keys in its order and each value of its JSON type."""
    if isinstance(real, dict):
        assert isinstance(got, dict), got
        assert list(got) == list(real)
        for key in real:
            same_shape(got[key], real[key])
    elif isinstance(real, list):
        assert isinstance(got, list), got
        if real and not isinstance(real[0], dict | list):  # a row: each field in its place
            assert len(got) == len(real)
            for mine, theirs in zip(got, real, strict=True):
                same_shape(mine, theirs)
        elif real and got:
            for item in got:
                same_shape(item, real[0])
    else:
        assert type(got) is type(real), (got, real)


async def test_answers_have_binance_shapes(served: Served) -> None:
    """Every endpoint answers with the keys, order and field types of the real captures."""
    async with served.client() as c:
        cases = [
            ("ticker/price", {"symbol": "BTCUSDT"}, "ticker_price_single.json"),
            ("ticker/price", {"symbols": '["BTCUSDT","ETHUSDT"]'}, "ticker_price_list_docs.json"),
            ("ticker/bookTicker", {"symbol": "BTCUSDT"}, "bookTicker_single.json"),
            ("ticker/bookTicker", {}, "bookTicker_list_docs.json"),
            ("ticker/24hr", {"symbol": "BTCUSDT"}, "ticker_24hr_single.json"),
            (
                "ticker/24hr",
                {"symbol": "BTCUSDT", "type": "MINI"},
                "ticker_24hr_mini_single_docs.json",
            ),
            (
                "klines",
                {"symbol": "BTCUSDT", "interval": "1m", "limit": "5"},
                "klines_BTCUSDT_1m_2021.json",
            ),
            (
                "uiKlines",
                {"symbol": "BTCUSDT", "interval": "1m", "limit": "5"},
                "klines_BTCUSDT_1m_2021.json",
            ),
            ("depth", {"symbol": "BTCUSDT", "limit": "10"}, "depth_limit10.json"),
            ("avgPrice", {"symbol": "BTCUSDT"}, "avgPrice_docs.json"),
            ("time", {}, "time.json"),
            ("ping", {}, "ping.json"),
        ]
        for path, params, name in cases:
            response = await c.get(f"/api/v3/{path}", params=params)
            assert response.status_code == 200, (path, response.text)
            assert response.headers["content-type"].startswith("application/json")
            same_shape(response.json(), fixture(name))
        klines = (
            await c.get(
                "/api/v3/klines", params={"symbol": "BTCUSDT", "interval": "1m", "limit": "5"}
            )
        ).json()
        assert len(klines) == 5
        depth = (await c.get("/api/v3/depth", params={"symbol": "BTCUSDT", "limit": "10"})).json()
        assert len(depth["bids"]) == len(depth["asks"]) == 10
        info = (await c.get("/api/v3/exchangeInfo")).json()
        real_info = fixture("exchangeInfo_2025-06_ETHBTC.json")
        assert set(real_info) <= set(info)
        assert {s["symbol"] for s in info["symbols"]} >= {"BTCUSDT", "ETHUSDT"}
        one = (await c.get("/api/v3/exchangeInfo", params={"symbol": "ETHUSDT"})).json()
        assert [s["symbol"] for s in one["symbols"]] == ["ETHUSDT"]


async def test_candles_are_the_exchanges_own(served: Served) -> None:
    """klines answers exactly the sandbox's final candles over a paged range."""
    exchange = served.exchange
    now = exchange.clock_ms()
    start = (now // 60_000 - 30) * 60_000
    async with served.client() as c:
        rows = (
            await c.get(
                "/api/v3/klines",
                params={"symbol": "ETHUSDT", "interval": "1m", "startTime": start, "limit": 20},
            )
        ).json()
    assert [r[0] for r in rows] == [start + i * 60_000 for i in range(20)]
    for row in rows:
        truth = exchange.final_candle("ETHUSDT", "1m", row[0])
        assert truth is not None
        assert row == json.loads(json.dumps(truth))


async def test_provenance_headers(served: Served) -> None:
    """The first answer is from upstream, the next from memory; stale is false; the used
    weight is the exchange's count of this IP's window."""
    async with served.client() as c:
        minute = int(time.time() // 60)
        first = await c.get("/api/v3/ticker/price", params={"symbol": "BTCUSDT"})
        second = await c.get("/api/v3/ticker/price", params={"symbol": "BTCUSDT"})
        same_minute = minute == int(time.time() // 60)
    assert first.headers["x-mystic-layer"] == "upstream"
    assert second.headers["x-mystic-layer"] == "memory"
    assert second.json() == first.json()
    for response in (first, second):
        assert response.headers["x-mystic-stale"] == "false"
        assert int(response.headers["x-mystic-age-ms"]) >= 0
        used = int(response.headers["x-mbx-used-weight-1m"])
        assert 0 < used <= served.exchange.stats.total.weight
    if same_minute:
        assert used == served.exchange.stats.total.weight


async def test_bad_input_gives_binances_errors(served: Served) -> None:
    """Bad intervals, symbols and numbers give Binance's code, message and status."""
    async with served.client() as c:

        async def err(path: str, **params: str) -> tuple[int, Any]:
            r = await c.get(f"/api/v3/{path}", params=params)
            return r.status_code, r.json()

        assert await err("klines", symbol="BTCUSDT", interval="7m") == (
            400,
            fixture("errors/400_-1120_invalid_interval.json"),
        )
        assert await err("ticker/price", symbol="NOPEUSDT") == (
            400,
            fixture("errors/400_-1121_invalid_symbol.json"),
        )
        assert await err("ticker/price", symbol="btcusdt") == (
            400,
            fixture("errors/400_-1100_illegal_chars_symbol.json"),
        )
        assert await err("depth") == (400, fixture("errors/400_-1102_mandatory_param_symbol.json"))
        status, body = await err("klines", symbol="BTCUSDT", interval="1m", limit="-1")
        assert (status, body["code"]) == (400, -1100)
        assert "'limit'" in body["msg"]
        status, body = await err("ticker/price", symbol="BTCUSDT", symbols='["BTCUSDT"]')
        assert (status, body["code"]) == (400, -1128)
        status, body = await err("klines", symbol="BTCUSDT", interval="1m", timeZone="+08:00")
        assert (status, body["code"]) == (400, -1130)
        assert "timeZone" in body["msg"]
        big = await c.get(
            "/api/v3/klines", params={"symbol": "BTCUSDT", "interval": "1m", "limit": "5000"}
        )
        assert len(big.json()) == 1000  # clamped as Binance clamps


async def test_signed_and_private_requests_are_refused_and_never_forwarded(
    served: Served,
) -> None:
    """Signed, keyed and account requests get -2015 and never reach the exchange."""
    exchange: SandboxServer = served.exchange
    async with served.client() as c:
        assert (await c.get("/readyz")).status_code == 200  # the listing is loaded
        before = exchange.stats.total.requests
        answers = [
            await c.get("/api/v3/account", params={"timestamp": "1", "signature": "ab"}),
            await c.post("/api/v3/order", params={"symbol": "BTCUSDT"}),
            await c.get(
                "/api/v3/trades", params={"symbol": "BTCUSDT"}, headers={"X-MBX-APIKEY": "k"}
            ),
            await c.get("/api/v3/openOrders"),
            await c.post("/api/v3/userDataStream"),
            await c.delete("/api/v3/ticker/price", params={"symbol": "BTCUSDT"}),
        ]
    for r in answers:
        assert r.status_code == 401, r.text
        assert r.json()["code"] == -2015
    assert exchange.stats.total.requests == before


async def test_public_gets_are_forwarded_once_then_served_from_memory(served: Served) -> None:
    """ticker/24hr goes to the exchange once, then is answered from memory byte for byte; a
    public GET the exchange does not serve passes its answer on; an unknown path is 404."""
    exchange = served.exchange
    async with served.client() as c:
        params = {"symbol": "BTCUSDT"}
        first = await c.get("/api/v3/ticker/24hr", params=params)
        again = await c.get("/api/v3/ticker/24hr", params=params)
        trades = await c.get("/api/v3/trades", params=params)
        unknown = await c.get("/api/v3/nothing")
    async with httpx.AsyncClient(base_url=exchange.url) as direct:
        trades_direct = await direct.get("/api/v3/trades", params=params)
    assert first.headers["x-mystic-layer"] == "upstream"
    assert again.headers["x-mystic-layer"] == "memory"
    assert again.content == first.content
    assert exchange.stats.endpoint("ticker/24hr").requests == 1
    assert (trades.status_code, trades.content) == (
        trades_direct.status_code,
        trades_direct.content,
    )
    assert unknown.status_code == 404 and unknown.json()["code"] == -1000


async def test_livez_and_readyz(served: Served) -> None:
    """livez answers; readyz is ready once the store answers and the listing is loaded."""
    async with served.client() as c:
        live = await c.get("/livez")
        ready = await c.get("/readyz")
    assert live.status_code == 200
    assert ready.status_code == 200, ready.text
    assert ready.json()["status"] == "ready"


async def test_size_limits(served: Served) -> None:
    """A body or headers over their limits are refused before anything reads them."""
    async with served.client() as c:
        body = await c.post("/api/v3/order", content=b"x" * (128 * 1024))
        headers = await c.get("/api/v3/ping", headers={"X-Big": "y" * (20 * 1024)})
        query = await c.get("/api/v3/ping", params={"q": "z" * (20 * 1024)})
    assert body.status_code == 413
    assert headers.status_code == 431
    assert query.status_code == 414


async def test_klines_answer_what_binance_answers_across_a_listing_and_gaps(
    served: Served,
) -> None:
    """Binance answers the first ``limit`` candles that exist from ``startTime`` (or the last
    ``limit``): a start before the listing, and a range across a gap in the series, give the
    exchange's own rows, not a short page that would stop a paging client (ccxt, freqtrade);
    a range the window covers is still answered by Mystic's layers."""
    cases = [
        {"symbol": "BTCUSDT", "interval": "1h", "startTime": "1502900000000", "limit": "5"},
        {"symbol": "BTCUSDT", "interval": "1m", "startTime": "0", "limit": "1"},
        {"symbol": "ETHUSDT", "interval": "1h", "limit": "1000"},
    ]
    async with served.client() as c, httpx.AsyncClient(base_url=served.exchange.url) as direct:
        for params in cases:
            ours = await c.get("/api/v3/klines", params=params)
            theirs = await direct.get("/api/v3/klines", params=params)
            assert ours.status_code == theirs.status_code == 200, ours.text
            mine, truth = ours.json(), theirs.json()
            assert len(mine) == len(truth) == int(params["limit"]), params
            # The candle open now may have moved between the two calls: the closed ones match.
            assert mine[:-1] == truth[:-1] and mine[-1][0] == truth[-1][0], params
        inside = {"symbol": "BTCUSDT", "interval": "1h", "startTime": truth[0][0], "limit": "3"}
        first = await c.get("/api/v3/klines", params=inside)
        again = await c.get("/api/v3/klines", params=inside)
    assert len(first.json()) == 3
    assert again.headers["x-mystic-layer"] in ("memory", "store")
