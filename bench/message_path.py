"""The message path without sockets: what one fully acknowledged 1:1 message costs the event loop's thread,
from the envelopes a driver hands over to the frames it is handed back, by messages per tick.

A real ``glide.Server`` (SQLite in a temporary directory, or ``--store``) runs on this loop with its HTTP API
off; its dispatcher is given in-memory connections in place of sockets, logged in as ``--users`` guest users,
each writing to one peer. One round, 3 ms after the last, is what the server does for B messages that
arrive in one loop tick (B = ``--batch``): B ``message.chat`` envelopes decoded from the bytes a client sends
(``decode_json``) and submitted at once; the senders' ``ack.message`` and the receivers' pushes; the
receivers' ``ack.request`` envelopes, submitted at once; the senders' ``ack.notify``. Every frame handed to a
connection is encoded (``Outgoing.frame``), as a driver would. The figure is the thread CPU time of all
measured rounds per message: dispatch, validation, the store's transactions, delivery and encoding, without
the kernel's socket work or a load generator. On a shared machine it still moves by ±15 % between runs of
one build (compare medians of alternating runs); ``--calls`` counts the Python and C calls per message,
which are exact. What the harness itself adds (building request bytes, counting frames) is in it, the same
for every tree.

It uses only what every glide version since the message log has (``Server``, ``Dispatcher.submit``, the
``Conn`` attributes, ``on_message``), so ``bench/store_compare.py --workload message_path.py`` runs it on an
older tree beside this one:

    python bench/message_path.py --batch 16 --rounds 200           # the glide on sys.path
"""

from __future__ import annotations

import asyncio
import gc
import random
import statistics
import sys
import tempfile
import time
from typing import Any

from store_workload import USERS, workload_main

PAUSE_S = 0.004  # between rounds (unmeasured): more than the SQLite engine's paced gap of 2 ms


class MemoryConn:
    """A logged-in client without a socket: what handlers send is encoded and counted."""

    _next_id = 0

    def __init__(self, uid: int, counts: dict[str, int], woken: list[Any]) -> None:
        MemoryConn._next_id += 1
        self.id = MemoryConn._next_id
        self.uid = uid
        self.device = "bench"
        self.device_name = ""
        self.peer = ""
        self.wire = 0
        self.authenticated = True
        self.closed = False
        self.syncing = False
        self.held: Any = None
        self.busy = False
        self.pending: Any = ()
        self.inbox_replayed = 0
        self.seen: Any = None
        self.reading_paused = False
        self.ticket_secret: str | None = None
        self.send_bucket: Any = None
        self._counts = counts
        self._woken = woken

    def send(self, out: Any) -> None:
        out.frame(self.wire)
        action = out.action
        self._counts[action] = self._counts.get(action, 0) + 1
        waiter = self._woken[0]
        if waiter is not None and not waiter.done() and self._counts.get(waiter.action, 0) >= waiter.until:
            waiter.set_result(None)

    def close(self, code: int = 1000, reason: str = "") -> None:
        self.closed = True

    async def drained(self) -> None:
        return None

    def pause_reading(self) -> None:
        self.reading_paused = True

    def resume_reading(self) -> None:
        self.reading_paused = False


