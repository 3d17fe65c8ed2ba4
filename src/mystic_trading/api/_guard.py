"""Protection at the door: request size limits and a bound on requests in flight.

- A body: Binance's public market data are GETs without one, so a request announcing more
  than ``max_body_bytes`` (or a chunked body, whose size is not announced) is refused with
  413 before anything reads it.
- Headers over ``max_header_bytes`` in all: 431; a query string over ``max_query_bytes``:
  414. (uvicorn's httptools parser has no header limit of its own to set; h11's
  ``h11_max_incomplete_event_size`` applies only under ``--http h11``.)
- Each refusal is in the envelope of the API asked: Mystic's own (``{"error": {"code",
  "message", "field"}}``) under ``/api/v1``, Binance's ``{"code", "msg"}`` everywhere else.
- At most ``max_in_flight`` requests are served at once; one more is answered at once with
  503, ``Retry-After: 1`` and Binance's -1008 "server busy" body, instead of queueing
  without bound behind a slow exchange. ``/livez`` and ``/metrics`` are not counted, so a
  busy process is not killed for being busy and can still be watched; neither are the
  dashboard's event streams, which stay open for a page's life.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from mystic_trading.api._encode import dumps, error_body
from mystic_trading.api._metrics import Metrics

__all__ = ["Guard"]

_SHED = "Server is currently overloaded with other requests. Please try again in a few minutes."
_SHED_BODY = error_body(-1008, _SHED)
V1_PREFIX = "/api/v1/"
# /api/v1's codes for the guard's refusals, by status.
_V1_CODES = {
    400: "invalid",
    413: "body_too_large",
    414: "query_too_long",
    431: "headers_too_large",
    503: "busy",
}


def _v1_body(status: int, message: str, field: str | None = None) -> bytes:
    return dumps({"error": {"code": _V1_CODES[status], "message": message, "field": field}})


_SHED_V1_BODY = _v1_body(503, _SHED)
# Not counted in flight: the probes, the scrape, and each dashboard's event stream (open for
# the page's life, waiting on the one shared sampler at a few hundred bytes every 2 s: it
# would otherwise hold a slot for ever and shed admin calls with the market data).
EXEMPT = frozenset({"/livez", "/metrics", "/api/v1/dashboard/stream"})


async def _refuse(send: Send, status: int, body: bytes, retry_after: int | None = None) -> None:
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class Guard:
    """Size limits and the in-flight bound, as a pure ASGI middleware."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: Metrics,
        max_in_flight: int,
        max_body_bytes: int,
        max_header_bytes: int,
        max_query_bytes: int,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.max_in_flight = max_in_flight
        self.max_body_bytes = max_body_bytes
        self.max_header_bytes = max_header_bytes
        self.max_query_bytes = max_query_bytes
        self.in_flight = 0
        metrics.in_flight.set_function(lambda: self.in_flight)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._too_large(scope)
        v1 = scope["path"].startswith(V1_PREFIX)
        if refusal is not None:
            self.metrics.refused_size.inc()
            status, message = refusal
            field = "Content-Length" if status == 400 else None
            body = _v1_body(status, message, field) if v1 else error_body(-1000, message)
            await _refuse(send, status, body)
            return
        if scope["path"] in EXEMPT:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.max_in_flight:
            self.metrics.shed.inc()
            await _refuse(send, 503, _SHED_V1_BODY if v1 else _SHED_BODY, retry_after=1)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1

    def _too_large(self, scope: Scope) -> tuple[int, str] | None:
        if len(scope.get("query_string", b"")) > self.max_query_bytes:
            return 414, f"The query string is longer than {self.max_query_bytes} bytes."
        size = 0
        for name, value in scope["headers"]:
            size += len(name) + len(value) + 4  # ": " and CRLF
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    return 400, "Content-Length is not a number."
                if length > self.max_body_bytes:
                    return 413, f"The request body is larger than {self.max_body_bytes} bytes."
            elif name == b"transfer-encoding":
                return 413, "A request body of unannounced length (chunked) is not accepted."
        if size > self.max_header_bytes:
            return 431, f"The request headers are larger than {self.max_header_bytes} bytes."
        return None
