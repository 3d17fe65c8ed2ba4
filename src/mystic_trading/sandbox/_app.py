"""``create_app``: the sandbox as a Starlette application.

Routes:

- ``GET /api/v3/<endpoint>``: Binance market data. Each answer passes, in order: outage 503,
  injected latency, injected 5xx, the weight limiter (429/418), then the endpoint (400 on a
  bad parameter). Every answer carries ``X-MBX-USED-WEIGHT-<n><letter>`` (and the legacy
  ``X-MBX-USED-WEIGHT`` for a one-minute window), the IP's weight used in the current window
  including this request when it was served.
- ``GET /sandbox/stats``: the counters (loopback clients only).
- ``GET|POST /sandbox/admin/faults``, ``POST /sandbox/admin/reset``: run-time control; loopback
  clients only, and the ``X-Sandbox-Token`` header must equal the admin token (compared with
  ``hmac.compare_digest``).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mystic_trading.sandbox import _errors as err
from mystic_trading.sandbox._config import SandboxConfig, is_loopback
from mystic_trading.sandbox._exchange import SandboxExchange
from mystic_trading.sandbox._limiter import window_label
from mystic_trading.sandbox._weights import weight_of

__all__ = ["TOKEN_HEADER", "create_app"]

TOKEN_HEADER = "X-Sandbox-Token"  # noqa: S105 - a header name, not a secret
_JSON = "application/json;charset=UTF-8"
_log = logging.getLogger("mystic_trading.sandbox")


def create_app(
    config: SandboxConfig | None = None, *, exchange: SandboxExchange | None = None
) -> Starlette:
    """The sandbox's ASGI app; its state is ``app.state.exchange`` (a :class:`SandboxExchange`)."""
    ex = exchange if exchange is not None else SandboxExchange(config)
    handlers = ex.api.handlers
    limiter = ex.limiter
    faults = ex.faults
    stats = ex.stats
    clock = ex.clock
    trust_forwarded = ex.config.trust_forwarded_for

    def client_ip(request: Request) -> str:
        if trust_forwarded:
            forwarded = request.headers.get("x-forwarded-for")
            if forwarded:
                return forwarded.split(",")[0].strip()
        return request.client.host if request.client else "unknown"

    async def api(request: Request) -> Response:
        endpoint: str = request.path_params["endpoint"]
        handler = handlers.get(endpoint)
        if handler is None:
            return Response(b"", status_code=404)
        ip = client_ip(request)
        outage = faults.outage()
        if outage is not None:
            stats.record(endpoint, ip, 503, 0, injected=True)
            e = err.server_error(503)
            return Response(e.body, 503, media_type=_JSON)
        delay = faults.draw_delay()
        if delay:
            await asyncio.sleep(delay)
        injected = faults.draw_error()
        if injected is not None:
            stats.record(endpoint, ip, injected, 0, injected=True)
            e = err.server_error(injected)
            return Response(e.body, injected, media_type=_JSON)

        params = request.query_params
        weight = weight_of(endpoint, params)
        now = clock()
        decision = limiter.acquire(ip, weight, now)
        window_s = limiter.window_s
        num, name, letter = window_label(window_s)
        headers = {f"X-MBX-USED-WEIGHT-{num}{letter}": str(decision.used)}
        if num == 1 and letter == "M":
            headers["X-MBX-USED-WEIGHT"] = str(decision.used)
        if decision.status != 200:
            headers["Retry-After"] = str(decision.retry_after)
            e = (
                err.too_much_weight(limiter.limit, f"{num} {name}")
                if decision.status == 429
                else err.banned(decision.ban_until)
            )
            stats.record(endpoint, ip, decision.status, 0)
            return Response(e.body, decision.status, headers=headers, media_type=_JSON)
        try:
            body = handler(params, now, limiter.limit, window_s)
        except err.ApiError as e:
            stats.record(endpoint, ip, e.status, weight)
            return Response(e.body, e.status, headers=headers, media_type=_JSON)
        stats.record(endpoint, ip, 200, weight)
        return Response(body, 200, headers=headers, media_type=_JSON)

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
        return local_only(request) or JSONResponse(stats.snapshot())

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
    _log.info("sandbox faults changed: %s", json.dumps(body))


def _number(body: dict[str, Any], key: str) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{key} must be a number, not {value!r}")
    return float(value)


def describe(ex: SandboxExchange) -> dict[str, Any]:
    """Faults and budget in force, as the admin endpoints answer."""
    out = ex.faults.describe()
    out["weight_limit"] = ex.limiter.limit
    out["window_s"] = ex.limiter.window_s
    return out
