"""SQLite's message log (glide.store.sqlite.message_log): rows appended at once, index entries written later
in sorted bulk by the background worker, into the index database. Reads answer the same whether a message is
in the unindexed tail, in an epoch under way, or indexed; a restart picks an interrupted epoch up again; a
recall moves a message in every state; the loop never waits for the worker."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from glide._native import KeyFilter
from glide.store import NewChat, SqliteStore
from glide.store.base import ChatMessage
from glide.store.sqlite import background, message_log, message_tail
from glide.store.sqlite import engine as sqlite_engine
from glide.store.sqlite import messages as sqlite_messages
from glide.store.sqlite.message_log import Epoch
from glide.store.sqlite.message_tail import Moved

ALICE, BOB, CAROL = 1, 2, 3


def chat(mid: int, sender: int = ALICE, receiver: int = BOB) -> NewChat:
    return NewChat(mid, f"c{mid}", sender, receiver, 1, f"m{mid}", 0)


async def snapshot(store: SqliteStore) -> tuple[object, ...]:
    """Everything the reads of a few users answer."""
    msgs = store.messages
    convs = store.conversations
    return (
        [m.mid for m in await msgs.inbox(BOB)],
        [m.mid for m in await msgs.inbox(ALICE)],
        [(m.mid, m.status) for m in await msgs.history(ALICE, BOB, limit=100)],
        [(e.seq, e.message.mid, e.message.status) for e in (await convs.timeline(ALICE, limit=500)).entries],
        [(e.seq, e.message.mid) for e in (await convs.timeline(BOB, limit=500)).entries],
        await convs.timeline_head(BOB),
        [(c.peer, c.last_mid, c.unread) for c in await convs.recent(BOB)],
        (await msgs.chat_by_cli_mid(ALICE, "c3") or ChatMessage(0, "", 0, 0, 0, "", 0, 0, 0, None)).mid,
    )


async def index_all(store: SqliteStore) -> None:
    """Index the whole tail now, the store's own way (an epoch written by the background worker), and wait."""
    log = store.messages.log
    conn = store.engine._conn
    assert conn is not None
    log.load(conn)
    store.messages._index(now=True)
    while log.epoch is not None:
        await asyncio.sleep(0.002)


async def written_by_worker(store: SqliteStore, epoch: Epoch) -> None:
    """The background worker writes ``epoch``; its answer is not handed to the log (as if the process ended
    right after, or as if it were still on its way)."""
    done: asyncio.Future[object] = asyncio.get_running_loop().create_future()
    store.engine.background(store.messages.log.job(epoch), done.set_result)
    assert await done is None


def moved_rows(store: SqliteStore) -> list[int]:
    conn = store.engine._conn
    assert conn is not None
    return [r[0] for r in conn.execute("SELECT pos FROM chat_moved ORDER BY pos")]


async def fill(store: SqliteStore) -> None:
    await store.messages.store_chats([chat(i) for i in range(1, 8)])
    await store.messages.store_chats([chat(8, BOB, ALICE), chat(9, CAROL, BOB), chat(10, ALICE, ALICE)])
    await store.messages.ack_inbox(BOB, [2, 5])


async def test_the_tail_and_the_index_answer_alike(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(message_log, "EPOCH_AGE_S", 3600.0)  # nothing is indexed unless asked to
    store = await SqliteStore.open(tmp_path / "a.db")
    try:
        await fill(store)
        log = store.messages.log
        assert len(log.tail.positions()) == 10 and log.indexed == 0
        in_tail = await snapshot(store)
        await index_all(store)
        assert log.tail.positions() == [] and log.indexed == 10
        assert await snapshot(store) == in_tail
        # a duplicate of an indexed message is found there; a new one joins a fresh tail
        dup, new = await store.messages.store_chats([chat(3), chat(11)])
        assert dup.duplicate and dup.message.mid == 3 and not new.duplicate and log.tail.positions() == [11]
    finally:
        await store.close()


@pytest.mark.parametrize("end", ["before the job", "after the job"])
async def test_an_interrupted_epoch_is_taken_up_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, end: str
) -> None:
    """The process ends while an epoch is under way: before the worker's transaction (nothing of it is in the
    index database) or after it (all of it is, but the loop never heard). Either way the reads answer the same
    after a restart, and the rows above what the file says is indexed are indexed again."""
    monkeypatch.setattr(message_log, "EPOCH_AGE_S", 3600.0)
    path = tmp_path / "a.db"
    store = await SqliteStore.open(path)
    await fill(store)
    expected = await snapshot(store)
    log = store.messages.log
    epoch = log.start(now=True)
    assert epoch is not None and log.tail.positions() == list(range(1, 11))
    if end == "after the job":
        await written_by_worker(store, epoch)
    assert await snapshot(store) == expected  # read from the tail either way
    store.messages.log.epoch = None  # the process ends here: what is in the files stays
    await store.close()
    reopened = await SqliteStore.open(path)
    try:
        assert len(reopened.messages.log.tail.positions()) == 0  # loaded on first use
        assert await snapshot(reopened) == expected
        assert len(reopened.messages.log.tail.positions()) == (10 if end == "before the job" else 0)
        await index_all(reopened)
        assert reopened.messages.log.indexed == 10 and await snapshot(reopened) == expected
    finally:
        await reopened.close()


