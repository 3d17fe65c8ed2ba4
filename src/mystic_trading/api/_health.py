"""``/livez``, ``/readyz`` and ``/metrics``, with Kubernetes' meanings.

- ``/livez``: the event loop answers. Nothing else is asked, so a process that is slow
  because the exchange is slow is not restarted for it.
- ``/readyz``: this process can serve: the store answers, Redis answers (when configured),
  the exchange's listing is loaded, and it is not banned with nothing to serve. 503 with
  the reasons otherwise, as JSON, so a load balancer sends traffic elsewhere meanwhile.
- ``/metrics``: Prometheus' text format (``_metrics.py``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mystic_trading.api._encode import dumps
from mystic_trading.api._metrics import CONTENT_TYPE
from mystic_trading.api._state import ApiState
from mystic_trading.errors import MysticError
from mystic_trading.marketdata.answer import stamp_ms

__all__ = ["health_routes"]

log = logging.getLogger(__name__)

# A readiness probe answers within its own timeout (Kubernetes' default is 1 s).
CHECK_TIMEOUT_S = 0.8


async def _within(what: str, work: Any) -> str | None:
    """None when ``work`` succeeds in time, else why not."""
    try:
        await asyncio.wait_for(work, CHECK_TIMEOUT_S)
    except TimeoutError:
        return f"{what} did not answer within {CHECK_TIMEOUT_S:g} s"
    except (MysticError, OSError) as exc:
        return f"{what} failed: {exc}"
    return None


def health_routes(state: ApiState) -> list[BaseRoute]:
    async def livez(request: Request) -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    async def readyz(request: Request) -> Response:
        md = state.md_or_none
        if md is None:
            return _not_ready(["MarketData is not open (the app is starting or stopping)"])
        reasons: list[str] = []
        store = await _within("the store", md.store.ping())
        if store is not None:
            reasons.append(store)
        if md.redis is not None and not md.redis.available:
            reasons.append("Redis is unreachable (marked down after an error)")
        if md.symbols.age_s() is None:
            loaded = await _within("the exchange's listing", md.exchange_info())
            if loaded is not None:
                reasons.append(f"{loaded}; no listing is loaded")
        banned_until = md.throttler.stats().get("banned_until_ms") or 0
        if banned_until > stamp_ms() and len(md.memory) == 0:
            reasons.append(
                f"the exchange has banned this IP until {banned_until} and nothing is "
                "cached in this process to serve meanwhile"
            )
        if reasons:
            return _not_ready(reasons)
        return Response(dumps({"status": "ready", "venue": md.provider.venue}), media_type=JSON)

    async def metrics(request: Request) -> Response:
        return Response(state.metrics.render(), media_type=CONTENT_TYPE)

    return [
        Route("/livez", livez),
        Route("/readyz", readyz),
        Route("/metrics", metrics),
    ]


JSON = "application/json"


def _not_ready(reasons: list[str]) -> Response:
    return Response(
        dumps({"status": "not ready", "reasons": reasons}), status_code=503, media_type=JSON
    )
