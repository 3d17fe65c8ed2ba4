"""``create_app``: the sandbox as a Starlette application.

Routes:

- ``GET /api/v3/<endpoint>``: Binance market data. Each answer is decided, in order: outage
  503, injected 5xx, the weight limiter (429/418), then the endpoint (400 on a bad
  parameter), all on one reading of the exchange's clock; only then does the injected latency
  pass, so an answer is that old when it arrives, as a real one is. Every answer carries
  ``X-MBX-USED-WEIGHT-<n><letter>`` (and the legacy ``X-MBX-USED-WEIGHT`` for a one-minute
  window), the IP's weight used in the current window including this request when it was
  served; a ``Date`` from the exchange's own clock (RFC 9110 section 6.6.1, IMF-fixdate, whole
  seconds, as Binance sends it; uvicorn's own is switched off in ``_server.py``); and
  ``X-Sandbox-Venue``, the venue id of its market (``SandboxExchange.venue``).
- ``GET /sandbox/stats``: the counters, the venue and the clock (loopback clients only).
- ``GET|POST /sandbox/admin/faults``, ``POST /sandbox/admin/reset``: run-time control; loopback
  clients only, and the ``X-Sandbox-Token`` header must equal the admin token (compared with
  ``hmac.compare_digest``).
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import json
import logging
from email.utils import formatdate
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mystic_trading.sandbox import _errors as err
from mystic_trading.sandbox._config import (
    SandboxConfig,
    check_aggregation_lag,
    check_clock_skew,
    is_loopback,
)
from mystic_trading.sandbox._endpoints import Handler
from mystic_trading.sandbox._exchange import SandboxExchange
from mystic_trading.sandbox._limiter import window_label
from mystic_trading.sandbox._weights import weight_of

__all__ = ["TOKEN_HEADER", "VENUE_HEADER", "create_app", "http_date"]

TOKEN_HEADER = "X-Sandbox-Token"  # noqa: S105 - a header name, not a secret
VENUE_HEADER = "X-Sandbox-Venue"
_JSON = "application/json;charset=UTF-8"
_log = logging.getLogger("mystic_trading.sandbox")


def http_date(ms: int) -> str:
    """The IMF-fixdate of epoch milliseconds ``ms``: "Sat, 21 Jun 2025 03:58:51 GMT"."""
    return _imf_fixdate(ms // 1000).decode()


@functools.lru_cache(maxsize=16)
def _imf_fixdate(second: int) -> bytes:
    # Every answer of one second carries the same Date: format it once.
    return formatdate(second, usegmt=True).encode()


RawHeaders = list[tuple[bytes, bytes]]
_JSON_TYPE = (b"content-type", _JSON.encode())


class _Answer(Response):
    """A JSON answer from headers already encoded: the hot path skips Starlette's per-request
    re-encoding of every header (``Response.init_headers``); ``Response.__call__`` sends
    ``raw_headers`` as they are. Names are lower case, as HTTP/1.1 allows (RFC 9110 5.1)."""

    def __init__(self, body: bytes, status: int, headers: RawHeaders) -> None:
        self.status_code = status
        self.background = None
        self.body = body
        headers.append((b"content-length", b"%d" % len(body)))
        headers.append(_JSON_TYPE)
        self.raw_headers = headers


def create_app(
    config: SandboxConfig | None = None, *, exchange: SandboxExchange | None = None
) -> Starlette:
    """The sandbox's ASGI app; its state is ``app.state.exchange`` (a :class:`SandboxExchange`)."""
    ex = exchange if exchange is not None else SandboxExchange(config)
    handlers = ex.api.handlers
    limiter = ex.limiter
    faults = ex.faults
    stats = ex.stats
    read_clock = ex.read_clock
    venue = ex.venue
    trust_forwarded = ex.config.trust_forwarded_for

    def client_ip(request: Request) -> str:
        if trust_forwarded:
            forwarded = request.headers.get("x-forwarded-for")
            if forwarded:
                return forwarded.split(",")[0].strip()
        return request.client.host if request.client else "unknown"

    venue_header = (VENUE_HEADER.lower().encode(), venue.encode())

    def stamp(now: int) -> RawHeaders:
        return [(b"date", _imf_fixdate(now // 1000)), venue_header]

    def answer(
        request: Request, endpoint: str, handler: Handler, now: int, cutoff: int
    ) -> Response:
        """The whole answer at ``now``: injected error, limiter decision, or the endpoint's."""
        headers = stamp(now)
        ip = client_ip(request)
        injected = faults.draw_error()
        if injected is not None:
            stats.record(endpoint, ip, injected, 0, injected=True)
            return _Answer(err.server_error(injected).body, injected, headers)
        params = request.query_params
        weight = weight_of(endpoint, params)
        decision = limiter.acquire(ip, weight, now)
        window_s = limiter.window_s
        num, name, letter = window_label(window_s)
        used = b"%d" % decision.used
        headers.append((b"x-mbx-used-weight-%d%s" % (num, letter.lower().encode()), used))
        if num == 1 and letter == "M":
            headers.append((b"x-mbx-used-weight", used))
        if decision.status != 200:
            headers.append((b"retry-after", b"%d" % decision.retry_after))
            e = (
                err.too_much_weight(limiter.limit, f"{num} {name}")
                if decision.status == 429
                else err.banned(decision.ban_until)
            )
            stats.record(endpoint, ip, decision.status, 0)
            return _Answer(e.body, decision.status, headers)
        try:
            body = handler(params, now, cutoff, limiter.limit, window_s)
        except err.ApiError as e:
            stats.record(endpoint, ip, e.status, weight)
            return _Answer(e.body, e.status, headers)
        stats.record(endpoint, ip, 200, weight)
        return _Answer(body, 200, headers)

    async def api(request: Request) -> Response:
        endpoint: str = request.path_params["endpoint"]
        now, cutoff = read_clock()
        handler = handlers.get(endpoint)
        if handler is None:
            return Response(b"", 404, headers={"Date": http_date(now), VENUE_HEADER: venue})
        if faults.outage() is not None:
            stats.record(endpoint, client_ip(request), 503, 0, injected=True)
            return _Answer(err.server_error(503).body, 503, stamp(now))
        delay = faults.draw_delay()
        response = answer(request, endpoint, handler, now, cutoff)
        if delay:
            await asyncio.sleep(delay)
        return response

    def local_only(request: Request) -> JSONResponse | None:
        host = request.client.host if request.client else ""
        if not is_loopback(host):
            return JSONResponse({"error": "loopback clients only"}, status_code=403)
        return None

    def authorised(request: Request) -> JSONResponse | None:
        refused = local_only(request)
        if refused is not None:
            return refused
        given = request.headers.get(TOKEN_HEADER, "")
        if not hmac.compare_digest(given.encode(), ex.admin_token.encode()):
            return JSONResponse({"error": f"missing or wrong {TOKEN_HEADER}"}, status_code=401)
        return None

    async def stats_view(request: Request) -> Response:
        refused = local_only(request)
        if refused is not None:
            return refused
        return JSONResponse({**stats.snapshot(), "venue": ex.venue, "clock": describe_clock(ex)})

    async def faults_view(request: Request) -> Response:
        refused = authorised(request)
        if refused is not None:
            return refused
        if request.method == "POST":
            try:
                apply_faults(ex, await request.json())
            except (ValueError, TypeError, KeyError) as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(describe(ex))

    async def reset_view(request: Request) -> Response:
        refused = authorised(request)
        if refused is not None:
            return refused
        ex.reset()
        return JSONResponse(describe(ex))

    app = Starlette(
        routes=[
            Route("/api/v3/{endpoint:path}", api, methods=["GET"]),
            Route("/sandbox/stats", stats_view, methods=["GET"]),
            Route("/sandbox/admin/faults", faults_view, methods=["GET", "POST"]),
            Route("/sandbox/admin/reset", reset_view, methods=["POST"]),
        ]
    )
    app.state.exchange = ex
    return app


_FAULT_KEYS = {
    "aggregation_lag_ms",
    "clock_skew_ms",
    "latency_ms",
    "jitter_ms",
    "error_rate",
    "error_statuses",
    "outage_s",
    "outage_mode",
    "weight_limit",
    "window_s",
}


def apply_faults(ex: SandboxExchange, body: Any) -> None:
    """Apply a POST /sandbox/admin/faults body, e.g. {"error_rate": 0.5, "outage_s": 2}."""
    if not isinstance(body, dict):
        raise ValueError("expected a JSON object")
    unknown = set(body) - _FAULT_KEYS
    if unknown:
        raise ValueError(
            f"unknown fault settings: {sorted(unknown)}; accepted: {sorted(_FAULT_KEYS)}"
        )
    # The clock settings are checked before anything changes; they apply last, so a bad body
    # never leaves a step half made.
    skew = check_clock_skew(body["clock_skew_ms"]) if "clock_skew_ms" in body else None
    lag = (
        check_aggregation_lag(body["aggregation_lag_ms"]) if "aggregation_lag_ms" in body else None
    )
    statuses = body.get("error_statuses")
    ex.faults.configure(
        latency_ms=_number(body, "latency_ms"),
        jitter_ms=_number(body, "jitter_ms"),
        error_rate=_number(body, "error_rate"),
        error_statuses=tuple(int(s) for s in statuses) if statuses is not None else None,
    )
    weight_limit, window_s = body.get("weight_limit"), body.get("window_s")
    if weight_limit is not None or window_s is not None:
        ex.set_budget(
            int(weight_limit) if weight_limit is not None else None,
            int(window_s) if window_s is not None else None,
        )
    seconds = _number(body, "outage_s")
    if seconds is not None:
        mode = body.get("outage_mode", "refuse")
        if mode not in ("refuse", "503"):
            raise ValueError(f"outage_mode must be 'refuse' or '503', not {mode!r}")
        ex.start_outage(seconds, mode)
    if lag is not None:
        ex.set_aggregation_lag(lag)
    if skew is not None:
        ex.set_clock_skew(skew)
    _log.info("sandbox faults changed: %s", json.dumps(body))


def _number(body: dict[str, Any], key: str) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{key} must be a number, not {value!r}")
    return float(value)


def describe(ex: SandboxExchange) -> dict[str, Any]:
    """Faults, budget and clock settings in force, as the admin endpoints answer."""
    out = ex.faults.describe()
    out["weight_limit"] = ex.limiter.limit
    out["window_s"] = ex.limiter.window_s
    out["clock_skew_ms"] = ex.clock_skew_ms
    out["aggregation_lag_ms"] = ex.aggregation_lag_ms
    return out


def describe_clock(ex: SandboxExchange) -> dict[str, Any]:
    """The exchange's clock now, its settings and the latest trade time shown so far."""
    return {
        "now_ms": ex.clock_ms(),
        "clock_skew_ms": ex.clock_skew_ms,
        "aggregation_lag_ms": ex.aggregation_lag_ms,
        "data_cutoff_ms": ex.data_cutoff if ex.data_cutoff > 0 else None,
    }