def written(conn: object, table: str, mid: int, seq: int | None = None) -> bool:
    """Whether message ``mid`` has an entry in index ``table`` (at position ``seq`` of a user's log)."""
    sql = f"SELECT count(*) FROM {table} t JOIN chat_messages m ON m.pos = t.pos WHERE m.mid = ?"
    if seq is not None:
        sql += " AND t.seq = ?"
    return bool(conn.execute(sql, (mid,) if seq is None else (mid, seq)).fetchone()[0])  # type: ignore[attr-defined]


@pytest.mark.parametrize("state", ["tail", "frozen", "written", "indexed"])
async def test_a_recall_moves_a_message_in_every_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, state: str
) -> None:
    """A recall gives messages 3 and 6 new positions in their users' logs while they are in the live tail, in
    an epoch the worker has yet to write (it then reads the new rows), in one it wrote from the old rows whose
    answer the loop has not had yet, or indexed. The reads answer the same in each, through the next epochs,
    and after a restart right after the recall (the old positions are kept in chat_moved till an epoch removed
    their entries); no entry of an old position is left in the end."""
    monkeypatch.setattr(message_log, "EPOCH_AGE_S", 3600.0)
    path = tmp_path / "a.db"
    store = await SqliteStore.open(path)
    try:
        await fill(store)
        log = store.messages.log
        conn = store.engine._conn
        assert conn is not None
        epoch = None
        if state == "indexed":
            await index_all(store)
        elif state != "tail":
            epoch = log.start(now=True)
            assert epoch is not None
            if state == "written":
                await written_by_worker(store, epoch)
                assert written(conn, "chat_by_receiver", 3, 3) and log.indexed == 0
        for mid in (3, 6):
            await store.messages.recall(mid, ALICE, not_before_ms=0)
        before = await snapshot(store)
        timeline = before[3]
        assert [mid for _, mid, _ in timeline][-2:] == [3, 6]  # moved to the end of alice's log
        assert [(mid, status) for _, mid, status in timeline if mid in (3, 6)] == [(3, 1), (6, 1)]
        assert len({seq for seq, _, _ in timeline}) == len(timeline) == 9  # 9 is carol's to bob
        assert moved_rows(store) == ([] if state == "tail" else [3, 6])
        if epoch is not None:  # the worker's answer comes
            if state == "frozen":
                await written_by_worker(store, epoch)
            store.messages._written(epoch, None)
            assert log.epoch is None and log.indexed == 10
            assert await snapshot(store) == before
    finally:
        await store.close()
    store = await SqliteStore.open(path)  # a restart before any other epoch
    try:
        conn = store.engine._conn
        assert conn is not None
        assert await snapshot(store) == before
        await index_all(store)
        assert await snapshot(store) == before
        await store.messages.store_chats([chat(20, CAROL, ALICE)])  # a transaction: the riders go with it
        assert moved_rows(store) == []
        for mid, old_seq in ((3, 3), (6, 6)):  # alice's and bob's old positions
            assert not written(conn, "chat_by_sender", mid, old_seq)
            assert not written(conn, "chat_by_receiver", mid, old_seq)
            assert written(conn, "chat_by_sender", mid) and written(conn, "chat_by_receiver", mid)
        await index_all(store)
        after = await snapshot(store)
        assert (after[0], after[2]) == (before[0], before[2])
    finally:
        await store.close()


