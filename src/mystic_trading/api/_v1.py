"""``/api/v1/``: Mystic's own read API, answered through MarketData's layers and the
deployment's Controller.

Where Binance's ``/api/v3`` keeps Binance's shapes for existing clients, these answers are
Mystic's: every market-data answer carries its provenance in the body (``"source": {"layer",
"age_ms", "stale"}``), prices and quantities are exact decimal strings (``format(d, "f")``,
never ``1E-8``), times UTC epoch ms. Every invalid input is a 422 naming the parameter, an
unknown symbol a 404, in the envelope of ``_errors.V1Error``; nothing a client sends gets a
5xx.

The ticker is the hot path (bench/http_service.py measures it against bare Starlette): its body
apart from the provenance is encoded once per cached answer, and the provenance, which ages
with every request, is appended as bytes. msgspec throughout, no model layer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mystic_trading.api._encode import JSON_HEADER, RawResponse
from mystic_trading.api._errors import V1Error, invalid, v1_error_of
from mystic_trading.api._share import ShareExceeded
from mystic_trading.api._state import ApiState, NotStarted
from mystic_trading.errors import ConfigError, DataError, MysticError
from mystic_trading.marketdata.answer import Answer, stamp_ms
from mystic_trading.models import Candle, Interval, OrderBook, Symbol, Ticker, to_ms, utc_text

__all__ = ["PREFIX", "error_response", "json_response", "v1_guarded", "v1_routes"]

PREFIX = "/api/v1"
JSON = "application/json"
CSV = "text/csv; charset=utf-8"
# Longer than any listed symbol in any form ("1000SATS-USDT"); longer is refused unparsed.
MAX_SYMBOL_CHARS = 32
MAX_TICKERS = 100
CANDLES_DEFAULT, CANDLES_MAX = 500, 1000
DEPTH_DEFAULT, DEPTH_MAX = 100, 5000
ALERTS_DEFAULT, AUDIT_DEFAULT, ROWS_MAX = 100, 20, 1000
CANDLE_FIELDS = ("open_time", "open", "high", "low", "close", "volume", "close_time", "final")
_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})
_STALE = {False: b"false", True: b"true"}

_encoder = msgspec.json.Encoder(decimal_format="string")
dumps = _encoder.encode

Handler = Callable[[Request], Awaitable[Response]]


def _d(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def _shown(raw: str) -> str:
    return repr(raw if len(raw) <= 40 else raw[:40] + "...")


# -- answers --------------------------------------------------------------------------------


def json_response(
    data: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(dumps(data), status_code=status, media_type=JSON, headers=headers)


def error_response(error: V1Error) -> Response:
    headers = {}
    if error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    if error.status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return json_response(error.body(), error.status, headers)


def v1_guarded(handler: Handler) -> Handler:
    """``handler`` with ``/api/v1``'s error envelope for refusals and Mystic's errors."""

    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except V1Error as error:
            return error_response(error)
        except ShareExceeded as exc:
            line = f"{exc}; retry after {exc.retry_after} s"
            return error_response(V1Error(429, "share_exceeded", line, None, exc.retry_after))
        except MysticError as exc:
            return error_response(v1_error_of(exc, stamp_ms()))
        except NotStarted as exc:
            return error_response(V1Error(503, "not_started", str(exc), None, 1))

    return endpoint


def source(answer: Answer[Any]) -> dict[str, Any]:
    return {"layer": answer.layer.value, "age_ms": answer.age_ms, "stale": answer.stale}


def _source_tail(answer: Answer[Any]) -> bytes:
    """``,"source":{...}}``: the end of a body whose other fields were encoded before."""
    return b',"source":{"layer":"%s","age_ms":%d,"stale":%s}}' % (
        answer.layer.value.encode(),
        answer.age_ms,
        _STALE[answer.stale],
    )


def ticker_fields(ticker: Ticker) -> dict[str, Any]:
    sym = ticker.symbol
    return {
        "symbol": sym.exchange,
        "base": sym.base,
        "quote": sym.quote,
        "price": _d(ticker.price),
        "bid": _d(ticker.bid),
        "bid_qty": _d(ticker.bid_qty),
        "ask": _d(ticker.ask),
        "ask_qty": _d(ticker.ask_qty),
        "open": _d(ticker.open),
        "high": _d(ticker.high),
        "low": _d(ticker.low),
        "volume": _d(ticker.volume),
        "quote_volume": _d(ticker.quote_volume),
        "change_pct": _d(ticker.change_pct),
        "time": ticker.time,
    }


def candle_fields(c: Candle) -> dict[str, Any]:
    return {
        "open_time": c.open_time,
        "open": _d(c.open),
        "high": _d(c.high),
        "low": _d(c.low),
        "close": _d(c.close),
        "volume": _d(c.volume),
        "close_time": c.close_time,
        "final": c.closed,
    }


def candles_csv(candles: Sequence[Candle]) -> bytes:
    """A header row, then one row per candle; decimals as the exchange wrote them."""
    lines = [",".join(CANDLE_FIELDS)]
    for c in candles:
        lines.append(
            f"{c.open_time},{c.open:f},{c.high:f},{c.low:f},{c.close:f},{c.volume:f},"
            f"{c.close_time},{'true' if c.closed else 'false'}"
        )
    return ("\r\n".join(lines) + "\r\n").encode()


def book_fields(book: OrderBook, depth: int) -> dict[str, Any]:
    return {
        "symbol": book.symbol.exchange,
        "last_update_id": book.last_update_id,
        "bids": [[format(p, "f"), format(q, "f")] for p, q in book.bids[:depth]],
        "asks": [[format(p, "f"), format(q, "f")] for p, q in book.asks[:depth]],
    }


# -- parameters -----------------------------------------------------------------------------

Params = Any  # starlette's ImmutableMultiDict of the query


def whole(params: Params, name: str, default: int, lowest: int, highest: int) -> int:
    """The query parameter ``name`` as a whole number within bounds, else 422 naming it."""
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    text = raw.strip()
    if not (text.isascii() and text.isdigit() and len(text) <= 20):
        raise invalid(name, f"must be a whole number from {lowest} to {highest}, got {_shown(raw)}")
    value = int(text)
    if not lowest <= value <= highest:
        raise invalid(name, f"must be from {lowest} to {highest}, got {value}")
    return value


def flag(params: Params, name: str, default: bool) -> bool:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    text = raw.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise invalid(name, f"must be true or false, got {_shown(raw)}")


def venue_param(params: Params) -> str | None:
    raw = params.get("venue")
    return raw if raw else None


def _moment(params: Params, name: str) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    try:
        return to_ms(raw, name)
    except DataError as exc:
        raise V1Error(422, "invalid", " ".join(str(exc).split()), name) from None


# -- the routes -----------------------------------------------------------------------------


class V1Api:
    """The /api/v1 read handlers of one app."""

    def __init__(self, state: ApiState) -> None:
        self.state = state
        # Per listed name: the last ticker answer and its body without the provenance (a
        # memory hit returns the same Answer object until it is refreshed).
        self._tickers: dict[str, tuple[Answer[Ticker], bytes]] = {}

    def _answered(self, request: Request, answer: Answer[Any]) -> None:
        route = request.scope.get("route")
        self.state.metrics.answered(
            str(getattr(route, "path", PREFIX)), answer.layer.value, answer.stale
        )

    async def _symbol(self, name: str, field: str = "symbol") -> Symbol:
        if not name or len(name) > MAX_SYMBOL_CHARS:
            raise invalid(field, f"must be a symbol of 1 to {MAX_SYMBOL_CHARS} characters")
        try:
            return await self.state.md.symbol(name)
        except MysticError as exc:
            raise v1_error_of(exc, stamp_ms(), field) from None

    async def ticker(self, request: Request) -> Response:
        name = request.path_params["symbol"]
        md = self.state.md
        cached = self._tickers.get(name)
        if cached is None:
            sym = await self._symbol(name)
            answer = await md.ticker(sym.exchange)
            head = dumps(ticker_fields(answer.value))[:-1]
            if sym.exchange == name:
                self._tickers[name] = (answer, head)
        else:
            answer = await md.ticker(name)
            if answer is cached[0]:
                head = cached[1]
            else:
                head = dumps(ticker_fields(answer.value))[:-1]
                self._tickers[name] = (answer, head)
        self._answered(request, answer)
        body = head + _source_tail(answer)
        return RawResponse(body, [(b"content-length", b"%d" % len(body)), JSON_HEADER])

    async def tickers(self, request: Request) -> Response:
        raw = request.query_params.get("symbols")
        if not raw:
            raise invalid("symbols", "give one or more symbols separated by commas")
        names = [n.strip() for n in raw.split(",")]
        if len(names) > MAX_TICKERS:
            raise invalid("symbols", f"at most {MAX_TICKERS} symbols, got {len(names)}")
        syms = [await self._symbol(n, "symbols") for n in names]
        try:
            answers = await self.state.md.tickers([s.exchange for s in syms])
        except DataError as exc:  # a name the exchange itself did not know
            raise v1_error_of(exc, stamp_ms(), "symbols") from None
        for answer in answers:
            self._answered(request, answer)
        return json_response(
            {"tickers": [{**ticker_fields(a.value), "source": source(a)} for a in answers]}
        )

    async def candles(self, request: Request) -> Response:
        params = request.query_params
        raw_interval = params.get("interval") or "1m"
        try:
            interval = Interval.parse(raw_interval)
        except DataError:
            accepted = ", ".join(i.value for i in Interval)
            raise invalid(
                "interval", f"{_shown(raw_interval)} is not an interval; accepted: {accepted}"
            ) from None
        start = _moment(params, "start")
        end = _moment(params, "end")
        if start is not None and end is not None and end < start:
            raise invalid("end", f"{end} is before start {start}")
        limit = whole(params, "limit", CANDLES_DEFAULT, 1, CANDLES_MAX)
        shape = params.get("format") or "json"
        if shape not in ("json", "csv"):
            raise invalid("format", f"must be json or csv, got {_shown(shape)}")
        sym = await self._symbol(request.path_params["symbol"])
        answer = await self.state.md.candles(sym, interval, start, end, limit)
        self._answered(request, answer)
        src = source(answer)
        if shape == "csv":
            headers = {
                "X-Mystic-Layer": src["layer"],
                "X-Mystic-Age-Ms": str(src["age_ms"]),
                "X-Mystic-Stale": "true" if src["stale"] else "false",
            }
            return Response(candles_csv(answer.value), media_type=CSV, headers=headers)
        return json_response(
            {
                "symbol": sym.exchange,
                "interval": interval.value,
                "candles": [candle_fields(c) for c in answer.value],
                "source": src,
                "parts": [
                    {"start": p.start, "end": p.end, "layer": p.layer.value} for p in answer.parts
                ],
            }
        )

    async def book(self, request: Request) -> Response:
        depth = whole(request.query_params, "depth", DEPTH_DEFAULT, 1, DEPTH_MAX)
        sym = await self._symbol(request.path_params["symbol"])
        answer = await self.state.md.order_book(sym, depth)
        self._answered(request, answer)
        return json_response({**book_fields(answer.value, depth), "source": source(answer)})

    async def symbols(self, request: Request) -> Response:
        md = self.state.md
        info = await md.exchange_info()
        listed = [
            {"symbol": name, "base": s.symbol.base, "quote": s.symbol.quote, "status": s.status}
            for name, s in sorted(info.symbols.items())
        ]
        return json_response({"venue": md.provider.venue, "symbols": listed})

    async def stats(self, request: Request) -> Response:
        return json_response(self.state.md.stats())

    async def status(self, request: Request) -> Response:
        found = await self.state.controller.status(venue_param(request.query_params))
        return json_response(found)

    async def health(self, request: Request) -> Response:
        try:
            report = await self.state.md.health()
        except ConfigError as exc:
            if exc.setting != "monitor.enabled":
                raise
            raise V1Error(
                409,
                "monitor_off",
                "health checks are off in this process (monitor.enabled is false)",
            ) from None
        return json_response(report.as_dict())

    async def alerts(self, request: Request) -> Response:
        params = request.query_params
        open_only = flag(params, "open_only", True)
        limit = whole(params, "limit", ALERTS_DEFAULT, 1, ROWS_MAX)
        return json_response(
            {"alerts": await self.state.md.alerts(open_only=open_only, limit=limit)}
        )

    async def recommendations(self, request: Request) -> Response:
        controller = self.state.controller
        return json_response(await controller.recommendations(venue_param(request.query_params)))

    async def audit(self, request: Request) -> Response:
        params = request.query_params
        limit = whole(params, "limit", AUDIT_DEFAULT, 1, ROWS_MAX)
        controller = self.state.controller
        name, _ = await controller.venue(venue_param(params))
        entries = [
            {
                "id": c.id,
                "at": utc_text(c.at),
                "field": c.field,
                "actor": c.actor,
                "from": c.from_value,
                "to": c.to_value,
                "reason": c.reason,
            }
            for c in await controller.store.control.audit(name, limit=limit)
        ]
        return json_response({"venue": name, "audit": entries})


def v1_routes(state: ApiState) -> list[BaseRoute]:
    """The /api/v1 read routes, each with its full path (the metrics label it by template)."""
    api = V1Api(state)
    shares = state.shares

    def g(handler: Handler) -> Handler:
        guarded = v1_guarded(handler)
        return guarded if shares is None else shares.bind(guarded)

    return [
        Route(f"{PREFIX}/ticker/{{symbol}}", g(api.ticker), methods=["GET"]),
        Route(f"{PREFIX}/tickers", g(api.tickers), methods=["GET"]),
        Route(f"{PREFIX}/candles/{{symbol}}", g(api.candles), methods=["GET"]),
        Route(f"{PREFIX}/book/{{symbol}}", g(api.book), methods=["GET"]),
        Route(f"{PREFIX}/symbols", g(api.symbols), methods=["GET"]),
        Route(f"{PREFIX}/stats", g(api.stats), methods=["GET"]),
        Route(f"{PREFIX}/status", g(api.status), methods=["GET"]),
        Route(f"{PREFIX}/health", g(api.health), methods=["GET"]),
        Route(f"{PREFIX}/alerts", g(api.alerts), methods=["GET"]),
        Route(f"{PREFIX}/recommendations", g(api.recommendations), methods=["GET"]),
        Route(f"{PREFIX}/audit", g(api.audit), methods=["GET"]),
    ]
