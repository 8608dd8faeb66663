"""Rounds paced by the store: a dispatcher round that would write within the store's commit gap runs when the
gap ends, right before the commit, so that what arrives meanwhile (on any connection, in any tick) is one
round and one transaction; a quiet store runs a round in the next tick; a stuck PostgreSQL writer holds no
round up for longer than PACE_LIMIT_S. On both stores."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from test_dispatch_rounds import conns

import glide.store.postgres.engine as pg_engine
import glide.store.sqlite.engine as sqlite_engine
from glide._native import Envelope, decode_json
from glide.dispatch import Dispatcher
from glide.store.base import NewChat, Store

# A gap far longer than a few loop ticks take, even on a busy machine: what these tests submit within it is
# decided by the pacing, not by the scheduler's timing.
LONG_GAP_S = 1.0


def envelope(seq: int) -> Envelope:
    return decode_json(json.dumps({"action": "send", "seq": seq}).encode())  # type: ignore[return-value]


def set_gap(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    monkeypatch.setattr(sqlite_engine, "COMMIT_GAP_S", seconds)
    monkeypatch.setattr(pg_engine, "COMMIT_GAP_S", seconds)


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