async def test_a_rollback_while_the_worker_writes_drops_the_epoch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A transaction that fails while an epoch is under way makes the log forget what it held: it reads the
    files again, the worker's answer is ignored (what it wrote is entries of committed rows), and the next
    epoch indexes the rows above what the index database says."""
    monkeypatch.setattr(message_log, "EPOCH_AGE_S", 3600.0)
    store = await SqliteStore.open(tmp_path / "a.db")
    try:
        await fill(store)
        store.engine._flush_deferred()  # bob's acknowledgements reach the file (DEFERRED_S is over)
        expected = await snapshot(store)
        log = store.messages.log
        store.messages._index(now=True)
        epoch = log.epoch
        assert epoch is not None
        store.engine._rolled_back()  # as the engine does when a batch fails
        assert log.epoch is None and not log.loaded
        assert await snapshot(store) == expected
        for _ in range(100):  # the worker's answer comes, and is dropped
            await asyncio.sleep(0.01)
        assert log.epoch is None and log.indexed in (0, 10) and await snapshot(store) == expected
        await index_all(store)
        assert log.indexed == 10 and log.tail.positions() == []
        assert await snapshot(store) == expected
    finally:
        await store.close()


@pytest.fixture
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    """A tail is indexed as soon as written (the riders go in every tick, not DEFERRED_S later)."""
    monkeypatch.setattr(message_log, "EPOCH_AGE_S", 0.0)
    monkeypatch.setattr(sqlite_engine, "DEFERRED_S", 0.0)


def parties(mid: int) -> tuple[int, int]:
    """Sender and receiver of message ``mid`` in ``written_all``: users 1-3 to users 1-4."""
    return 1 + mid % 3, 1 + mid % 4


async def written_all(store: SqliteStore, chats: int) -> None:
    """Messages sent until ``chats`` are stored, ten per transaction, then until the log is indexed to its
    end."""
    for first in range(1, chats + 1, 10):
        await store.messages.store_chats([chat(mid, *parties(mid)) for mid in range(first, first + 10)])
    await indexed(store, chats)


async def indexed(store: SqliteStore, last: int) -> None:
    """Wait until the log is indexed up to ``last`` (an epoch starts after a write, once the one before is
    written; here also without one)."""
    log = store.messages.log
    for _ in range(1000):  # seconds at most
        if log.indexed >= last and log.epoch is None:
            return
        if log.epoch is None:
            store.messages._index(now=True)
        await asyncio.sleep(0.01)
    raise AssertionError(f"indexed up to {log.indexed} of {last}")


async def test_epochs_are_written_by_the_worker_into_the_index_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, quick: None
) -> None:
    """The store's own path: each epoch written by the background worker into the index database beside the
    database while the loop goes on, every read agreeing with the tail's; after a restart the index database
    is used as it is."""
    monkeypatch.setattr(message_log, "EPOCH_ROWS", 50)
    path = tmp_path / "a.db"
    store = await SqliteStore.open(path)
    try:
        await written_all(store, 400)
        assert path.with_name("a.db-indexes").stat().st_size > 0
        inbox = [m.mid for m in await store.messages.inbox(BOB, limit=500)]
        assert inbox == [mid for mid in range(1, 401) if parties(mid)[1] == BOB]
        assert [m.mid for m in await store.messages.history(ALICE, BOB, limit=500)] == [
            mid for mid in range(400, 0, -1) if set(parties(mid)) == {ALICE, BOB}
        ]
        dup, new = await store.messages.store_chats([chat(7, *parties(7)), chat(401)])
        assert dup.duplicate and dup.message.mid == 7 and not new.duplicate  # found in the index
        await indexed(store, 401)
    finally:
        await store.close()
    store = await SqliteStore.open(path)
    try:
        store.engine.prepare(store.messages.log.load)
        assert store.messages.log.indexed == 401 and store.messages.log.tail.positions() == []
        assert [m.mid for m in await store.messages.inbox(BOB, limit=500)] == [*inbox, 401]
    finally:
        await store.close()


async def test_an_epoch_that_fails_is_written_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, quick: None, caplog: pytest.LogCaptureFixture
) -> None:
    """The worker's transaction fails (a full disk, say): nothing of it is stored, the same epoch is written
    again a little later and every message gets indexed; until then they are read from the tail."""
    monkeypatch.setattr(message_log, "EPOCH_ROWS", 50)
    monkeypatch.setattr(sqlite_messages, "INDEX_RETRY_S", 0.05)
    failures = [sqlite3.OperationalError("disk I/O error")]
    real = message_log.index_epoch

    def failing_once(first: int, last: int, moved: dict[int, Moved]) -> Callable[[sqlite3.Connection], None]:
        job = real(first, last, moved)

        def run(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN")
            conn.execute(message_log.EPOCH_INDEXES[0].fill, (first, last))  # half of it, rolled back
            if failures:
                raise failures.pop()
            conn.execute("ROLLBACK")
            job(conn)

        return run

    monkeypatch.setattr(message_log, "index_epoch", failing_once)
    store = await SqliteStore.open(tmp_path / "a.db")
    try:
        await written_all(store, 200)
        assert not failures and "writing the log's index entries failed (tried again in 0.05 s)" in caplog.text
        assert [m.mid for m in await store.messages.inbox(BOB, limit=500)] == [
            mid for mid in range(1, 201) if parties(mid)[1] == BOB
        ]
        assert (await store.messages.chat_by_cli_mid(ALICE, "c3")) is not None
    finally:
        await store.close()


async def test_the_loop_never_waits_for_the_index_databases_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, quick: None
) -> None:
    """The loop's transactions begin deferred and only read the index database: while another connection holds
    its write lock for longer than the loop's busy timeout (as the worker does while it writes an epoch), the
    loop stores, acknowledges and reads on, every write succeeding (a transaction begun IMMEDIATE would lock
    every attached database and fail after 20 ms)."""
    monkeypatch.setattr(message_log, "EPOCH_ROWS", 30)
    path = tmp_path / "a.db"
    store = await SqliteStore.open(path)
    try:
        await written_all(store, 100)
        holding, release = threading.Event(), threading.Event()

        def hold_the_lock() -> None:
            conn = sqlite3.connect(path.with_name("a.db-indexes"), isolation_level=None)
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("UPDATE chat_indexed SET pos = pos")
            holding.set()
            release.wait(5)
            conn.execute("ROLLBACK")
            conn.close()

        holder = threading.Thread(target=hold_the_lock)
        holder.start()
        holding.wait(5)
        try:
            started = time.monotonic()
            mid = 100
            while time.monotonic() - started < 0.3:  # 15 times the loop's busy timeout
                batch = [chat(mid + i, *parties(mid + i)) for i in range(1, 11)]
                stored = await store.messages.store_chats(batch)
                assert [s.message.mid for s in stored] == [c.mid for c in batch]
                await store.messages.ack_inbox(BOB, [c.mid for c in batch])
                assert await store.messages.history(ALICE, BOB, limit=5)
                mid += 10
        finally:
            release.set()
            holder.join()
        await indexed(store, mid)
        got = [m.mid for m in await store.messages.inbox(CAROL, limit=500)]
        assert got == [m for m in range(1, mid + 1) if parties(m)[1] == CAROL][: len(got)] and len(got) > 100
        assert [m.mid for m in await store.messages.history(ALICE, BOB, limit=3)] == [
            m for m in range(mid, 0, -1) if set(parties(m)) == {ALICE, BOB}
        ][:3]
    finally:
        await store.close()


@pytest.mark.parametrize("how", ["removed", "another database's", "a restored copy"])
async def test_an_index_database_that_does_not_match_is_rebuilt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, quick: None, caplog: pytest.LogCaptureFixture, how: str
) -> None:
    """The index database is derived from the rows: removed, taken from another database or left newer than
    a database restored from an older copy, it is rebuilt from the rows when the store opens (or, when it holds
    nothing yet and the rows are few, they are read into the tail), and the reads answer as before."""
    monkeypatch.setattr(message_log, "EPOCH_ROWS", 50)
    path, other = tmp_path / "a.db", tmp_path / "b.db"
    store = await SqliteStore.open(path)
    try:
        await written_all(store, 100)
    finally:
        await store.close()
    if how == "a restored copy":
        copies = {p: p.read_bytes() for p in tmp_path.glob("a.db*") if not p.name.startswith("a.db-indexes")}
    store = await SqliteStore.open(path)
    try:
        await written_all(store, 200)
        expected = await snapshot(store)
    finally:
        await store.close()
    indexes = path.with_name("a.db-indexes")
    if how == "removed":
        indexes.unlink()
    elif how == "another database's":
        elsewhere = await SqliteStore.open(other)
        try:
            await elsewhere.messages.store_chats([chat(mid, 7, 8) for mid in range(1000, 1030)])  # other mids
            await index_all(elsewhere)
        finally:
            await elsewhere.close()
        indexes.write_bytes(other.with_name("b.db-indexes").read_bytes())
    else:
        for p, data in copies.items():
            p.write_bytes(data)
        expected = None
    store = await SqliteStore.open(path)
    try:
        log = store.messages.log
        store.engine.prepare(log.load)
        if how == "removed":
            assert log.indexed == 200 and log.tail.positions() == []  # built at once: more than an epoch's rows
        elif how == "another database's":
            assert "does not match the database: rebuilt" in caplog.text and log.indexed == 200
        else:
            assert "does not match the database: rebuilt" in caplog.text and log.indexed == 100
        if expected is not None:
            assert await snapshot(store) == expected
        assert [m.mid for m in await store.messages.inbox(CAROL, limit=500)] == [
            m for m in range(1, log.indexed + 1) if parties(m)[1] == CAROL
        ]
    finally:
        await store.close()


async def test_an_indexed_generation_is_freed_a_slice_per_loop_iteration(monkeypatch: pytest.MonkeyPatch) -> None:
    """Freeing an epoch's messages and views at once held the loop ~9 ms; they go a slice per iteration, and
    the tail answers from its live generation meanwhile."""
    monkeypatch.setattr(message_tail, "RELEASE_SLICE", 100)
    tail = message_tail.Tail(
        (mid, ChatMessage(mid, f"c{mid}", ALICE, BOB, 1, "x", 0, 0, 0, None, mid, mid)) for mid in range(1, 301)
    )
    tail.freeze()
    frozen = tail.frozen
    tail.live.add([(301, ChatMessage(301, "c301", ALICE, BOB, 1, "x", 0, 0, 0, None, 301, 301))])
    tail.indexed({})
    sizes = [len(frozen.rows) + len(frozen.by_key)]  # 300 + 300, and a view entry each per user and pair
    while frozen.rows:
        await asyncio.sleep(0)
        sizes.append(len(frozen.rows) + len(frozen.by_key))
    assert sizes[0] == 600 - 100 and len(sizes) == 7  # 606 entries, 100 per iteration
    assert not (frozen.by_key or frozen.by_pair or frozen.by_sender or frozen.by_receiver)
    assert [m.mid for m in tail.received(BOB)] == [301] and tail.keyed((ALICE, "c301")) is not None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a thread's own nice value is Linux's")
async def test_the_worker_runs_at_a_lower_priority(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, quick: None
) -> None:
    """The worker's jobs take hundreds of milliseconds of CPU at full load: its thread yields to the loop's."""
    monkeypatch.setattr(message_log, "EPOCH_ROWS", 20)
    store = await SqliteStore.open(tmp_path / "a.db")
    try:
        await written_all(store, 40)
        [worker] = [t for t in threading.enumerate() if t.name == "glide-sqlite-worker:a.db"]
        assert worker.native_id is not None
        assert os.getpriority(os.PRIO_PROCESS, worker.native_id) == background.WORKER_NICE > 0
        assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == 0  # the loop's is unchanged
    finally:
        await store.close()


# The key filter: a new (sender, cli_mid) costs no lookup in the index tables, and every key they hold is found.


def retry(mid: int, sender: int = ALICE, receiver: int = BOB) -> NewChat:
    """The client sends message ``mid`` again: the same cli_mid, given a new mid by the server."""
    return NewChat(1000 + mid, f"c{mid}", sender, receiver, 1, f"m{mid}", 0)


def index_lookups(store: SqliteStore) -> list[str]:
    """The statements the loop's connection runs against the (sender, cli_mid) index table, from now on."""
    statements: list[str] = []
    conn = store.engine._conn
    assert conn is not None
    conn.set_trace_callback(lambda sql: statements.append(sql) if "chat_by_cli_mid" in sql else None)
    return statements


