"""ack means stored, on PostgreSQL too: what a killed process acknowledged is in the database.

Once at the store level (a writer process printing each mid after its write returned), once end to end
(``glide serve --store postgresql://…`` acknowledging ``message.chat`` frames with ``ack.message``).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import websockets
from serve_process import ServeProcess

from glide.store.postgres import PostgresStore

ROOT = Path(__file__).resolve().parent.parent

WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from glide.store import NewChat
    from glide.store.postgres import PostgresStore

    async def writer(store, first, step):
        mid = first
        while True:
            [r] = await store.store_chats([NewChat(mid, f"c{mid}", 1, 2, 1, "durable " * 20, 0)])
            print(r.message.mid, flush=True)   # only after the await: the write is acknowledged
            mid += step

    async def main(url):
        store = (await PostgresStore.open(url)).messages
        print("ready", flush=True)
        await asyncio.gather(*(writer(store, first, 8) for first in range(1, 9)))

    asyncio.run(main(sys.argv[1]))
    """
)


def test_acknowledged_writes_survive_sigkill(pg_url: str) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, pg_url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True
    )
    acked: list[int] = []
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read() if proc.stderr else ""
        deadline = time.monotonic() + 15
        while len(acked) < 400 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            acked.append(int(line))
        os.kill(proc.pid, signal.SIGKILL)  # no clean shutdown, no flush
        rest, err = proc.communicate(timeout=10)
        acked += [int(x) for x in rest.split() if x.isdigit()]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert len(acked) >= 400, err

    async def check() -> None:
        store = await PostgresStore.open(pg_url)
        try:
            for mid in acked:
                m = await store.messages.chat(mid)
                assert m is not None and m.cli_mid == f"c{mid}", f"acknowledged message {mid} lost"
            inbox: set[int] = set()
            page = await store.messages.inbox(2, limit=1000)
            while page:
                inbox |= {m.mid for m in page}
                page = await store.messages.inbox(2, after_seq=page[-1].receiver_seq, limit=1000)
            assert set(acked) <= inbox  # the inbox row was committed with its message
            timeline = await store.conversations.timeline(2, limit=500)
            assert timeline.head >= len(acked)  # and the bookkeeping with both
        finally:
            await store.close()

    asyncio.run(check())


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


async def test_glide_serve_on_postgresql_keeps_acknowledged_messages_across_kill_9(tmp_path: Path, pg_url: str) -> None:
    data_dir = tmp_path / "state"  # secrets only: the messages live in PostgreSQL
    proc = ServeProcess(data_dir, "--store", pg_url)
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
    assert not (data_dir / "glide.db").exists()  # it really ran on PostgreSQL

    proc = ServeProcess(data_dir, "--store", pg_url)
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
