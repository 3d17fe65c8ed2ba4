"""``/api/v3/``: Binance's public market data, answered through MarketData's layers.

Parameters are checked as Binance checks them (rest-api.md; the sandbox's
``_endpoints.py`` does the same): ``symbol`` must match ``^[A-Z0-9-_.]{1,20}$`` (-1100) and
be listed (-1121, spending no quota: MarketData refuses unlisted names itself); a missing
mandatory parameter is -1102; ``symbol`` with ``symbols`` is -1128; integers must be
digits (-1100); a timestamp of 16 digits or more is microseconds. ``limit`` is clamped as
Binance clamps it (klines 1 to 1000, depth 1 to 5000).

Where each answer comes from:

- ``ping`` here; ``time`` from the exchange's clock as measured (``provider.now_ms()``).
- ``exchangeInfo``: the document the exchange sent, as kept in the store by MarketData.
- ``klines``/``uiKlines``: ``md.candles`` (closed candles from the store, fetched once ever;
  the open candle fresh). ``endTime`` is inclusive on open times at Binance, so the window
  ends one millisecond after it.
- ``ticker/price``, ``ticker/bookTicker`` (one symbol or ``symbols``): ``md.ticker(s)``; their
  all-symbol forms, ``ticker/24hr`` and ``avgPrice``: forwarded (``_forward.py``).
- ``depth``: ``md.order_book``.

Every answer carries ``X-MBX-USED-WEIGHT-1M`` (the exchange's count for this IP's current
window); market-data answers also ``X-Mystic-Layer``, ``X-Mystic-Age-Ms`` and
``X-Mystic-Stale``. Signed and account endpoints are refused (-2015), never forwarded.
With ``client_share_pct`` on, a client past its share of the exchange's budget gets 429
with ``Retry-After`` and -1003 for anything not held (``_share.py``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mystic_trading.api import _encode as enc
from mystic_trading.api._errors import (
    INTEGER_PATTERN,
    SYMBOL_PATTERN,
    SYMBOLS_PATTERN,
    ApiRefusal,
    illegal_chars,
    invalid_symbol,
    mandatory,
    not_valid,
    refusal_of,
    signed_refused,
)
from mystic_trading.api._forward import Forwarded, Passthrough
from mystic_trading.api._share import ShareExceeded
from mystic_trading.api._state import ApiState
from mystic_trading.errors import InvalidInterval, MysticError
from mystic_trading.marketdata.answer import Answer, Layer, stamp_ms
from mystic_trading.models import MAX_TIMESTAMP_MS, SECONDS_BELOW_MS, Interval, Symbol, Ticker
from mystic_trading.providers.binance_parse import ExchangeInfo

__all__ = ["binance_routes"]

PREFIX = "/api/v3"
_SYMBOL = re.compile(r"^[A-Z0-9_.-]{1,20}$")
_DIGITS = re.compile(r"^[0-9]{1,20}$")
_MICROS = 10**15
KLINES_DEFAULT, KLINES_MAX = 500, 1000  # rest-api.md "Kline/Candlestick data"
DEPTH_DEFAULT, DEPTH_MAX = 100, 5000  # rest-api.md "Order book"
JSON = "application/json"
_UTC = frozenset({"0", "+0", "-0", "00:00", "+00:00", "-00:00", "0:00", "+0:00"})
# Binance's signed (TRADE, USER_DATA) and key-only (USER_STREAM, historicalTrades) GETs:
# refused by name, whatever their parameters. Any other method, and any request that carries
# a signature or an API key, is refused too.
PRIVATE = frozenset(
    {
        "account",
        "account/commission",
        "allOrderList",
        "allOrders",
        "historicalTrades",
        "myAllocations",
        "myPreventedMatches",
        "myTrades",
        "openOrderList",
        "openOrders",
        "order",
        "order/amendments",
        "order/test",
        "orderList",
        "rateLimit/order",
        "userDataStream",
    }
)
# Public GETs MarketData does not model, forwarded through the throttler.
FORWARDED = frozenset({"trades", "aggTrades", "ticker", "ticker/tradingDay"})
_LAYER_ORDER = {Layer.MEMORY: 0, Layer.REDIS: 1, Layer.STORE: 2, Layer.UPSTREAM: 3}
_LAYER_BYTES = {layer.value: layer.value.encode() for layer in Layer}

Params = Any  # starlette's ImmutableMultiDict of the query
Handler = Callable[[Request], Awaitable[Response]]


# -- parameters ---------------------------------------------------------------------------


def _symbol_name(params: Params) -> str:
    raw = params.get("symbol")
    if not raw:
        raise mandatory("symbol")
    if not _SYMBOL.match(raw):
        raise illegal_chars("symbol", SYMBOL_PATTERN)
    return str(raw)


def _symbols_names(params: Params) -> list[str] | None:
    """``symbols=["A","B"]`` as names, or None when not given."""
    raw = params.get("symbols")
    if raw is None:
        return None
    if raw == "":
        raise mandatory("symbols")
    try:
        names = json.loads(raw)
    except ValueError:
        raise illegal_chars("symbols", SYMBOLS_PATTERN) from None
    if not isinstance(names, list) or not all(
        isinstance(n, str) and _SYMBOL.match(n) for n in names
    ):
        raise illegal_chars("symbols", SYMBOLS_PATTERN)
    if not names:
        raise mandatory("symbols")
    return names


def _selection(params: Params) -> list[str] | None:
    """``symbol`` (one name), ``symbols`` (several) or None for every symbol."""
    if "symbol" in params and "symbols" in params:
        raise ApiRefusal(400, -1128, "Combination of optional parameters invalid.")
    if "symbol" in params:
        return [_symbol_name(params)]
    return _symbols_names(params)


def _int(params: Params, name: str) -> int | None:
    raw = params.get(name)
    if raw is None:
        return None
    if not _DIGITS.match(raw):
        raise illegal_chars(name, INTEGER_PATTERN)
    return int(raw)


def _time(params: Params, name: str) -> int | None:
    """A time parameter in epoch ms (16 digits or more: microseconds, as Binance reads
    them), held within what MarketData accepts: below 1973 nothing traded, so 0."""
    value = _int(params, name)
    if value is None:
        return None
    if value >= _MICROS:
        value //= 1000
    if value < SECONDS_BELOW_MS:
        return 0
    return min(value, MAX_TIMESTAMP_MS)


def _clamped(params: Params, name: str, default: int, most: int) -> int:
    value = _int(params, name)
    return default if value is None else max(1, min(most, value))


# -- answers ------------------------------------------------------------------------------


class BinanceApi:
    """The /api/v3 handlers of one app."""

    def __init__(self, state: ApiState) -> None:
        self.state = state
        # The last encoded /ticker/price body per symbol and the answer it encodes: a
        # memory hit returns the same Answer object until it is refreshed, so its bytes are
        # made once (the hot path of bench/http_service.py).
        self._price_bodies: dict[str, tuple[Answer[Ticker], bytes]] = {}
        # The query strings that are exactly ``symbol=<a name above>``, to that name: the
        # usual request needs no query parsing (names match ^[A-Z0-9_.-]+$, which a query
        # string carries as they are).
        self._price_queries: dict[bytes, str] = {}
        self._info_source: ExchangeInfo | None = None
        self._info_body = b""
        self._info_symbols: dict[str, Any] = {}
        self._info_doc: dict[str, Any] = {}

    # -- plumbing -------------------------------------------------------------------------

    def _headers(self, answer: Answer[Any] | None = None) -> dict[str, str]:
        state = self.state
        headers = {state.weight_header(): str(state.used_weight())}
        if answer is not None:
            headers["X-Mystic-Layer"] = answer.layer.value
            headers["X-Mystic-Age-Ms"] = str(answer.age_ms)
            headers["X-Mystic-Stale"] = "true" if answer.stale else "false"
        return headers

    def _ok(self, request: Request, body: bytes, answer: Answer[Any] | None) -> Response:
        """A 200 with ``body``: ``_headers``'s headers, encoded here as bytes directly."""
        state = self.state
        headers = [(state.weight_header_raw(), b"%d" % state.used_weight())]
        if answer is not None:
            layer = answer.layer.value
            stale = answer.stale
            state.metrics.answered(_route(request), layer, stale)
            headers += (
                (b"x-mystic-layer", _LAYER_BYTES[layer]),
                (b"x-mystic-age-ms", b"%d" % answer.age_ms),
                (b"x-mystic-stale", b"true" if stale else b"false"),
            )
        headers += ((b"content-length", b"%d" % len(body)), enc.JSON_HEADER)
        return enc.RawResponse(body, headers)

    def _refused(self, refusal: ApiRefusal) -> Response:
        headers = self._headers()
        if refusal.retry_after is not None:
            headers["Retry-After"] = str(refusal.retry_after)
        return Response(
            enc.error_body(refusal.code, refusal.msg),
            status_code=refusal.status,
            media_type=JSON,
            headers=headers,
        )

    def _forwarded(self, request: Request, answer: Answer[Forwarded]) -> Response:
        value = answer.value
        self.state.metrics.answered(_route(request), answer.layer.value, answer.stale)
        return Response(
            value.body,
            status_code=value.status,
            media_type=value.content_type,
            headers=self._headers(answer),
        )

    def guarded(self, handler: Handler) -> Handler:
        """``handler`` with Binance's error answers for refusals and Mystic's errors."""

        async def endpoint(request: Request) -> Response:
            try:
                return await handler(request)
            except ApiRefusal as refusal:
                return self._refused(refusal)
            except ShareExceeded as exc:
                return self._refused(
                    ApiRefusal(
                        429,
                        -1003,
                        f"Too much request weight used; {exc}. Retry after {exc.retry_after} s.",
                        retry_after=exc.retry_after,
                    )
                )
            except Passthrough as passed:
                value = passed.answer
                return Response(
                    value.body,
                    status_code=value.status,
                    media_type=value.content_type,
                    headers=self._headers(),
                )
            except MysticError as exc:
                return self._refused(refusal_of(exc, stamp_ms()))

        return endpoint

    async def _listed(self, name: str) -> Symbol:
        """The listed symbol named exactly ``name`` (Binance's form), else -1121."""
        sym = await self.state.md.symbol(name)
        if sym.exchange != name:  # "BTC-USDT" reads as BTC/USDT, but Binance lists BTCUSDT
            raise invalid_symbol()
        return sym

    async def _forward(
        self, request: Request, path: str, params: Sequence[tuple[str, str]]
    ) -> Response:
        ttl = self.state.settings.cache.ticker_ttl_s
        answer = await self.state.forward.get(path, params, ttl)
        return self._forwarded(request, answer)

    # -- endpoints ------------------------------------------------------------------------

    async def ping(self, request: Request) -> Response:
        return Response(b"{}", media_type=JSON, headers=self._headers())

    async def time(self, request: Request) -> Response:
        provider = self.state.md.provider
        await provider.sync_clock()
        body = b'{"serverTime":%d}' % provider.now_ms()
        return Response(body, media_type=JSON, headers=self._headers())

    async def exchange_info(self, request: Request) -> Response:
        selected = _selection(request.query_params)
        md = self.state.md
        fetched = md.symbols.fetched
        info = await md.exchange_info()
        layer = Layer.MEMORY
        if info is not self._info_source:
            layer = Layer.STORE
            await self._load_info_body(info)
        if md.symbols.fetched != fetched:
            layer = Layer.UPSTREAM
        age_s = md.symbols.age_s() or 0.0
        answer = Answer(None, layer, stamp_ms() - int(age_s * 1000))
        if selected is None:
            return self._ok(request, self._info_body, answer)
        entries = []
        for name in selected:
            entry = self._info_symbols.get(name)
            if entry is None:
                raise invalid_symbol()
            entries.append(entry)
        return self._ok(request, enc.dumps({**self._info_doc, "symbols": entries}), answer)

    async def _load_info_body(self, info: ExchangeInfo) -> None:
        md = self.state.md
        kept = await md.store.venues.load_info(md.provider.venue)
        if kept is not None:
            body = kept[0].value.encode()
        else:  # the store could not keep it: ask the exchange (weight 20, kept an hour)
            forwarded = await self.state.forward.get("/api/v3/exchangeInfo", [], 3600.0)
            body = forwarded.value.body
        doc = msgspec.json.decode(body)
        self._info_symbols = {s["symbol"]: s for s in doc.get("symbols", [])}
        self._info_doc = doc
        self._info_body = body
        self._info_source = info

    async def klines(self, request: Request) -> Response:
        params = request.query_params
        name = _symbol_name(params)
        raw_interval = params.get("interval")
        if not raw_interval:
            raise mandatory("interval")
        try:
            interval = Interval.parse(raw_interval)
        except InvalidInterval:
            raise ApiRefusal(400, -1120, "Invalid interval.") from None
        start = _time(params, "startTime")
        end = _time(params, "endTime")
        limit = _clamped(params, "limit", KLINES_DEFAULT, KLINES_MAX)
        zone = params.get("timeZone")
        if zone is not None and zone not in _UTC:
            raise not_valid("timeZone", "Mystic serves UTC candles only (timeZone 0).")
        sym = await self._listed(name)
        if start is not None and end is not None and start > end:
            return self._ok(request, b"[]", None)
        md = self.state.md
        end_excl = None if end is None else min(end + 1, MAX_TIMESTAMP_MS)
        answer = await md.candles(sym, interval, start, end_excl, limit)
        if len(answer.value) < limit and _may_hold_more(
            interval, start, end_excl, limit, md.provider.now_ms()
        ):
            # Binance answers the first (or, with no start, the last) ``limit`` candles that
            # exist in the range; a window ``limit`` intervals wide holds fewer where the
            # series has a gap or begins later (a start before the listing), and a client
            # that pages (ccxt, freqtrade) stops at a short page. Those pages, and only those,
            # are asked of the exchange as sent, so the answer is exactly Binance's.
            return await self._forward(
                request, request.url.path, request.query_params.multi_items()
            )
        return self._ok(request, enc.klines(answer.value), answer)

    async def depth(self, request: Request) -> Response:
        params = request.query_params
        name = _symbol_name(params)
        limit = _clamped(params, "limit", DEPTH_DEFAULT, DEPTH_MAX)
        sym = await self._listed(name)
        answer = await self.state.md.order_book(sym, limit)
        return self._ok(request, enc.depth(answer.value, limit), answer)

    async def ticker_price(self, request: Request) -> Response:
        name = self._price_queries.get(request.scope["query_string"])
        if name is not None:  # the hot path: ?symbol=<a name answered before>
            answer = await self.state.md.ticker(name)
            known, body = self._price_bodies[name]
            if answer is known:
                return self._ok(request, body, answer)
            body = enc.dumps(enc.ticker_price(answer.value))
            self._price_bodies[name] = (answer, body)
            return self._ok(request, body, answer)
        params = request.query_params
        name = params.get("symbol")
        if name is not None and "symbols" not in params:
            md = self.state.md
            cached = self._price_bodies.get(name)
            if cached is None:  # not seen yet: checked, then known by its name
                name = _symbol_name(params)
                answer = await md.ticker(await self._listed(name))
            else:
                answer = await md.ticker(name)
                if answer is cached[0]:
                    return self._ok(request, cached[1], answer)
            body = enc.dumps(enc.ticker_price(answer.value))
            self._price_bodies[name] = (answer, body)
            self._price_queries[b"symbol=" + name.encode()] = name
            return self._ok(request, body, answer)
        return await self._tickers(request, enc.ticker_price, "/api/v3/ticker/price")

    async def book_ticker(self, request: Request) -> Response:
        return await self._tickers(request, enc.book_ticker, "/api/v3/ticker/bookTicker")

    async def _tickers(
        self, request: Request, shape: Callable[[Ticker], dict[str, str]], path: str
    ) -> Response:
        params = request.query_params
        selected = _selection(params)
        if selected is None:
            return await self._forward(request, path, [])
        syms = [await self._listed(name) for name in selected]
        md = self.state.md
        if "symbol" in params:
            answer = await md.ticker(syms[0])
            return self._ok(request, enc.dumps(shape(answer.value)), answer)
        answers = await md.tickers(syms)
        body = enc.dumps([shape(a.value) for a in answers])
        return self._ok(request, body, _farthest(answers))

    async def ticker_24hr(self, request: Request) -> Response:
        params = request.query_params
        kind = params.get("type")
        if kind is not None and kind not in ("FULL", "MINI"):
            raise illegal_chars("type", "^(FULL|MINI)$")
        selected = _selection(params)
        forwarded: list[tuple[str, str]] = []
        if selected is not None:
            for name in selected:
                await self._listed(name)
            if "symbol" in params:
                forwarded.append(("symbol", selected[0]))
            else:
                forwarded.append(("symbols", json.dumps(selected, separators=(",", ":"))))
        if kind is not None:
            forwarded.append(("type", kind))
        return await self._forward(request, "/api/v3/ticker/24hr", forwarded)

    async def avg_price(self, request: Request) -> Response:
        name = _symbol_name(request.query_params)
        await self._listed(name)
        return await self._forward(request, "/api/v3/avgPrice", [("symbol", name)])

    async def other(self, request: Request) -> Response:
        """Anything else under /api/v3: a public GET MarketData does not model is forwarded;
        signed, keyed and account requests are refused and never leave Mystic."""
        rest = request.path_params["rest"].strip("/")
        params = request.query_params
        if (
            request.method not in ("GET", "HEAD")
            or rest in PRIVATE
            or "signature" in params
            or "x-mbx-apikey" in request.headers
        ):
            raise signed_refused(f"{request.method} {PREFIX}/{rest}")
        if rest not in FORWARDED:
            raise ApiRefusal(
                404,
                -1000,
                f"Mystic does not serve {PREFIX}/{rest}; it serves Binance's public market "
                "data (ping, time, exchangeInfo, klines, uiKlines, depth, avgPrice, "
                "ticker/price, ticker/24hr, ticker/bookTicker, trades, aggTrades, ticker, "
                "ticker/tradingDay).",
            )
        selected = _selection(params)
        if selected is None:
            raise mandatory("symbol")
        for name in selected:
            await self._listed(name)
        return await self._forward(request, f"{PREFIX}/{rest}", list(params.multi_items()))