async def test_a_new_message_costs_no_lookup_in_the_index_tables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, quick: None
) -> None:
    """Keys neither in the tail nor in the filter are new: no statement reads the index table for them; a
    repeat of an indexed message is still looked up there and answered as the duplicate it is."""
    path = tmp_path / "a.db"
    store = await SqliteStore.open(path)
    try:
        await written_all(store, 100)
        assert store.messages.log.tail.positions() == []
        lookups = index_lookups(store)
        stored = await store.messages.store_chats([chat(mid, *parties(mid)) for mid in range(101, 133)])
        assert not any(s.duplicate for s in stored) and lookups == []
        one = await store.messages.store_chats([chat(133, *parties(133))])
        assert not one[0].duplicate and lookups == []  # the one-key path too
        assert await store.messages.chat_by_cli_mid(ALICE, "nothing") is None and lookups == []
        old = await store.messages.store_chats([retry(4, *parties(4)), chat(134, *parties(134)), retry(7, *parties(7))])
        assert [(s.duplicate, s.message.mid) for s in old] == [(True, 4), (False, 134), (True, 7)]
        assert len(lookups) == 1  # the two indexed keys, in one statement
    finally:
        await store.close()
    reopened = await SqliteStore.open(path)  # the filter is read from the index tables when the store opens
    try:
        assert reopened.messages.log.keys is not None and len(reopened.messages.log.keys) >= 100
        again = await reopened.messages.store_chats([retry(mid, *parties(mid)) for mid in (1, 50, 100)] + [chat(200)])
        assert [(s.duplicate, s.message.mid) for s in again] == [(True, 1), (True, 50), (True, 100), (False, 200)]
    finally:
        await reopened.close()


