"""ack means stored: a write whose await returned survives kill -9 of the process."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from glide.store import SqliteStore

ROOT = Path(__file__).resolve().parent.parent

WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from glide.store import NewChat, SqliteStore

    async def writer(store, first, step):
        mid = first
        while True:
            [r] = await store.store_chats([NewChat(mid, f"c{mid}", 1, 2, 1, "durable " * 20, 0)])
            print(r.message.mid, flush=True)   # only after the await: the write is acknowledged
            mid += step

    async def main(path):
        store = (await SqliteStore.open(path)).messages
        print("ready", flush=True)
        await asyncio.gather(*(writer(store, first, 8) for first in range(1, 9)))

    asyncio.run(main(sys.argv[1]))
    """
)


def test_acknowledged_writes_survive_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "durable.db"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=ROOT,
        text=True,
    )
    acked: list[int] = []
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read() if proc.stderr else ""
        deadline = time.monotonic() + 60  # generous: the machine may be loaded; 400 acks usually take <2 s
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
    assert len(acked) >= 50, err

    async def check() -> None:
        store = await SqliteStore.open(path)
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
        finally:
            await store.close()

    asyncio.run(check())
