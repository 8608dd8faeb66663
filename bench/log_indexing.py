"""What indexing one epoch of SQLite's message log costs (glide.store.sqlite.message_log).

Fills a log with ``--base`` messages between ``--users`` users (indexed as it goes), then, per round, appends
one epoch of messages and indexes it as the server does: the loop starts the epoch, the background worker
writes it into the index database, the loop takes its answer. Prints, per round, the loop thread's CPU per
message of the epoch (starting it, taking the answer, freeing the indexed messages), the worker's CPU per
message and how long its transaction took:

    python bench/log_indexing.py
    PYTHONPATH=<an older tree> python bench/log_indexing.py   # the same on another revision
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import tempfile
import time
import uuid
from pathlib import Path

from glide.store import NewChat, SqliteStore
from glide.store.sqlite import message_log

EPOCH = message_log.EPOCH_ROWS


async def main(users: int, base: int, rounds: int) -> None:
    message_log.EPOCH_AGE_S = 3600.0  # nothing is indexed unless asked to
    message_log.EPOCH_ROWS = 1 << 40
    rnd = random.Random(1)
    mids = iter(range(1, 1 << 62))
    with tempfile.TemporaryDirectory() as tmp:
        store = await SqliteStore.open(Path(tmp) / "log.db")
        log = store.messages.log

        async def append(n: int) -> None:
            for start in range(0, n, 256):
                await store.messages.store_chats(
                    [
                        NewChat(next(mids), str(uuid.UUID(int=rnd.getrandbits(128))), rnd.randint(1, users),
                                rnd.randint(1, users), 1, "hello there", 0)
                        for _ in range(min(256, n - start))
                    ]
                )  # fmt: skip

        async def index_epoch() -> tuple[float, float, float]:
            """The loop's CPU, the worker's CPU and the worker's wall time for the epoch."""
            loop_cpu = time.thread_time()
            epoch = log.start(now=True)
            assert epoch is not None
            frozen = log.tail.frozen
            job = log.job(epoch)

            def timed(conn: sqlite3.Connection) -> tuple[float, float]:
                cpu, wall = time.thread_time(), time.perf_counter()
                job(conn)
                return time.thread_time() - cpu, time.perf_counter() - wall

            done: asyncio.Future[tuple[float, float]] = asyncio.get_running_loop().create_future()
            store.engine.background(timed, done.set_result)
            loop_cpu = time.thread_time() - loop_cpu
            worker_cpu, worker_wall = await done
            started = time.thread_time()
            store.messages._written(epoch, None)
            while frozen.rows:  # freed a slice per loop iteration
                await asyncio.sleep(0)
            return loop_cpu + time.thread_time() - started, worker_cpu, worker_wall

        for _ in range(base // EPOCH):
            await append(EPOCH)
            await index_epoch()
        for _ in range(rounds):
            await append(EPOCH)
            loop_cpu, worker_cpu, worker_wall = await index_epoch()
            print(
                f"loop {loop_cpu / EPOCH * 1e6:6.2f} µs per message; worker {worker_cpu / EPOCH * 1e6:5.2f} µs per"
                f" message, its transaction {worker_wall * 1e3:6.1f} ms"
            )
        await store.close()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--users", type=int, default=2000)
    p.add_argument("--base", type=int, default=200_000, help="messages in the log before the measured epochs")
    p.add_argument("--rounds", type=int, default=4)
    args = p.parse_args()
    asyncio.run(main(args.users, args.base, args.rounds))
