"""/api/v1 of the service against the sandbox: shapes, provenance, CSV, and every bad input
refused with a 4xx naming the parameter."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import msgspec
import pytest

from mystic_trading.api._openapi import (
    AlertsAnswer,
    AuditAnswer,
    BookAnswer,
    CandlesAnswer,
    ErrorAnswer,
    SymbolsAnswer,
    TickerAnswer,
    TickersAnswer,
)
from mystic_trading.sandbox import SandboxServer

from .conftest import Served
from .test_admin import serving_settings

V1 = "/api/v1"


def decoded(content: bytes, kind: type[Any]) -> Any:
    """The answer decoded into the struct /openapi.json documents (fails on any mismatch)."""
    return msgspec.json.decode(content, type=kind)


async def test_ticker_shape_values_and_provenance(served: Served) -> None:
    """The first ticker comes from upstream, the next from memory with the same values; the
    price is /api/v3's, the body matches its documented schema."""
    async with served.client() as c:
        first = await c.get(f"{V1}/ticker/BTCUSDT")
        second = await c.get(f"{V1}/ticker/BTCUSDT")
        v3 = (await c.get("/api/v3/ticker/price", params={"symbol": "BTCUSDT"})).json()
    assert first.status_code == second.status_code == 200, first.text
    assert first.headers["content-type"].startswith("application/json")
    one, two = decoded(first.content, TickerAnswer), decoded(second.content, TickerAnswer)
    assert (one.symbol, one.base, one.quote) == ("BTCUSDT", "BTC", "USDT")
    assert one.source.layer == "upstream"
    assert two.source.layer == "memory"
    assert not one.source.stale and not two.source.stale
    assert two.price == one.price == v3["price"]
    assert one.bid is not None and one.ask is not None
    assert float(one.bid) <= float(one.ask)


async def test_ticker_accepts_other_symbol_forms(served: Served) -> None:
    """btc-usdt names the same listed symbol as BTCUSDT."""
    async with served.client() as c:
        answer = await c.get(f"{V1}/ticker/btc-usdt")
    assert answer.status_code == 200, answer.text
    assert decoded(answer.content, TickerAnswer).symbol == "BTCUSDT"


async def test_tickers_in_the_order_asked(served: Served) -> None:
    """Several tickers come back in the order asked, each with its provenance."""
    async with served.client() as c:
        answer = await c.get(f"{V1}/tickers", params={"symbols": "ETHUSDT,BTCUSDT"})
    assert answer.status_code == 200, answer.text
    got = decoded(answer.content, TickersAnswer)
    assert [t.symbol for t in got.tickers] == ["ETHUSDT", "BTCUSDT"]
    assert all(t.source.layer in ("upstream", "memory") for t in got.tickers)


