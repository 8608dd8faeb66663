"""Rounds paced by the store: a dispatcher round that would write within the store's commit gap runs when the
gap ends, right before the commit, so that what arrives meanwhile (on any connection, in any tick) is one
round and one transaction; a quiet store runs a round in the next tick; a stuck PostgreSQL writer holds no
round up for longer than PACE_LIMIT_S. On both stores."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import make_user, online
from test_dispatch_rounds import conns

import glide.store.postgres.engine as pg_engine
import glide.store.sqlite.engine as sqlite_engine
from glide._native import Envelope, Outgoing, decode_json
from glide.dispatch import PACE_BELOW, Dispatcher
from glide.store.base import NewChat, Store
from glide.store.sqlite.engine import SqliteEngine

# A gap far longer than a few loop ticks take, even on a busy machine: what these tests submit within it is
# decided by the pacing, not by the scheduler's timing.
LONG_GAP_S = 1.0


def envelope(seq: int) -> Envelope:
    return decode_json(json.dumps({"action": "send", "seq": seq}).encode())  # type: ignore[return-value]


def set_gap(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """The stores' commit gap; PostgreSQL's limit on a paced round's wait beyond it (a stuck writer's)."""
    monkeypatch.setattr(sqlite_engine, "COMMIT_GAP_S", seconds)
    monkeypatch.setattr(sqlite_engine, "PACED_GAP_S", seconds)
    monkeypatch.setattr(pg_engine, "COMMIT_GAP_S", seconds)
    monkeypatch.setattr(pg_engine, "PACE_LIMIT_S", max(pg_engine.PACE_LIMIT_S, 2 * seconds))


async def users(store: Store, n: int) -> list[int]:
    return [
        (
            await store.users.create_user(
                account=f"pace{i}", email=None, nickname="", avatar="", password_hash="", guest=True
            )
        ).uid
        for i in range(n)
    ]


def chats_of(uids: list[int], items: list[tuple[Any, list[Envelope]]]) -> list[NewChat]:
    return [
        NewChat(1_000 + env.seq, f"p{env.seq}", conn.uid, uids[0], type=1, content="hi", send_at=1)
        for conn, envs in items
        for env in envs
    ]


async def ticks(n: int) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def test_what_arrives_within_the_gap_is_one_round_and_one_transaction(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_gap(monkeypatch, LONG_GAP_S)
    uids = await users(store, 3)  # a commit just now: the gap runs
    calls: list[list[tuple[int, list[int]]]] = []
    stored: list[int] = []

    async def many(items: list[tuple[Any, list[Envelope]]]) -> None:
        calls.append([(c.uid, [e.seq for e in envs]) for c, envs in items])
        stored.extend(s.message.mid for s in await store.messages.store_chats(chats_of(uids, items)))

    async def one(conn: Any, envs: Any) -> None:
        raise AssertionError("the many handler serves uniform batches")

    d = Dispatcher()
    d.pace = store.pace
    d.register_batch("send", one, many=many)
    a, b = conns(2)
    a.uid, b.uid = uids[1], uids[2]
    committed = store.batches_committed  # type: ignore[attr-defined]
    d.submit(a, [envelope(1)])  # type: ignore[arg-type]
    await ticks(5)
    d.submit(b, [envelope(2)])  # type: ignore[arg-type]
    await ticks(5)
    d.submit(a, [envelope(3)])  # type: ignore[arg-type]  (a busy connection: it joins a's run, in order)
    assert calls == []  # nothing ran within the gap
    await d.join()
    assert calls == [[(uids[1], [1, 3]), (uids[2], [2])]]
    assert stored == [1_001, 1_003, 1_002]
    assert store.batches_committed == committed + 1  # type: ignore[attr-defined]


async def test_the_native_driver_keeps_events_while_a_round_waits(
    servers: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loop's thread is not woken for each frame while a round waits for the commit: the frames stay in
    the driver and the round takes them all first."""
    set_gap(monkeypatch, LONG_GAP_S)
    srv = await servers(driver="native")
    clients = [(await online(srv, f"held{i}"))[1] for i in range(3)]
    calls: list[list[int]] = []

    async def one(conn: Any, envs: Any) -> None:
        raise AssertionError("the many handler serves uniform batches")

    async def many(items: list[tuple[Any, list[Envelope]]]) -> None:
        calls.append([env.seq for _, envs in items for env in envs])
        for conn, envs in items:
            for env in envs:
                conn.send(Outgoing("pace.done", seq=env.seq))

    srv.dispatcher.register_batch("pace.send", one, many=many)
    submitted: list[int] = []
    submit = srv.dispatcher.submit

    def counted(conn: Any, messages: Any) -> None:
        submitted.append(len(messages))
        submit(conn, messages)

    monkeypatch.setattr(srv.dispatcher, "submit", counted)
    await make_user(srv, "commit")  # a commit just now: the gap runs
    await clients[0].send("pace.send", seq=11)
    for _ in range(500):  # its frame reaches the dispatcher; its round waits for the gap
        if submitted:
            break
        await asyncio.sleep(0.002)
    await clients[1].send("pace.send", seq=12)
    await clients[2].send("pace.send", seq=13)
    await asyncio.sleep(0.2)
    assert submitted == [1] and calls == []  # the two later frames wait in the driver
    for client, seq in zip(clients, (11, 12, 13), strict=True):
        assert (await client.expect("pace.done"))["seq"] == seq
    assert calls == [[11, 12, 13]]


