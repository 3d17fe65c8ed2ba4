"""``/openapi.json`` (OpenAPI 3.1) and ``/docs``, the page that lists it.

The document is made from the app's own route table: each route the app serves is looked up
in :data:`OPERATIONS` (its summary, parameters and answers) and a route without an entry is
left out, so the document never names a path the app does not serve; a test checks the
other way, that every ``/api/v1`` route is described. Body and answer schemas are msgspec
structs turned into JSON Schema by ``msgspec.json.schema_components``: the admin bodies are
the very structs the routes decode, the answers are structs the tests decode real answers
into, so the schema and the code cannot drift apart unnoticed.

``/docs`` is a small HTML page shipped in the package (``static/docs.html``) that fetches
``/openapi.json`` and lists the operations: no CDN, nothing fetched from elsewhere.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Sequence
from typing import Any, Literal

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mystic_trading.api._admin import (
    ADMIN,
    BanClearBody,
    ChangeBody,
    ClearBody,
    LevelBody,
    OptimizeBody,
)
from mystic_trading.api._binance import FORWARDED
from mystic_trading.api._binance import PREFIX as V3
from mystic_trading.api._state import ApiState
from mystic_trading.api._v1 import (
    ALERTS_DEFAULT,
    AUDIT_DEFAULT,
    CANDLES_DEFAULT,
    CANDLES_MAX,
    DEPTH_DEFAULT,
    DEPTH_MAX,
    MAX_SYMBOL_CHARS,
    PREFIX,
    ROWS_MAX,
)
from mystic_trading.models import Interval

__all__ = ["OPERATIONS", "openapi_document", "openapi_routes"]

# -- the answers' shapes --------------------------------------------------------------------


class Source(msgspec.Struct):
    """Where an answer came from: the closest layer that held it, its age, stale or not."""

    layer: Literal["memory", "redis", "store", "upstream"]
    age_ms: int
    stale: bool


class TickerAnswer(msgspec.Struct):
    """The latest ticker; prices and quantities are exact decimal strings."""

    symbol: str
    base: str
    quote: str
    price: str
    bid: str | None
    bid_qty: str | None
    ask: str | None
    ask_qty: str | None
    open: str | None
    high: str | None
    low: str | None
    volume: str | None
    quote_volume: str | None
    change_pct: str | None
    time: int
    source: Source


class TickersAnswer(msgspec.Struct):
    tickers: list[TickerAnswer]


class CandleRow(msgspec.Struct):
    """One candle; ``final`` is true once it closed on the exchange's clock."""

    open_time: int
    open: str
    high: str
    low: str
    close: str
    volume: str
    close_time: int
    final: bool


class CandlePart(msgspec.Struct):
    """A range of the window, ``[start, end)`` in open times (UTC ms), and the layer it was
    read from when the answer was assembled."""

    start: int
    end: int
    layer: Literal["store", "upstream"]


class CandlesAnswer(msgspec.Struct):
    """``parts`` say where each range of the window was read when it was assembled (the
    store's covered ranges, the exchange's pages); ``source.layer`` is where this answer was
    served from (memory, say, for a window assembled a minute ago). Empty ``parts``: all of
    it from ``source.layer``."""

    symbol: str
    interval: str
    candles: list[CandleRow]
    source: Source
    parts: list[CandlePart]


class BookAnswer(msgspec.Struct):
    """``[price, quantity]`` levels, best first."""

    symbol: str
    last_update_id: int
    bids: list[tuple[str, str]]
    asks: list[tuple[str, str]]
    source: Source


class ListedSymbol(msgspec.Struct):
    symbol: str
    base: str
    quote: str
    status: str


class SymbolsAnswer(msgspec.Struct):
    venue: str
    symbols: list[ListedSymbol]


class AlertsAnswer(msgspec.Struct):
    alerts: list[dict[str, Any]]


class AuditEntry(msgspec.Struct):
    id: int
    at: str
    field: str
    actor: str
    from_: str | None = msgspec.field(name="from")
    to: str | None = None
    reason: str | None = None


class AuditAnswer(msgspec.Struct):
    venue: str
    audit: list[AuditEntry]


class LevelChange(msgspec.Struct):
    """A level change as the controller answers it (more keys: ceilings, processes)."""

    venue: str
    from_: str = msgspec.field(name="from")
    to: str = ""
    changed: bool = False
    message: str = ""


class BanCleared(msgspec.Struct):
    venue: str
    cleared: bool
    in_store: bool
    in_redis: bool
    message: str


class ErrorDetail(msgspec.Struct):
    code: str
    message: str
    field: str | None