def _may_hold_more(
    interval: Interval, start: int | None, end_excl: int | None, limit: int, now_ms: int
) -> bool:
    """Whether Binance's answer to a klines request could hold more candles than Mystic's
    window of ``limit`` intervals did: with a start, when the window ends before the range
    does (the end given, else now); with none (the last ``limit``), always, since Binance
    reaches back past any gap."""
    if start is None:
        return True
    return interval.shift(interval.ceil(start), limit) < (now_ms if end_excl is None else end_excl)


def _farthest(answers: Sequence[Answer[Any]]) -> Answer[Any]:
    """One provenance for several answers: the farthest layer, the oldest age, stale if any."""
    layer = max((a.layer for a in answers), key=_LAYER_ORDER.__getitem__)
    oldest = min(a.fetched_at for a in answers)
    return Answer(None, layer, oldest, stale=any(a.stale for a in answers))


def _route(request: Request) -> str:
    route = request.scope.get("route")
    return str(getattr(route, "path", PREFIX))


def binance_routes(state: ApiState) -> list[BaseRoute]:
    """The /api/v3 routes, each with its full path (the metrics label it by template)."""
    api = BinanceApi(state)
    shares = state.shares

    def g(handler: Handler) -> Handler:
        guarded = api.guarded(handler)
        return guarded if shares is None else shares.bind(guarded)

    return [
        Route(f"{PREFIX}/ping", g(api.ping)),
        Route(f"{PREFIX}/time", g(api.time)),
        Route(f"{PREFIX}/exchangeInfo", g(api.exchange_info)),
        Route(f"{PREFIX}/klines", g(api.klines)),
        Route(f"{PREFIX}/uiKlines", g(api.klines)),
        Route(f"{PREFIX}/depth", g(api.depth)),
        Route(f"{PREFIX}/avgPrice", g(api.avg_price)),
        Route(f"{PREFIX}/ticker/price", g(api.ticker_price)),
        Route(f"{PREFIX}/ticker/24hr", g(api.ticker_24hr)),
        Route(f"{PREFIX}/ticker/bookTicker", g(api.book_ticker)),
        Route(
            PREFIX + "/{rest:path}",
            g(api.other),
            methods=["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"],
        ),
    ]
