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

from collections.abc import AsyncIterator
from typing import NoReturn

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

__all__ = ["pooled_transport"]


def _raise_named(exc: Exception, request: httpx.Request) -> NoReturn:
    """Raise the httpx error an aiohttp failure should have been mapped to (``exc`` itself
    when it already is).

    httpx-aiohttp maps every ``aiohttp.ClientConnectionError`` to ``httpx.ConnectTimeout``
    (the throttler would count a refused or dropped connection as a timeout) and leaves an
    unparsable answer (``aiohttp.ClientResponseError``: a bad status line, a header too long,
    a broken chunk) unmapped, so neither the throttler's retry nor its failure kinds would see
    it. Timeouts stay timeouts.
    """
    cause = exc.__cause__ if isinstance(exc, httpx.ConnectTimeout) else exc
    named: Exception = exc
    if isinstance(cause, TimeoutError):
        pass
    elif isinstance(cause, aiohttp.ClientConnectorError):
        named = httpx.ConnectError(str(cause) or "connection refused", request=request)
    elif isinstance(cause, aiohttp.ClientConnectionError):
        named = httpx.RemoteProtocolError(
            str(cause) or "server closed the connection", request=request
        )
    elif isinstance(cause, aiohttp.ClientResponseError):
        named = httpx.RemoteProtocolError(str(cause) or "unparsable answer", request=request)
    if named is exc:
        raise exc
    raise named from exc


class _Stream(httpx.AsyncByteStream):
    """A response body whose read errors are named as ``_raise_named`` says."""

    def __init__(self, inner: httpx.AsyncByteStream, request: httpx.Request) -> None:
        self._inner = inner
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._inner:
                yield chunk
        except (httpx.ConnectTimeout, aiohttp.ClientError) as exc:
            _raise_named(exc, self._request)

    async def aclose(self) -> None:
        await self._inner.aclose()


class _Transport(AiohttpTransport):
    """httpx-aiohttp's transport, with aiohttp's failures named as httpx names them."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = await super().handle_async_request(request)
        except (httpx.ConnectTimeout, aiohttp.ClientError) as exc:
            _raise_named(exc, request)
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _Stream(response.stream, request)
        return response


def pooled_transport(max_connections: int) -> httpx.AsyncBaseTransport:
    """A transport keeping up to ``max_connections`` connections; its aiohttp session is
    made on first use, inside the running event loop. Like httpx, it honours HTTP_PROXY,
    HTTPS_PROXY and NO_PROXY (``trust_env``)."""
    return _Transport(
        client=lambda: aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=max_connections, limit_per_host=max_connections),
            trust_env=True,
        )
    )