@pytest.mark.parametrize("tail", ["appended", "read back after a restart"])
async def test_keys_indexed_after_the_filter_was_read_stay_found_across_a_rollback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tail: str
) -> None:
    """The filter is read once, when the store opens; what the index tables get later comes from the tail:
    messages appended since, or rows read back into the tail (the process ended before their epoch). A failed
    transaction then makes the log forget its tail and read the files again, where those messages are indexed
    now: each is still found as a duplicate, never stored twice."""
    monkeypatch.setattr(message_log, "EPOCH_AGE_S", 3600.0)
    path = tmp_path / "a.db"
    store = await SqliteStore.open(path)
    if tail == "read back after a restart":
        await store.messages.store_chats([chat(mid) for mid in range(1, 11)])
        await store.close()  # nothing indexed: the rows are read back into the tail
        store = await SqliteStore.open(path)
        assert store.messages.log.keys is not None and len(store.messages.log.keys) == 0
        await store.messages.store_chats([chat(11)])
    else:
        await store.messages.store_chats([chat(mid) for mid in range(1, 12)])
    try:
        log = store.messages.log
        await index_all(store)
        assert log.indexed == 11 and log.tail.positions() == []
        store.engine._rolled_back()  # as the engine does when a batch fails
        assert not log.loaded
        repeats = await store.messages.store_chats([retry(mid) for mid in range(1, 13)])
        assert [s.duplicate for s in repeats] == [True] * 11 + [False]
        assert [s.message.mid for s in repeats] == [*range(1, 12), 1012]
        conn = store.engine._conn
        assert conn is not None
        assert conn.execute("SELECT count(*) FROM chat_messages").fetchone()[0] == 12
    finally:
        await store.close()


