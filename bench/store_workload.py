"""The message path of the store alone: what one fully acknowledged 1:1 message costs it, by batch size.

One round stores a batch of B messages (``store_chats``: random senders among 200 users (``--users``), each
writing to its one peer, fresh cliMids, as in GlideIM's case 1) and then acknowledges all of them
(``ack_inboxes``, one request per receiver), which is what the server does for B messages that arrive in one
loop tick. The figures are the
process's CPU time per message (every thread: the event loop and the store's writer), the wall time per
message (which adds the waits between the threads) and, on a PostgreSQL running on this machine, the CPU of
the server's processes serving the store's connections (``server_cpu_us``: what a statement costs the server
is no less a cost than what sending it costs glide).

It uses nothing but the store API that every glide version has, so the same workload measures an older
source tree too (``bench/store_compare.py`` runs it on two trees side by side):

    python bench/store_workload.py --batch 16 --rounds 200          # the glide on sys.path
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

USERS = 200


# A workload's rounds: given the open store, it returns ``next_round``, which makes one round's input (not
# measured) and returns the round itself (measured).
Round = Callable[[], Awaitable[object]]
Setup = Callable[[Any], Awaitable[Callable[[], Round]]]


async def measure(batch: int, rounds: int, *, store_url: str = "", seed: int = 7, users: int = USERS) -> dict[str, Any]:
    """Open a fresh store (SQLite in a temporary directory, or ``store_url``), warm up, run ``rounds`` rounds;
    the median and quartiles of µs per message over rounds."""
    from glide.store import NewChat

    rng = random.Random(seed)

    async def setup(store: Any) -> Callable[[], Round]:
        peers = {u: (u + rng.randrange(1, users)) % users + 1 for u in range(1, users + 1)}
        mids = iter(range(1_000_001, 1 << 62))

        def next_round() -> Round:
            chats = []
            for mid in (next(mids) for _ in range(batch)):
                sender = rng.randint(1, users)
                chats.append(NewChat(mid, f"c{mid}", sender, peers[sender], 1, "hello, lunch at noon?", 0))
            by_receiver: dict[int, list[int]] = {}
            for c in chats:
                by_receiver.setdefault(c.receiver, []).append(c.mid)

            async def store_and_acknowledge() -> None:
                await store.messages.store_chats(chats)
                await store.messages.ack_inboxes(list(by_receiver.items()))

            return store_and_acknowledge

        return next_round

    return await measure_rounds(store_url, batch, rounds, setup)


async def measure_rounds(store_url: str, batch: int, rounds: int, setup: Setup) -> dict[str, Any]:
    """Open a fresh store (SQLite in a temporary directory, or ``store_url``), set the workload up, warm up, run
    ``rounds`` rounds of ``batch`` messages; see :func:`summary`."""
    from glide.store import SqliteStore as Sqlite

    with tempfile.TemporaryDirectory(prefix="glide-store-bench-") as tmp:
        if store_url:
            from glide.store.postgres import PostgresStore

            store: Any = await PostgresStore.open(store_url)
        else:
            store = await Sqlite.open(Path(tmp) / "bench.db")
        try:
            next_round = await setup(store)
            cpu: list[float] = []
            wall: list[float] = []
            warmup = max(3, rounds // 10)
            server_before: dict[int, float] = {}
            for i in range(rounds + warmup):  # the first rounds warm caches up, unmeasured
                if i == warmup and store_url:
                    server_before = await backends_cpu(store)
                one_round = next_round()
                start, start_cpu = time.perf_counter(), time.process_time()
                await one_round()
                if i >= warmup:
                    cpu.append((time.process_time() - start_cpu) / batch * 1e6)
                    wall.append((time.perf_counter() - start) / batch * 1e6)
            server_cpu_us = await server_cpu_per_message(store, server_before, rounds * batch) if store_url else None
        finally:
            await store.close()
    return summary(batch, rounds, cpu, wall, server_cpu_us)


def summary(
    batch: int, rounds: int, cpu: list[float], wall: list[float], server_cpu_us: float | None
) -> dict[str, Any]:
    """A workload's line of JSON from its rounds' µs per message."""
    return {
        "batch": batch,
        "rounds": rounds,
        # process_time ticks coarsely for one round: the CPU figure is the total over all rounds
        "cpu_us": sum(cpu) / len(cpu),
        "wall_median_us": statistics.median(wall),
        "server_cpu_us": server_cpu_us,
    }


async def server_cpu_per_message(store: Any, before: dict[int, float], messages: int) -> float | None:
    """PostgreSQL's CPU per message serving ``store`` since ``before`` (:func:`backends_cpu`); None when it
    runs on another machine."""
    after = await backends_cpu(store)
    if not after:
        return None
    return sum(t - before.get(pid, 0.0) for pid, t in after.items()) / messages * 1e6


async def backends_cpu(store: Any) -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL backend serving ``store`` (its database, application "glide"),
    read from /proc: empty when the server is not on this machine."""
    rows = await store.engine.fetch(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'glide'"
    )
    ticks = os.sysconf("SC_CLK_TCK")
    cpu: dict[int, float] = {}
    for (pid,) in rows:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return {}
        cpu[pid] = (int(fields[11]) + int(fields[12])) / ticks
    return cpu


def workload_main(measure: Callable[..., Awaitable[dict[str, Any]]], doc: str | None, run: Any = asyncio.run) -> None:
    """The command line of a workload (``store_compare.py`` runs each so): one line of JSON on stdout."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--rounds", type=int, default=200)
    p.add_argument("--users", type=int, default=USERS, help=f"senders, each writing to one peer (default {USERS})")
    p.add_argument("--store", default="", help="a postgresql:// URL (default: SQLite in a temporary directory)")
    p.add_argument("--calls", action="store_true", help="message_path.py: count the calls per message as well")
    args = p.parse_args()
    counting = {"calls": True} if args.calls else {}
    result = run(measure(args.batch, args.rounds, store_url=args.store, users=args.users, **counting))
    json.dump(result, sys.stdout)
    print()


if __name__ == "__main__":
    workload_main(measure, __doc__)