async def test_candles_are_the_exchanges_own_in_json_and_csv(served: Served) -> None:
    """A window of candles is exactly the sandbox's final candles, in JSON and as CSV with a
    header row; the second read of the closed window comes from a cache, not upstream."""
    exchange = served.exchange
    now = exchange.clock_ms()
    start = (now // 60_000 - 30) * 60_000
    params = {"interval": "1m", "start": str(start), "limit": "20"}
    async with served.client() as c:
        first = await c.get(f"{V1}/candles/ETHUSDT", params=params)
        as_csv = await c.get(f"{V1}/candles/ETHUSDT", params={**params, "format": "csv"})
    assert first.status_code == 200, first.text
    got = decoded(first.content, CandlesAnswer)
    assert (got.symbol, got.interval) == ("ETHUSDT", "1m")
    assert got.source.layer == "upstream"
    assert [c.open_time for c in got.candles] == [start + i * 60_000 for i in range(20)]
    for candle in got.candles:
        truth = exchange.final_candle("ETHUSDT", "1m", candle.open_time)
        assert truth is not None
        assert candle.final is True
        assert [candle.open, candle.high, candle.low, candle.close, candle.volume] == truth[1:6]
        assert candle.close_time == truth[6]
    assert as_csv.status_code == 200, as_csv.text
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert as_csv.headers["x-mystic-layer"] != "upstream"
    rows = list(csv.reader(io.StringIO(as_csv.text)))
    assert rows[0] == [
        "open_time",
        "open",
        "high",
        "low",
        "close",
        "volume",
        "close_time",
        "final",
    ]
    assert rows[1:] == [
        [
            str(c.open_time),
            c.open,
            c.high,
            c.low,
            c.close,
            c.volume,
            str(c.close_time),
            "true",
        ]
        for c in got.candles
    ]


async def test_book_depth(served: Served) -> None:
    """An order book of the depth asked, bids below asks, with provenance."""
    async with served.client() as c:
        answer = await c.get(f"{V1}/book/BTCUSDT", params={"depth": "5"})
    assert answer.status_code == 200, answer.text
    book = decoded(answer.content, BookAnswer)
    assert len(book.bids) == len(book.asks) == 5
    assert float(book.bids[0][0]) < float(book.asks[0][0])
    assert book.source.layer == "upstream"


async def test_symbols_stats_status_alerts_audit_recommendations(served: Served) -> None:
    """The listing, this process's stats, the deployment's status, alerts, audit and
    recommendations, each for the venue this process serves."""
    venue = served.state.md.provider.venue
    async with served.client() as c:
        await c.get(f"{V1}/ticker/BTCUSDT")
        symbols = await c.get(f"{V1}/symbols")
        stats = await c.get(f"{V1}/stats")
        status = await c.get(f"{V1}/status")
        alerts = await c.get(f"{V1}/alerts", params={"open_only": "false", "limit": "5"})
        audit = await c.get(f"{V1}/audit")
        recs = await c.get(f"{V1}/recommendations")
    for answer in (symbols, stats, status, alerts, audit, recs):
        assert answer.status_code == 200, answer.text
    listed = decoded(symbols.content, SymbolsAnswer)
    assert listed.venue == venue
    btc = next(s for s in listed.symbols if s.symbol == "BTCUSDT")
    assert (btc.base, btc.quote, btc.status) == ("BTC", "USDT", "TRADING")
    seen = stats.json()
    assert seen["venue"] == venue
    assert seen["by_kind"]["ticker"]["requests"] >= 1
    assert status.json()["venue"] == venue
    assert status.json()["level"]["name"] == served.state.settings.throttle.level
    assert decoded(alerts.content, AlertsAnswer).alerts == []
    assert decoded(audit.content, AuditAnswer).venue == venue
    assert recs.json()["venue"] == venue


async def test_health_is_409_when_the_monitor_is_off(served: Served) -> None:
    """With monitor.enabled false there is no health round to run: 409 monitor_off."""
    async with served.client() as c:
        answer = await c.get(f"{V1}/health")
    assert answer.status_code == 409
    assert decoded(answer.content, ErrorAnswer).error.code == "monitor_off"


async def test_health_report_when_the_monitor_is_on(
    exchange: SandboxServer, tmp_path: Path
) -> None:
    """With the monitor on, one round of checks: overall and each check's status."""
    async with (
        serving_settings(exchange, tmp_path, monitor={"enabled": True}) as running,
        running.client() as c,
    ):
        answer = await c.get(f"{V1}/health")
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert report["overall"] in ("ok", "warning", "critical")
    assert {"ban", "pause"} <= {check["name"] for check in report["checks"]}


BAD = [
    ("/candles/BTCUSDT", {"interval": "7m"}, "interval", 422),
    ("/candles/BTCUSDT", {"limit": "0"}, "limit", 422),
    ("/candles/BTCUSDT", {"limit": "1001"}, "limit", 422),
    ("/candles/BTCUSDT", {"limit": "ten"}, "limit", 422),
    ("/candles/BTCUSDT", {"start": "yesterday"}, "start", 422),
    ("/candles/BTCUSDT", {"start": "1700000"}, "start", 422),
    ("/candles/BTCUSDT", {"end": "2024-01-01", "start": "2024-02-01"}, "end", 422),
    ("/candles/BTCUSDT", {"format": "xml"}, "format", 422),
    ("/candles/NOPEUSDT", {}, "symbol", 404),
    ("/ticker/NOPEUSDT", {}, "symbol", 404),
    ("/ticker/BTC$USDT", {}, "symbol", 422),
    ("/ticker/" + "A" * 40, {}, "symbol", 422),
    ("/book/BTCUSDT", {"depth": "0"}, "depth", 422),
    ("/book/BTCUSDT", {"depth": "5001"}, "depth", 422),
    ("/tickers", {}, "symbols", 422),
    ("/tickers", {"symbols": "BTCUSDT,NOPEUSDT"}, "symbols", 404),
    ("/alerts", {"open_only": "maybe"}, "open_only", 422),
    ("/alerts", {"limit": "-1"}, "limit", 422),
    ("/audit", {"limit": "100000"}, "limit", 422),
    ("/audit", {"venue": "not a venue!"}, "venue", 422),
    ("/status", {"venue": "not a venue!"}, "venue", 422),
]


@pytest.mark.parametrize(("path", "params", "field", "status"), BAD)
async def test_bad_input_is_a_4xx_naming_the_field(
    served: Served, path: str, params: dict[str, str], field: str, status: int
) -> None:
    """Each bad input is refused with its status, an error code and the parameter named."""
    async with served.client() as c:
        answer = await c.get(V1 + path, params=params)
    assert answer.status_code == status, answer.text
    error = decoded(answer.content, ErrorAnswer).error
    assert error.field == field
    assert error.code == ("unknown_symbol" if status == 404 else "invalid")
    assert field in error.message or status == 404
    assert "\n" not in error.message


async def test_the_door_answers_v1_in_v1s_envelope(served: Served) -> None:
    """A path /api/v1 does not have, and a request the guard refuses for its size, are
    answered in /api/v1's error envelope naming what was wrong; /api/v3 keeps Binance's."""
    async with served.client() as c:
        unknown = await c.get("/api/v1/tickerz/BTCUSDT")
        query = await c.get("/api/v1/tickers", params={"symbols": "B" * (20 * 1024)})
        headers = await c.get("/api/v1/symbols", headers={"X-Big": "y" * (20 * 1024)})
        v3_query = await c.get("/api/v3/ping", params={"q": "z" * (20 * 1024)})
        elsewhere = await c.get("/nothing/here")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "not_found"
    assert "/api/v1/tickerz/BTCUSDT" in unknown.json()["error"]["message"]
    assert query.status_code == 414 and query.json()["error"]["code"] == "query_too_long"
    assert headers.status_code == 431 and headers.json()["error"]["code"] == "headers_too_large"
    assert v3_query.status_code == 414 and v3_query.json()["code"] == -1000
    assert elsewhere.status_code == 404 and elsewhere.text == "Not Found"
