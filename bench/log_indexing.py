"""What indexing one epoch of SQLite's message log costs (glide.store.sqlite.message_log).

Fills a log with ``--base`` messages between ``--users`` users (indexed as it goes), then, per round, appends
one epoch of messages and indexes it as the server does: sorted by the background worker, then written step
by step, one transaction per step. Prints, per round, the loop thread's CPU per message of the whole epoch and
of its longest step (a step holds the event loop), and the worker's CPU per message for the sort:

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
        conn = store.engine._conn
        assert conn is not None
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

        async def sort() -> float:
            """The epoch's sort on the worker (as the store asks for it); the worker's thread CPU."""
            epoch = log.unsorted()
            assert epoch is not None
            job = message_log.sort_epoch(log.indexed, epoch.last)

            def timed(conn: sqlite3.Connection) -> tuple[list[int], float]:
                started = time.thread_time()
                return job(conn), time.thread_time() - started

            done: asyncio.Future[tuple[list[int], float]] = asyncio.get_running_loop().create_future()
            store.engine.background(timed, done.set_result)
            entries, took = await done
            store.engine.attach_scratch()
            epoch.ready(entries)
            return took

        async def index_epoch(conn: sqlite3.Connection) -> tuple[float, float, int, float]:
            total = longest = sorting = 0.0
            steps = 0
            more = True
            while more or log.epoch is not None:
                if log.epoch is not None and log.epoch.entries is None:
                    sorting = await sort()
                started = time.thread_time()
                conn.execute("BEGIN")
                more = log.index_slice(conn, now=True)
                conn.execute("COMMIT")
                took = time.thread_time() - started
                total, longest, steps = total + took, max(longest, took), steps + 1
            store.engine.detach_scratch()
            return total, longest, steps, sorting

        for _ in range(base // EPOCH):
            await append(EPOCH)
            await index_epoch(conn)
        for _ in range(rounds):
            await append(EPOCH)
            total, longest, steps, sorting = await index_epoch(conn)
            print(
                f"loop {total / EPOCH * 1e6:6.2f} µs per message, longest step {longest * 1e3:5.2f} ms, {steps} steps;"
                f" worker {sorting / EPOCH * 1e6:5.2f} µs per message"
            )
        await store.close()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--users", type=int, default=2000)
    p.add_argument("--base", type=int, default=200_000, help="messages in the log before the measured epochs")
    p.add_argument("--rounds", type=int, default=4)
    args = p.parse_args()
    asyncio.run(main(args.users, args.base, args.rounds))
