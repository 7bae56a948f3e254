"""The HTTP services' connection limits on a real uvicorn on 127.0.0.1 (issue 20,
finding 5): header size and time, an early answer closing the connection."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn

from docflow_shared.server import server_options
from docflow_shared.settings import HttpServiceSettings

SETTINGS = HttpServiceSettings(max_header_bytes=8192, header_timeout_s=0.5)


async def app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    if scope["path"] == "/early":  # answers without reading the body, as a 401 does
        await send({"type": "http.response.start", "status": 401, "headers": []})
        await send({"type": "http.response.body", "body": b"no"})
        return
    size = 0
    while True:
        message = await receive()
        size += len(message.get("body", b""))
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(size).encode()})


@pytest.fixture
async def port() -> AsyncIterator[int]:
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_config=None, lifespan="off", **server_options(SETTINGS)
    )
    config.load()
    server = uvicorn.Server(config)
    server.lifespan = config.lifespan_class(config)
    await server.startup()  # listening once it returns
    yield server.servers[0].sockets[0].getsockname()[1]
    await server.shutdown()


async def exchange(port: int, request: bytes, *, more: bytes = b"") -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    if more:
        try:
            for _ in range(64):
                writer.write(more)
                await writer.drain()
        except ConnectionError:
            pass
    async with asyncio.timeout(5):
        answer = await reader.read()  # until the server closes
    writer.close()
    return answer


async def test_a_request_within_the_limits_is_served(port: int) -> None:
    body = b"x" * 100_000
    head = b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\nConnection: close\r\n\r\n"
    answer = await exchange(port, head + body)
    assert answer.startswith(b"HTTP/1.1 200")
    assert b"\r\n100000\r\n" in answer


async def test_a_header_over_the_limit_is_431_and_closed(port: int) -> None:
    head = b"GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 20_000
    answer = await exchange(port, head, more=b"a" * 65536)
    assert answer.startswith(b"HTTP/1.1 431")


async def test_a_header_not_finished_in_time_is_408_and_closed(port: int) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    answer = await exchange(port, b"GET / HTTP/1.1\r\nHost: t\r\n")
    assert answer.startswith(b"HTTP/1.1 408")
    assert loop.time() - started < 3


async def test_a_silent_connection_is_closed_after_the_header_timeout(port: int) -> None:
    answer = await exchange(port, b"")
    assert answer.startswith(b"HTTP/1.1 408")


async def test_an_answer_before_the_body_closes_the_connection(port: int) -> None:
    head = b"POST /early HTTP/1.1\r\nHost: t\r\nContent-Length: 314572800\r\n\r\n"
    answer = await exchange(port, head, more=b"{" * 65536)
    assert answer.startswith(b"HTTP/1.1 401")
