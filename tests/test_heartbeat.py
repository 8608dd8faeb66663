"""Liveness per GlideIM §3, driven by the Rust timing wheel under an injected clock (no sleeps for timing)."""

from __future__ import annotations

import asyncio

import pytest
import websockets
from helpers import Client, FakeClock, make_user

from glide.gateway.gateway import Gateway
from glide.server import Server


async def _settle() -> None:
    """Let the frames written by a tick reach the client (I/O only, no timing)."""
    for _ in range(5):
        await asyncio.sleep(0)
    await asyncio.sleep(0.02)


async def _login(server: Server) -> Client:
    _, token = await make_user(server, "alice")
    client = await Client.connect(server, ping_interval=None)
    await client.login(token)
    return client


async def _closed_code(client: Client) -> int:
    with pytest.raises(websockets.ConnectionClosed) as closed:
        while True:
            await client.recv(2)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code


async def test_connection_that_never_logs_in_is_closed_after_auth_timeout(servers) -> None:  # type: ignore[no-untyped-def]
    clock = FakeClock()
    server = await servers(clock=clock, auth_timeout_s=10)
    client = await Client.connect(server, ping_interval=None)
    clock.advance(9_000)
    server.gateway.tick()
    await _settle()
    assert len(server.gateway.conns) == 1
    clock.advance(1_000)
    server.gateway.tick()
    assert await _closed_code(client) == 1008


async def test_server_heartbeat_after_send_silence(servers) -> None:  # type: ignore[no-untyped-def]
    clock = FakeClock()
    server = await servers(clock=clock)
    client = await _login(server)
    clock.advance(29_000)
    server.gateway.tick()
    await client.nothing(0.1)
    clock.advance(1_000)
    server.gateway.tick()
    beat = await client.expect("heartbeat")
    assert beat == {"ver": 1, "action": "heartbeat", "data": None}


async def test_silent_client_is_closed_after_four_windows(servers) -> None:  # type: ignore[no-untyped-def]
    clock = FakeClock()
    server = await servers(clock=clock)
    client = await _login(server)
    for _ in range(3):
        clock.advance(30_000)
        server.gateway.tick()
        await client.expect("heartbeat")
    clock.advance(29_000)
    server.gateway.tick()
    await _settle()
    assert len(server.gateway.conns) == 1
    clock.advance(1_000)
    server.gateway.tick()
    assert await _closed_code(client) == 1000
    await _settle()
    assert server.gateway.conns == {}
    assert server.gateway.hub.online_count() == 0


async def test_client_heartbeats_keep_it_alive(servers) -> None:  # type: ignore[no-untyped-def]
    clock = FakeClock()
    server = await servers(clock=clock)
    client = await _login(server)
    for _ in range(10):
        clock.advance(25_000)
        server.gateway.tick()
        await client.send("heartbeat", {})
        await _settle()
        server.gateway.tick()  # stamps the clock the frame was received at
    assert len(server.gateway.conns) == 1
    if isinstance(server.gateway, Gateway):  # the asyncio driver's wheel (the native one's: cargo test)
        assert len(server.gateway.wheel) == 1  # one timer per connection, however busy it is


async def test_a_big_clock_jump_closes_everything_idle_at_once(servers) -> None:  # type: ignore[no-untyped-def]
    clock = FakeClock()
    server = await servers(clock=clock)
    clients = [await Client.connect(server, ping_interval=None) for _ in range(20)]
    clock.advance(3_600_000)
    server.gateway.tick()
    for c in clients:
        assert await _closed_code(c) == 1008