class ErrorAnswer(msgspec.Struct):
    """Every refusal of /api/v1: a snake_case code, one line, the parameter at fault."""

    error: ErrorDetail


class Plain(msgspec.Struct):
    """A JSON object of plain data (see the operation's description)."""


_TYPES: tuple[Any, ...] = (
    TickerAnswer,
    TickersAnswer,
    CandlesAnswer,
    BookAnswer,
    SymbolsAnswer,
    AlertsAnswer,
    AuditAnswer,
    LevelChange,
    BanCleared,
    ErrorAnswer,
    ChangeBody,
    LevelBody,
    OptimizeBody,
    ClearBody,
    BanClearBody,
)
_REF = "#/components/schemas/{name}"

# -- parameters -----------------------------------------------------------------------------


def _param(
    name: str,
    schema: dict[str, Any],
    description: str,
    *,
    where: str = "query",
    required: bool = False,
) -> dict[str, Any]:
    return {
        "name": name,
        "in": where,
        "required": required or where == "path",
        "description": description,
        "schema": schema,
    }


SYMBOL = _param(
    "symbol",
    {"type": "string", "minLength": 1, "maxLength": MAX_SYMBOL_CHARS, "examples": ["BTCUSDT"]},
    "A listed symbol: BTCUSDT, btc-usdt or BTC_USDT.",
    where="path",
)
VENUE = _param(
    "venue",
    {"type": "string"},
    "The venue to read (default: the one this service's exchange identified as).",
)


def _whole(name: str, default: int, highest: int, what: str) -> dict[str, Any]:
    return _param(
        name, {"type": "integer", "minimum": 1, "maximum": highest, "default": default}, what
    )


V3_SYMBOL = _param(
    "symbol", {"type": "string", "pattern": "^[A-Z0-9-_.]{1,20}$"}, "Binance's symbol."
)
V3_SYMBOLS = _param(
    "symbols", {"type": "string"}, 'A JSON array of symbols: ["BTCUSDT","ETHUSDT"].'
)
V3_INT = {"type": "string", "pattern": "^[0-9]{1,20}$"}
V3_KLINES = [
    _param("symbol", V3_SYMBOL["schema"], "Binance's symbol.", required=True),
    _param(
        "interval",
        {"type": "string", "enum": [i.value for i in Interval]},
        "The candle interval.",
        required=True,
    ),
    _param("startTime", V3_INT, "Epoch ms, inclusive."),
    _param("endTime", V3_INT, "Epoch ms, inclusive."),
    _param("limit", V3_INT, "1 to 1000 (default 500)."),
    _param("timeZone", {"type": "string"}, "0 only: Mystic serves UTC candles."),
]

# -- operations -----------------------------------------------------------------------------


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _ref(kind: type) -> dict[str, Any]:
    return {"$ref": _REF.format(name=kind.__name__)}


_OBJECT = {"type": "object"}
_ERROR = _json(_ref(ErrorAnswer), "Refused (see error.code, error.message, error.field)")
_V1_ERRORS = {"422": _ERROR, "429": _ERROR, "503": _ERROR}
_MD_ERRORS = {**_V1_ERRORS, "404": _ERROR}
_V3_ANSWER = _json({}, "Binance's answer (rest-api.md), with X-Mystic-* provenance headers")
_V3_ERROR = _json(
    {
        "type": "object",
        "properties": {"code": {"type": "integer"}, "msg": {"type": "string"}},
    },
    "Binance's error body",
)


def _v1(
    summary: str, answer: dict[str, Any], params: Sequence[dict[str, Any]] = (), **more: Any
) -> dict[str, Any]:
    responses = {"200": _json(answer), **(_MD_ERRORS if params[:1] == [SYMBOL] else _V1_ERRORS)}
    responses.update(more.pop("responses", {}))
    return {
        "tags": ["v1"],
        "summary": summary,
        "parameters": list(params),
        "responses": responses,
        **more,
    }


def _admin(summary: str, body: type, answer: dict[str, Any], **more: Any) -> dict[str, Any]:
    responses = {
        "200": _json(answer),
        "401": _ERROR,
        "403": _ERROR,
        "422": _ERROR,
        **more.pop("responses", {}),
    }
    return {
        "tags": ["admin"],
        "summary": summary,
        "security": [{"bearer": []}],
        "requestBody": {
            "required": False,
            "content": {"application/json": {"schema": _ref(body)}},
        },
        "responses": responses,
        **more,
    }


