"""The HTTP transport under httpx: aiohttp's connection pool, through httpx-aiohttp.

Why not httpx's own: for each request httpcore's pool asks every idle connection whether it
has expired, and each asks anyio for the raw socket, which builds the socket's attribute
dict (a getpeername() call) and polls it; twice a request. With 32 keep-alive connections
that was 16 % of a busy process's time in bench/marketdata.py (encode/httpcore#928, open),
and upstream answers waited behind it: with it, under the Zipf load, median upstream latency
was 1.3 s for tickers and 1.9 s for candle windows; with aiohttp's pool, 0.21 s and 0.66 s.
httpx stays the API (and ``httpx.MockTransport`` the test double); only the pool changes.
"""

from __future__ import annotations

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

__all__ = ["pooled_transport"]


class _Transport(AiohttpTransport):
    """httpx-aiohttp's transport, with a refused or dropped connection named as such.

    httpx-aiohttp maps every ``aiohttp.ClientConnectionError`` to ``httpx.ConnectTimeout``;
    the throttler would count a refused connection as a timeout. Timeouts stay timeouts.
    """

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await super().handle_async_request(request)
        except httpx.ConnectTimeout as exc:
            cause = exc.__cause__
            if isinstance(cause, TimeoutError):
                raise
            if isinstance(cause, aiohttp.ClientConnectorError):
                raise httpx.ConnectError(
                    str(cause) or "connection refused", request=request
                ) from cause
            if isinstance(cause, aiohttp.ClientConnectionError):
                raise httpx.RemoteProtocolError(
                    str(cause) or "server closed the connection", request=request
                ) from cause
            raise


def pooled_transport(max_connections: int) -> httpx.AsyncBaseTransport:
    """A transport keeping up to ``max_connections`` connections; its aiohttp session is
    made on first use, inside the running event loop."""
    return _Transport(
        client=lambda: aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=max_connections, limit_per_host=max_connections)
        )
    )
