"""The HTTP API under slow and greedy clients: connections that send nothing, half a head or half a body
are closed by the head / body deadlines; an endless head is refused (431); past http_max_connections new
requests get 503. Raw sockets, since no HTTP client library sends broken requests on purpose."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from glide.api.http_server import DeadlineHttpProtocol

SLOW = 40  # of each kind


async def closed_by_server(reader: asyncio.StreamReader, within_s: float = 15.0) -> bytes:
    """Everything the server sends until it closes the connection (fails if it never does)."""
    return await asyncio.wait_for(reader.read(), within_s)


async def test_slow_clients_are_cut_off(servers: Callable[..., Any]) -> None:
    server = await servers(http_header_timeout_s=0.5, http_body_timeout_s=0.5)
    assert server._http is not None and issubclass(server._http.config.http, DeadlineHttpProtocol)
    port = server.http_port
    conns = []
    for kind in ("nothing", "half-head", "half-body"):
        for _ in range(SLOW):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            if kind == "half-head":
                writer.write(b"POST /api/user/info HTTP/1.1\r\nHost: x\r\nContent-Ty")
            elif kind == "half-body":
                writer.write(b'POST /api/user/info HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"uid":')
            await writer.drain()
            conns.append((kind, reader, writer))
    answers = await asyncio.gather(*(closed_by_server(reader) for _, reader, _ in conns))
    for (kind, _, writer), answer in zip(conns, answers, strict=True):
        writer.close()
        if kind != "half-body":  # the head never completed: 408
            assert answer.startswith(b"HTTP/1.1 408"), (kind, answer[:60])
    # The server still answers a well-behaved client.
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /api/app/release HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert (await closed_by_server(reader)).startswith(b"HTTP/1.1 200")
    writer.close()


async def test_an_endless_head_is_refused(servers: Callable[..., Any]) -> None:
    server = await servers()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.http_port)
    writer.write(b"GET /api/app/release HTTP/1.1\r\nHost: x\r\n")
    with contextlib.suppress(ConnectionError):  # the server may close it under us: also a refusal
        for _ in range(200):  # 200 x 1 KiB of headers, far past the 64 KiB head limit
            writer.write(b"X-Filler: " + b"a" * 1014 + b"\r\n")
            await writer.drain()
    try:
        answer = await closed_by_server(reader)
    except ConnectionResetError:  # closed with our filler still unread: the kernel resets instead
        answer = b""
    assert answer == b"" or answer.startswith(b"HTTP/1.1 431"), answer[:80]
    assert server.http_port  # and the server itself is fine: see the next request
    reader, writer = await asyncio.open_connection("127.0.0.1", server.http_port)
    writer.write(b"GET /api/app/release HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert (await closed_by_server(reader)).startswith(b"HTTP/1.1 200")
    writer.close()


async def test_connections_past_the_limit_get_503(servers: Callable[..., Any]) -> None:
    server = await servers(http_max_connections=10)
    idle = [await asyncio.open_connection("127.0.0.1", server.http_port) for _ in range(12)]
    reader, writer = await asyncio.open_connection("127.0.0.1", server.http_port)
    writer.write(b"GET /api/app/release HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert (await closed_by_server(reader)).startswith(b"HTTP/1.1 503")
    writer.close()
    for _, w in idle:
        w.close()
    await asyncio.sleep(0.2)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.http_port)
    writer.write(b"GET /api/app/release HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert (await closed_by_server(reader)).startswith(b"HTTP/1.1 200")
    writer.close()