def _v3(summary: str, params: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    return {
        "tags": ["binance"],
        "summary": summary,
        "parameters": list(params),
        "responses": {"200": _V3_ANSWER, "400": _V3_ERROR, "429": _V3_ERROR},
    }


def _plain(summary: str) -> dict[str, Any]:
    return {"tags": ["service"], "summary": summary, "responses": {"200": {"description": "OK"}}}


_CONFLICT = {"409": _ERROR}
OPERATIONS: dict[str, dict[str, dict[str, Any]]] = {
    f"{PREFIX}/ticker/{{symbol}}": {
        "get": _v1(
            "The latest ticker of a symbol, with its provenance", _ref(TickerAnswer), [SYMBOL]
        )
    },
    f"{PREFIX}/tickers": {
        "get": _v1(
            "Several tickers",
            _ref(TickersAnswer),
            [
                _param(
                    "symbols",
                    {"type": "string", "minLength": 1, "examples": ["BTCUSDT,ETHUSDT"]},
                    "Symbols separated by commas (at most 100).",
                    required=True,
                )
            ],
        )
    },
    f"{PREFIX}/candles/{{symbol}}": {
        "get": _v1(
            "Candles of a symbol (closed ones from the store, fetched once ever)",
            _ref(CandlesAnswer),
            [
                SYMBOL,
                _param(
                    "interval",
                    {"type": "string", "enum": [i.value for i in Interval], "default": "1m"},
                    "The candle interval.",
                ),
                _param("start", {"type": "string"}, "Epoch ms or ISO-8601 (UTC unless an offset)."),
                _param("end", {"type": "string"}, "Epoch ms or ISO-8601, exclusive."),
                _whole("limit", CANDLES_DEFAULT, CANDLES_MAX, "At most this many candles."),
                _param(
                    "format",
                    {"type": "string", "enum": ["json", "csv"], "default": "json"},
                    "csv: text/csv with a header row (provenance in X-Mystic-* headers).",
                ),
            ],
        )
    },
    f"{PREFIX}/book/{{symbol}}": {
        "get": _v1(
            "An order-book snapshot",
            _ref(BookAnswer),
            [SYMBOL, _whole("depth", DEPTH_DEFAULT, DEPTH_MAX, "Levels a side.")],
        )
    },
    f"{PREFIX}/symbols": {"get": _v1("The exchange's listed symbols", _ref(SymbolsAnswer))},
    f"{PREFIX}/stats": {
        "get": _v1("This process's MarketData figures (hits per layer, upstream calls...)", _OBJECT)
    },
    f"{PREFIX}/status": {
        "get": _v1("The deployment at a glance (as mystic status --json)", _OBJECT, [VENUE])
    },
    f"{PREFIX}/health": {
        "get": _v1(
            "One round of this process's health checks",
            _OBJECT,
            responses={"409": _ERROR},
        )
    },
    f"{PREFIX}/alerts": {
        "get": _v1(
            "The deployment's alerts, newest first",
            _ref(AlertsAnswer),
            [
                _param("open_only", {"type": "boolean", "default": True}, "Open alerts only."),
                _whole("limit", ALERTS_DEFAULT, ROWS_MAX, "At most this many."),
            ],
        )
    },
    f"{PREFIX}/recommendations": {
        "get": _v1("What to change, with its evidence", _OBJECT, [VENUE])
    },
    f"{PREFIX}/audit": {
        "get": _v1(
            "The venue's audit log, newest first",
            _ref(AuditAnswer),
            [VENUE, _whole("limit", AUDIT_DEFAULT, ROWS_MAX, "At most this many.")],
        )
    },
    f"{ADMIN}/increase": {
        "post": _admin("One throttle level up", ChangeBody, _ref(LevelChange), responses=_CONFLICT)
    },
    f"{ADMIN}/decrease": {
        "post": _admin(
            "One throttle level down", ChangeBody, _ref(LevelChange), responses=_CONFLICT
        )
    },
    f"{ADMIN}/level": {"post": _admin("Set the throttle level", LevelBody, _ref(LevelChange))},
    f"{ADMIN}/optimize": {
        "post": _admin(
            "Apply the safe recommendations (one level step at most)",
            OptimizeBody,
            _OBJECT,
            responses=_CONFLICT,
        )
    },
    f"{ADMIN}/clear": {"post": _admin("Clear cached answers in every process", ClearBody, _OBJECT)},
    f"{ADMIN}/ban/clear": {
        "post": _admin("Lift the exchange's ban for every process", BanClearBody, _ref(BanCleared))
    },
    f"{PREFIX}/dashboard/history": {
        "get": {
            "tags": ["dashboard"],
            "summary": "The dashboard's last hour of samples and its current panels",
            "responses": {"200": _json(_OBJECT)},
        }
    },
    f"{PREFIX}/dashboard/stream": {
        "get": {
            "tags": ["dashboard"],
            "summary": "The dashboard's live samples as Server-Sent Events (never ends)",
            "parameters": [
                _param("symbol", {"type": "string"}, "Also stream this symbol's ticker.")
            ],
            "responses": {
                "200": {
                    "description": "One JSON frame per sample",
                    "content": {"text/event-stream": {"schema": {"type": "string"}}},
                },
                "404": _ERROR,
                "422": _ERROR,
            },
        }
    },
    f"{V3}/ping": {"get": _v3("Binance ping")},
    f"{V3}/time": {"get": _v3("The exchange's time as measured")},
    f"{V3}/exchangeInfo": {"get": _v3("The exchange's listing", [V3_SYMBOL, V3_SYMBOLS])},
    f"{V3}/klines": {"get": _v3("Binance klines through Mystic's layers", V3_KLINES)},
    f"{V3}/uiKlines": {"get": _v3("Binance uiKlines (the same candles)", V3_KLINES)},
    f"{V3}/depth": {
        "get": _v3(
            "Binance depth",
            [{**V3_SYMBOL, "required": True}, _param("limit", V3_INT, "1 to 5000 (default 100).")],
        )
    },
    f"{V3}/avgPrice": {
        "get": _v3("Binance avgPrice (forwarded)", [{**V3_SYMBOL, "required": True}])
    },
    f"{V3}/ticker/price": {"get": _v3("Binance ticker/price", [V3_SYMBOL, V3_SYMBOLS])},
    f"{V3}/ticker/24hr": {
        "get": _v3(
            "Binance ticker/24hr (forwarded)",
            [
                V3_SYMBOL,
                V3_SYMBOLS,
                _param("type", {"type": "string", "enum": ["FULL", "MINI"]}, "FULL or MINI."),
            ],
        )
    },
    f"{V3}/ticker/bookTicker": {"get": _v3("Binance ticker/bookTicker", [V3_SYMBOL, V3_SYMBOLS])},
    **{
        f"{V3}/{name}": {
            "get": _v3(f"Binance {name} (forwarded through the throttler)", [V3_SYMBOL])
        }
        for name in sorted(FORWARDED)
    },
    "/": {"get": _plain("The monitoring dashboard (HTML)")},
    "/livez": {"get": _plain("The event loop answers")},
    "/readyz": {"get": _plain("This process can serve (503 with the reasons otherwise)")},
    "/metrics": {"get": _plain("Prometheus metrics")},
    "/openapi.json": {"get": _plain("This document")},
    "/docs": {"get": _plain("A page listing the operations of this document")},
}
# The catch-all route of /api/v3 serves these paths.
_CATCH_ALL = {f"{V3}/{{rest:path}}": [f"{V3}/{name}" for name in sorted(FORWARDED)]}


def openapi_document(routes: Sequence[BaseRoute], version: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the operations ``routes`` serve."""
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        if not isinstance(route, Route):
            continue
        for path in _CATCH_ALL.get(route.path, [route.path]):
            described = OPERATIONS.get(path, {})
            for method in sorted(route.methods or ()):
                operation = described.get(method.lower())
                if operation is not None:
                    paths.setdefault(path, {})[method.lower()] = operation
    _, components = msgspec.json.schema_components(_TYPES, ref_template=_REF)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Mystic",
            "version": version,
            "description": (
                "Mystic's market data through its layers (memory, Redis, the store, the "
                "exchange behind the throttler). /api/v1 is Mystic's own API with provenance "
                "in every answer; /api/v1/admin needs Authorization: Bearer <api.admin_token>; "
                "/api/v3 is Binance's public market data, shape for shape."
            ),
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def openapi_routes(state: ApiState) -> list[BaseRoute]:
    """``/openapi.json`` (made once, from the app's routes, on first request) and ``/docs``."""
    from mystic_trading import __version__

    page = importlib.resources.files("mystic_trading.api").joinpath("static/docs.html").read_bytes()
    made: list[bytes] = []

    async def openapi(request: Request) -> Response:
        if not made:
            made.append(msgspec.json.encode(openapi_document(request.app.routes, __version__)))
        return Response(made[0], media_type="application/json")

    async def docs(request: Request) -> Response:
        return Response(page, media_type="text/html; charset=utf-8")

    return [
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/docs", docs, methods=["GET"]),
    ]