async def test_a_quiet_store_runs_a_round_in_the_next_ticks(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    set_gap(monkeypatch, 0.0)
    await users(store, 1)
    await ticks(5)  # the writer is back waiting for work
    ran: list[int] = []
    store.pace(lambda: ran.append(1))
    await ticks(3)
    assert ran == [1]


async def test_a_round_paced_while_the_paced_rounds_run_is_not_lost(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_gap(monkeypatch, 0.05)
    await users(store, 1)
    ran: list[str] = []
    second = asyncio.get_running_loop().create_future()

    def first_round() -> None:
        ran.append("first")
        # Paced after the rounds of this commit were taken: it must run before the next one.
        store.pace(lambda: (ran.append("second"), second.set_result(None)))

    store.pace(first_round)
    await asyncio.wait_for(second, 5)
    assert ran == ["first", "second"]


async def test_a_stuck_writer_holds_no_round_for_long(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """PostgreSQL: the writer waits on a database that does not answer; a paced round runs anyway within
    PACE_LIMIT_S (it may need no write at all)."""
    from glide.store.postgres.store import PostgresStore

    set_gap(monkeypatch, LONG_GAP_S)
    monkeypatch.setattr(pg_engine, "PACE_LIMIT_S", 0.05)
    store = await PostgresStore.open(pg_url)
    try:
        release = asyncio.Event()

        async def stuck(conn: Any) -> None:
            await release.wait()

        writing = asyncio.ensure_future(store.engine.write(stuck))
        await ticks(5)
        ran = asyncio.get_running_loop().create_future()
        store.pace(lambda: ran.set_result(None))
        await asyncio.wait_for(ran, 5)
        assert not writing.done()
        release.set()
        await writing
    finally:
        await store.close()


async def test_a_round_that_only_defers_costs_no_transaction(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite: a rider (a step of the log's indexing) goes with the next write's transaction; a deferred write
    (acknowledgements' cursors) waits DEFERRED_S and then goes with whatever is written, or alone. A paced
    round that wrote nothing commits neither."""
    set_gap(monkeypatch, 0.05)
    monkeypatch.setattr(sqlite_engine, "DEFERRED_S", 30.0)
    engine = await SqliteEngine.open(tmp_path / "e.db", [lambda c: c.execute("CREATE TABLE t (a INTEGER)")])

    async def rows() -> list[int]:
        return await engine.read(lambda c: [r[0] for r in c.execute("SELECT a FROM t ORDER BY a")])

    try:
        await engine.write(lambda c: c.execute("INSERT INTO t VALUES (1)"))
        committed = engine.batches_committed
        engine.with_next("index", lambda c: c.execute("INSERT INTO t VALUES (2)"))
        engine.defer("cursor", lambda c: c.execute("INSERT INTO t VALUES (3)"))
        ran = asyncio.get_running_loop().create_future()
        assert engine.pace(lambda: ran.set_result(None))  # within the gap: it waits for the commit
        await asyncio.wait_for(ran, 5)
        await asyncio.sleep(0.1)
        assert engine.batches_committed == committed
        await engine.write(lambda c: c.execute("INSERT INTO t VALUES (4)"))
        assert engine.batches_committed == committed + 1
        assert await rows() == [1, 2, 4]  # the rider went with it, the deferred write waits
        engine.defer("cursor", lambda c: c.execute("INSERT INTO t VALUES (5)"))  # replaces the one waiting
        engine.with_next("index", lambda c: c.execute("INSERT INTO t VALUES (6)"))
        engine._flush_deferred()  # DEFERRED_S is over: nothing else is written, so a transaction of their own
        assert engine.batches_committed == committed + 2
        assert await rows() == [1, 2, 4, 5, 6]
        monkeypatch.setattr(sqlite_engine, "DEFERRED_S", 0.05)
        engine.defer("cursor", lambda c: c.execute("INSERT INTO t VALUES (7)"))
        for _ in range(250):  # and the timer does it on its own
            if engine.batches_committed == committed + 3:
                break
            await asyncio.sleep(0.02)
        assert await rows() == [1, 2, 4, 5, 6, 7]
    finally:
        await engine.close()


async def test_only_small_rounds_are_paced() -> None:
    """A loaded server's rounds are large anyway: after a round of PACE_BELOW connections or more, the next one
    runs in the next tick; after a small one, the store paces it again."""
    paced: list[int] = []
    calls: list[int] = []

    def pace(round_: Callable[[], None]) -> bool:
        paced.append(1)
        asyncio.get_running_loop().call_soon(round_)
        return True

    async def many(items: list[tuple[Any, list[Envelope]]]) -> None:
        calls.append(len(items))

    async def one(conn: Any, envs: Any) -> None:
        raise AssertionError("the many handler serves uniform batches")

    d = Dispatcher()
    d.pace = pace
    d.register_batch("send", one, many=many)
    cs = conns(PACE_BELOW + 1)
    for round_size in (PACE_BELOW, 1, 1):
        for c in cs[:round_size]:
            d.submit(c, [envelope(c.uid)])  # type: ignore[arg-type]
        await d.join()
    assert calls == [PACE_BELOW, 1, 1]
    assert paced == [1, 1]  # the first round and the third: the second followed a large one
