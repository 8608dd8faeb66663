"""Delivery promises under the interleavings that break them: a login racing live sends (never twice, never
lost), and a store failing under pipelined sends (every request answered exactly once, then recovery)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import websockets
from helpers import Client, make_config, make_user

from glide.server import Server

ROUNDS = 25
PER_ROUND = 12


async def collect_mids(ws: websockets.ClientConnection, want: set[int], timeout: float = 10.0) -> list[int]:
    """Every message.chat mid this socket receives until it has seen all of ``want`` (or the timeout)."""
    got: list[int] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not want.issubset(got):
        remaining = deadline - loop.time()
        if remaining <= 0:
            break
        try:
            frame = json.loads(await asyncio.wait_for(ws.recv(), remaining))
        except TimeoutError:
            break
        if frame["action"] == "message.chat":
            got.append(frame["data"]["mid"])
    # Anything sent twice would arrive right behind: give it a moment to show up.
    try:
        while True:
            frame = json.loads(await asyncio.wait_for(ws.recv(), 0.2))
            if frame["action"] == "message.chat":
                got.append(frame["data"]["mid"])
    except TimeoutError:
        pass
    return got


async def test_login_racing_sends_delivers_every_message_exactly_once(server: Server) -> None:
    """B logs in again and again while A pipelines messages to it; B never acks, so each login replays the
    whole inbox while new messages arrive live. Every connection of B gets every stored mid exactly once."""
    _, token_a = await make_user(server, "alice")
    b, token_b = await make_user(server, "bob")
    sender = await Client.connect(server)
    await sender.login(token_a)
    acked: set[int] = set()
    for rnd in range(ROUNDS):
        receiver = await websockets.connect(f"ws://127.0.0.1:{server.ws_port}/ws")
        await receiver.recv()  # hello

        async def login(ws: websockets.ClientConnection = receiver, rnd: int = rnd) -> None:
            await asyncio.sleep(0.001 * (rnd % 7))
            await ws.send(json.dumps({"action": "api.auth", "seq": 1, "data": {"Token": token_b}}))

        async def burst(rnd: int = rnd) -> None:
            for i in range(PER_ROUND):
                data = {"cliMid": f"r{rnd}-{i}", "content": "x", "to": str(b), "type": 1}
                await sender.send("message.chat", data, to=str(b))

        # The login lands somewhere inside the burst: before, between or after the stores.
        await asyncio.gather(burst(), login())
        while len(acked) < (rnd + 1) * PER_ROUND:
            frame = await sender.recv()
            if frame["action"] == "ack.message":
                acked.add(frame["data"]["mid"])
        got = await collect_mids(receiver, acked)
        dupes = sorted({m for m in got if got.count(m) > 1})
        assert not dupes, f"round {rnd}: delivered twice: {dupes}"
        assert set(got) == acked, f"round {rnd}: missing {sorted(acked - set(got))[:5]}"
        assert server.ctx is not None
        sessions = server.ctx.hub.devices(b)
        assert sessions and all(c.held is None for c in sessions)  # replay over: nothing held, no dict kept
        await receiver.close()
    await sender.close()


async def _pipeline(client: Client, to: int, n: int, prefix: str) -> dict[int, dict[str, Any]]:
    """Send ``n`` message.chat without waiting; returns the one answer each seq got (ack or error)."""
    seqs = []
    for i in range(n):
        data = {"cliMid": f"{prefix}{i}", "content": "x", "to": str(to), "type": 1}
        seqs.append(await client.send("message.chat", data, to=str(to)))
    answers: dict[int, dict[str, Any]] = {}
    while len(answers) < n:
        frame = await client.recv(timeout=30)
        if frame["action"] in ("ack.message", "notify.error"):
            assert frame["seq"] in seqs, frame
            assert frame["seq"] not in answers, f"answered twice: {frame}"
            answers[frame["seq"]] = frame
    await client.nothing(0.3)  # and nothing more for any of them
    return answers


async def sender_and_receiver(server: Server) -> tuple[int, int, Client]:
    """alice (logged in) and bob, after one message that went through: the receiver is known, the store works."""
    a, token_a = await make_user(server, "alice")
    b, _ = await make_user(server, "bob")
    client = await Client.connect(server)
    await client.login(token_a)
    await client.chat(b, "before", "warm")
    return a, b, client


async def test_sqlite_locked_by_another_process_answers_every_request(tmp_path: Path) -> None:
    server = Server(make_config(tmp_path))
    await server.start()
    try:
        a, b, client = await sender_and_receiver(server)
        blocker = sqlite3.connect(tmp_path / "data" / "glide.db", isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # holds the write lock, as another process would
        try:
            answers = await _pipeline(client, b, 40, "locked")
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert all(f["action"] == "notify.error" for f in answers.values()), answers
        assert all("storage failure" in f["data"] for f in answers.values())
        ack = await client.chat(b, "after", "recovered")
        assert ack["data"]["mid"] > 0
        assert server.ctx is not None
        assert await server.ctx.store.messages.chat_by_cli_mid(a, "locked0") is None  # nothing half-stored
        await client.close()
    finally:
        await server.stop()


async def test_postgres_backends_terminated_answers_every_request(tmp_path: Path, pg_url: str) -> None:
    server = Server(make_config(tmp_path, store=pg_url))
    await server.start()
    try:
        a, b, client = await sender_and_receiver(server)
        db = urlsplit(pg_url).path.lstrip("/")
        admin = await asyncpg.connect(urlunsplit(urlsplit(pg_url)._replace(path="/postgres")))
        try:
            # PostgreSQL goes away: no new connections, and every existing one of this database is cut.
            await admin.execute(f'ALTER DATABASE "{db}" ALLOW_CONNECTIONS false')
            killed = await admin.fetchval(
                "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = $1 AND pid <> pg_backend_pid()) t",
                db,
            )
            assert killed >= 2  # the writer and the read pool
            answers = await _pipeline(client, b, 40, "cut")
        finally:
            await admin.execute(f'ALTER DATABASE "{db}" ALLOW_CONNECTIONS true')
            await admin.close()
        assert all(f["action"] == "notify.error" for f in answers.values()), answers
        assert server.ctx is not None
        assert await server.ctx.store.messages.chat_by_cli_mid(a, "cut0") is None  # nothing half-stored
        ack = await client.chat(b, "after", "recovered")
        assert await server.ctx.store.messages.chat(ack["data"]["mid"]) is not None
        await client.close()
    finally:
        await server.stop()