async def measure(
    batch: int, rounds: int, *, store_url: str = "", seed: int = 7, users: int = USERS, calls: bool = False
) -> dict[str, Any]:
    """Start a server, log the users in, warm up, run ``rounds`` rounds; CPU µs per message over all rounds
    and the median wall time per message over rounds. ``calls``: also count the Python functions and the C
    functions called from Python per message (exact, the same in every run, unlike the times; counting
    slows the rounds, so the times of such a run mean nothing)."""
    from glide import Config, Server
    from glide._native import decode_json
    from glide.cli import tune_gc

    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="glide-path-bench-") as tmp:
        config = Config(ws_port=0, http_port=0, data_dir=tmp, store=store_url, driver="asyncio")
        server = Server(config)
        threshold = gc.get_threshold()
        await server.start(serve_http=False)
        try:
            assert server.ctx is not None
            store = server.ctx.store
            uids = []
            for i in range(users):
                user = await store.users.create_user(
                    account=f"bench{i}", email=None, nickname="", avatar="", password_hash="", guest=True
                )
                uids.append(user.uid)
            counts: dict[str, int] = {}
            woken: list[Any] = [None]
            conns = {uid: MemoryConn(uid, counts, woken) for uid in uids}
            for conn in conns.values():
                server.gateway.hub.bind(conn)  # type: ignore[arg-type]
            peers = {u: uids[(i + rng.randrange(1, users)) % users] for i, u in enumerate(uids)}
            mids: list[tuple[int, int]] = []  # (receiver, mid) of each message stored, in order
            server.on_message(lambda conn, m: mids.append((m.receiver, m.mid)))
            loop = asyncio.get_running_loop()
            tune_gc()  # the collector's settings of `glide serve` (undone below: a test may call this)

            async def until(action: str, total: int) -> None:
                if counts.get(action, 0) >= total:
                    return
                waiter: Any = loop.create_future()
                waiter.action, waiter.until = action, total
                woken[0] = waiter
                await waiter

            events: dict[str, int] = {"call": 0, "c_call": 0}

            def counted(frame: Any, event: str, arg: Any) -> None:
                if event in events:
                    events[event] += 1

            sent = 0
            cpu = 0.0
            wall: list[float] = []
            warmup = max(3, rounds // 10)
            for i in range(rounds + warmup):  # the first rounds warm caches up, unmeasured
                senders = [rng.choice(uids) for _ in range(batch)]
                frames = []
                for sender in senders:
                    sent += 1
                    frames.append(
                        (
                            conns[sender],
                            b'{"action":"message.chat","seq":%d,"to":"%d","data":{"cliMid":"c%d",'
                            b'"content":"hello, lunch at noon?","type":1,"sendAt":1690000000123}}'
                            % (sent, peers[sender], sent),
                        )
                    )
                # Rounds start apart, as a load's ticks do: a round that began within the store's commit gap of
                # the last commit would wait for it, and runs would fall into one phase or the other by chance.
                await asyncio.sleep(PAUSE_S)
                start, start_cpu = time.perf_counter(), time.thread_time()
                if calls and i >= warmup:
                    sys.setprofile(counted)
                del mids[:]
                for conn, frame in frames:
                    server.dispatcher.submit(conn, [decode_json(frame)])  # type: ignore[arg-type]
                await until("ack.message", sent)
                await until("message.chat", sent)
                for receiver, mid in list(mids):
                    ack = b'{"action":"ack.request","seq":0,"data":{"mid":%d,"from":"%d"}}' % (mid, receiver)
                    server.dispatcher.submit(conns[receiver], [decode_json(ack)])  # type: ignore[arg-type]
                await until("ack.notify", sent)
                sys.setprofile(None)
                if i >= warmup:
                    cpu += time.thread_time() - start_cpu
                    wall.append((time.perf_counter() - start) / batch * 1e6)
            assert counts.get("notify.error", 0) == 0, counts
        finally:
            gc.unfreeze()
            gc.set_threshold(*threshold)
            await server.stop()
    result = {
        "batch": batch,
        "rounds": rounds,
        "cpu_us": cpu / (rounds * batch) * 1e6,
        "wall_median_us": statistics.median(wall),
    }
    if calls:
        result["python_calls"] = events["call"] / (rounds * batch)
        result["c_calls"] = events["c_call"] / (rounds * batch)
    return result


if __name__ == "__main__":
    run: Any = asyncio.run
    try:
        import uvloop  # the loop `glide serve` runs on

        run = uvloop.run
    except ImportError:  # pragma: no cover - uvloop is a dependency where it builds
        pass
    workload_main(measure, __doc__, run)