def test_the_key_filter_refuses_what_is_not_a_key_and_never_loses_one() -> None:
    """The native filter: hostile input is a TypeError naming the shape (nothing added); every key added is
    answered, by the same object; text Python holds with lone surrogates is a key like any other."""
    keys = KeyFilter()
    bads: list[list[Any]] = [[1], [(1,)], [(1, 2)], [("1", "a")], [(2**63, "a")], [(1, b"a")], [(1, "a", 2)], [None]]
    for bad in bads:
        with pytest.raises(TypeError, match=r"\(sender: int, cli_mid: str\) tuple"):
            keys.add(bad)
        with pytest.raises(TypeError, match=r"\(sender: int, cli_mid: str\) tuple"):
            keys.maybe(bad)
    with pytest.raises(TypeError):
        keys.add(5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        keys.maybe(((1, "a"),))  # type: ignore[arg-type]
    assert len(keys) == 0 and keys.maybe([(1, "a")]) == []
    added = [(sender, f"{sender:x}-{i}") for i in range(5_000) for sender in (-(2**63), 0, 7, 2**63 - 1)]
    added += [(1, ""), (1, "\ud800"), (1, "\udfff\ud800"), (2, "é" * 1000)]
    keys.add(added)
    assert len(keys) == len(added)
    answered = keys.maybe(added)
    assert len(answered) == len(added) and all(a is b for a, b in zip(answered, added, strict=True))
    others = keys.maybe([(3, f"other-{i}") for i in range(10_000)])
    assert len(others) < 100  # ~0.1 % false positives: a lookup more, never a wrong answer
    assert keys.memory >= 2 * len(added)
