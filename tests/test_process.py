"""`glide serve` as a process: durability across kill -9, and a clean stop on SIGTERM."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import websockets
from serve_process import ServeProcess


async def _login(url: str, token: str) -> websockets.ClientConnection:
    ws = await websockets.connect(url)
    assert json.loads(await ws.recv())["action"] == "hello"
    await ws.send(json.dumps({"action": "api.auth", "seq": 1, "data": {"Token": token}}))
    assert json.loads(await ws.recv())["action"] == "api.success"
    return ws


def _account(proc: ServeProcess, name: str) -> tuple[int, str]:
    proc.api("auth/register", {"account": name, "password": "password1", "nickname": name})
    data = proc.api("auth/signin", {"account": name, "password": "password1", "device": 1})
    return int(data["uid"]), str(data["token"])  # type: ignore[call-overload]


async def test_acknowledged_messages_survive_kill_9(tmp_path: Path) -> None:
    data_dir = tmp_path / "state"
    proc = ServeProcess(data_dir)
    try:
        _, alice_token = _account(proc, "alice")
        bob_uid, bob_token = _account(proc, "bob")
        alice = await _login(proc.ws_url, alice_token)
        n = 200
        for i in range(n):
            chat = {
                "action": "message.chat",
                "seq": i + 10,
                "to": str(bob_uid),
                "data": {"cliMid": f"k{i}", "content": f"durable {i}"},
            }
            await alice.send(json.dumps(chat))
        acked: list[int] = []
        while len(acked) < n:
            frame = json.loads(await asyncio.wait_for(alice.recv(), 10))
            if frame["action"] == "ack.message":
                acked.append(frame["data"]["mid"])
        proc.kill9()  # right after the last ack.message: no clean shutdown, no flush
    finally:
        if proc.proc.poll() is None:
            proc.kill9()

    proc = ServeProcess(data_dir)
    try:
        bob = await _login(proc.ws_url, bob_token)
        got: list[int] = []
        while len(got) < n:
            frame = json.loads(await asyncio.wait_for(bob.recv(), 10))
            if frame["action"] == "message.chat":
                got.append(frame["data"]["mid"])
        assert got == acked
        await bob.close()
    finally:
        proc.terminate()


async def test_sigterm_closes_clients_with_1001(tmp_path: Path) -> None:
    proc = ServeProcess(tmp_path / "state")
    _, token = _account(proc, "alice")
    ws = await _login(proc.ws_url, token)
    output = await asyncio.to_thread(proc.terminate)
    try:
        while True:
            await asyncio.wait_for(ws.recv(), 5)
    except websockets.ConnectionClosed as closed:
        assert closed.rcvd is not None and closed.rcvd.code == 1001
    assert proc.proc.returncode == 0, output
    assert "shutting down" in output
