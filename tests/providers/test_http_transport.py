"""The provider's HTTP transport names connection failures as httpx does, over real sockets
on 127.0.0.1: refused and dropped connections are transport errors, not timeouts."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from mystic_trading.providers._http import pooled_transport
from mystic_trading.throttle._slot import classify_exception


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port  # closed again: nothing listens there


@pytest.fixture
async def server() -> AsyncIterator[Callable[..., object]]:
    """Start a raw TCP server on 127.0.0.1 whose connection handler is given; its URL."""
    servers: list[asyncio.Server] = []

    async def start(handler: Callable[..., object]) -> str:
        srv = await asyncio.start_server(handler, "127.0.0.1", 0)  # type: ignore[arg-type]
        servers.append(srv)
        return f"http://127.0.0.1:{srv.sockets[0].getsockname()[1]}"

    yield start
    for srv in servers:
        srv.close()
        await srv.wait_closed()


def replying(raw: bytes) -> Callable[..., object]:
    """A connection handler that reads one request, writes ``raw`` (nothing: hangs up) and
    closes."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        if raw:
            writer.write(raw)
            await writer.drain()
        writer.close()
        await writer.wait_closed()

    return handle


async def get(url: str, read_timeout_s: float = 5.0) -> httpx.Response:
    async with httpx.AsyncClient(
        transport=pooled_transport(4), timeout=httpx.Timeout(read_timeout_s, connect=2.0)
    ) as client:
        return await client.get(url + "/api/v3/ping")


async def test_a_refused_connection_is_a_connect_error() -> None:
    with pytest.raises(httpx.ConnectError) as info:
        await get(f"http://127.0.0.1:{free_port()}")
    assert classify_exception(info.value) == "transport"


async def test_a_connection_closed_before_the_answer_is_a_protocol_error(server: Any) -> None:
    url = await server(replying(b""))
    with pytest.raises(httpx.RemoteProtocolError) as info:
        await get(url)
    assert classify_exception(info.value) == "transport"


async def test_a_silent_server_is_a_timeout(server: Any) -> None:
    async def say_nothing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # until the client gives up and closes
        writer.close()
        await writer.wait_closed()

    url = await server(say_nothing)
    with pytest.raises(httpx.TimeoutException) as info:
        await get(url, read_timeout_s=0.2)
    assert classify_exception(info.value) == "timeout"


async def test_an_answer_comes_through_whole(server: Any) -> None:
    body = b'{"serverTime": 1}'
    url = await server(
        replying(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-mbx-used-weight-1m: 7\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        )
    )
    response = await get(url)
    assert response.status_code == 200
    assert response.json() == {"serverTime": 1}
    assert response.headers["X-MBX-USED-WEIGHT-1M"] == "7"


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 2x0 OK\r\ncontent-length: 2\r\n\r\n{}",  # bad status line
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",  # chunk
        b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{}",  # cut short
    ],
    ids=["bad-status-line", "bad-chunk-size", "body-cut-short"],
)
async def test_an_unparsable_answer_is_a_transport_error(server: Any, answer: bytes) -> None:
    """Garbage on the wire is an httpx transport error the throttler retries, never a raw
    aiohttp exception."""
    url = await server(replying(answer))
    with pytest.raises(httpx.TransportError) as info:
        await get(url)
    assert classify_exception(info.value) == "transport"
