"""SQLite store: migrations, group commit, failure isolation, shutdown, query plans (the backend-neutral
user and token tests are in test_store_users.py)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from glide.config import Config
from glide.errors import ConfigError, StorageError
from glide.store import ChatMessage, NewChat, SqliteStore, open_store
from glide.store.message_checks import NO_ACKS
from glide.store.sqlite import engine as sqlite_engine
from glide.store.sqlite.messages import CHUNK, RECENT_CONTENT, RECENT_LIMIT, WriterState, padded_chunks
from glide.store.sqlite.schema import MIGRATIONS

EMPTY = ()


async def make_user(store: SqliteStore, account: str, email: str | None = None) -> int:
    user = await store.users.create_user(account=account, email=email, nickname=account, avatar="", password_hash="h")
    return user.uid


def schema_version(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT version FROM schema_version").fetchone()[0])
    finally:
        conn.close()


# opening and migrations


async def test_creates_database_and_directories(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "dir" / "glide.db"
    store = await SqliteStore.open(path)
    await store.close()
    assert schema_version(path) == len(MIGRATIONS)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


async def test_migrates_an_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.touch()
    store = await SqliteStore.open(path)
    assert await make_user(store, "a") == 1
    await store.close()
    assert schema_version(path) == len(MIGRATIONS)


async def test_migrates_an_older_database_keeping_its_data(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = await SqliteStore.open(path, migrations=MIGRATIONS[:1])  # a release with users only
    uid = await make_user(old, "alice", "alice@example.com")
    await old.close()
    assert schema_version(path) == 1
    store = await SqliteStore.open(path)
    try:
        assert schema_version(path) == len(MIGRATIONS)
        user = await store.users.user_by_login("ALICE@example.com")
        assert user is not None and user.uid == uid
        [stored] = await store.messages.store_chats([NewChat(10, "c", uid, 2, 1, "hi", 0)])
        assert not stored.duplicate
    finally:
        await store.close()


async def test_reopen_does_not_migrate_again(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    for _ in range(2):
        store = await SqliteStore.open(path)
        await make_user(store, f"u{time.monotonic_ns()}")
        await store.close()
    store = await SqliteStore.open(path)
    assert len(await store.users.users([1, 2])) == 2
    await store.close()


async def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    store = await SqliteStore.open(path)
    await store.close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE schema_version SET version = 99")
    conn.commit()
    conn.close()
    with pytest.raises(ConfigError, match="schema version 99 is newer"):
        await SqliteStore.open(path)


async def test_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not a database, just some text " * 200)
    with pytest.raises(ConfigError, match=r"junk\.db"):
        await SqliteStore.open(path)


async def test_open_store_from_config(tmp_path: Path) -> None:
    store = await open_store(Config(data_dir=str(tmp_path / "data")))
    await store.close()
    assert (tmp_path / "data" / "glide.db").exists()
    assert isinstance(await open_store(Config(store=f"sqlite:{tmp_path / 'x.db'}")), SqliteStore)


# the write path


async def test_group_commit_batches_concurrent_writes(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "g.db")
    try:
        before = store.batches_committed
        n = 300
        results = await asyncio.gather(
            *(store.messages.store_chats([NewChat(i + 1, f"c{i}", 1, 2, 1, f"m{i}", 0)]) for i in range(n))
        )
        assert [r[0].message.mid for r in results] == list(range(1, n + 1))
        batches = store.batches_committed - before
        assert 1 <= batches <= n // 10, batches  # many writers share few transactions (and fsyncs)
        assert len(await store.messages.inbox(2, limit=1000)) == n
    finally:
        await store.close()


async def test_a_failing_operation_fails_only_itself(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "g.db")
    engine = store.engine
    try:
        await store.messages.store_chats([NewChat(100, "x", 1, 2, 1, "first", 0)])
        # Hold the writer busy so the next three writes are queued into ONE batch.
        before = store.batches_committed
        hold = asyncio.ensure_future(engine.write(lambda conn: time.sleep(0.2)))
        await asyncio.sleep(0.05)
        good1 = store.messages.store_chats([NewChat(101, "a", 1, 2, 1, "ok", 0)])
        clash = store.messages.store_chats([NewChat(102, "b", 1, 2, 1, "ok", 0), NewChat(100, "c", 1, 2, 1, "", 0)])
        good2 = store.users.create_user(account="z", email=None, nickname="z", avatar="", password_hash="h")
        r1, r2, r3 = await asyncio.gather(good1, clash, good2, return_exceptions=True)
        await hold
        assert store.batches_committed - before == 2  # the holding batch, then all three together
        assert not isinstance(r1, BaseException) and not isinstance(r3, BaseException)
        assert isinstance(r2, StorageError) and "message id 100 is already used" in r2.message
        assert await store.messages.chat(101) is not None
        assert await store.messages.chat(102) is None  # the failed call left nothing behind
        assert [m.mid for m in await store.messages.inbox(2)] == [100, 101]
    finally:
        await store.close()


async def test_receivers_acknowledging_in_order_keep_no_empty_set_or_list(tmp_path: Path) -> None:
    """Memory per user: the writer caches each receiver's cursor; one with nothing acknowledged out of order and
    nothing pending shares the empty state (an empty set costs 216 bytes, an empty list 56), and a user who
    only reads its inbox has nothing cached."""
    store = await SqliteStore.open(tmp_path / "g.db")
    state = store.messages._state
    try:
        for receiver in range(100, 110):
            [stored] = await store.messages.store_chats([NewChat(receiver, "", 1, receiver, 1, "x", 0)])
            assert [m.mid for m in await store.messages.inbox(receiver)] == [receiver]
            assert await store.messages.ack_inbox(receiver, [stored.message.mid])
        assert await store.messages.inbox(200) == []  # a user with nothing at all, who only reads
        store.engine._flush_deferred()  # DEFERRED_S is over: the cursors are saved
        for uid in range(100, 110):
            assert state.cursors[uid].acked is NO_ACKS
            assert state.pending[uid] is EMPTY
        assert 200 not in state.cursors and 200 not in state.pending  # reading caches nothing
        first, second = await store.messages.store_chats(
            [NewChat(300, "", 1, 300, 1, "x", 0), NewChat(301, "", 1, 300, 1, "y", 0)]
        )
        assert await store.messages.ack_inbox(300, [301])  # out of order: a set of its own
        assert state.cursors[300].acked == {second.message.receiver_seq}
        assert state.pending[300] == [first.message.receiver_seq]
        assert await store.messages.ack_inbox(300, [300])
        store.engine._flush_deferred()
        assert await store.messages.inbox(300) == []
        assert state.cursors[300].acked is NO_ACKS and state.pending[300] is EMPTY
    finally:
        await store.close()


async def test_savepoints_only_after_a_failure(tmp_path: Path) -> None:
    """A batch whose operations all succeed is BEGIN, the operations, COMMIT; only a batch in which one failed
    runs again with a savepoint per operation (and commits once)."""
    store = await SqliteStore.open(tmp_path / "g.db")
    engine = store.engine
    statements: list[str] = []
    assert engine._conn is not None
    engine._conn.set_trace_callback(statements.append)

    def batch_of(*writes: Any) -> Any:
        hold = engine.write(lambda conn: time.sleep(0.05))  # queued first: the writes join its batch
        return asyncio.gather(hold, *writes, return_exceptions=True)

    try:
        await batch_of(*(store.messages.store_chats([NewChat(i, "", 1, 2, 1, "x", 0)]) for i in (1, 2, 3)))
        assert not [s for s in statements if "SAVEPOINT" in s.upper()]
        assert sum(s.upper() == "COMMIT" for s in statements) == 1
        statements.clear()
        results = await batch_of(
            store.messages.store_chats([NewChat(4, "", 1, 2, 1, "x", 0)]),
            store.messages.store_chats([NewChat(1, "", 1, 2, 1, "again", 0)]),  # mid 1 is taken
        )
        assert isinstance(results[2], StorageError) and not isinstance(results[1], BaseException)
        assert sum(s.upper().startswith("SAVEPOINT") for s in statements) == 3  # the second attempt, per op
        assert sum(s.upper() == "COMMIT" for s in statements) == 1
        assert [m.mid for m in await store.messages.inbox(2)] == [1, 2, 3, 4]
    finally:
        await store.close()


async def test_a_batch_rolled_back_by_sqlite_fails_as_a_whole(tmp_path: Path) -> None:
    """When SQLite itself aborts the transaction (disk full, I/O error), no write of the batch may claim success."""
    store = await SqliteStore.open(tmp_path / "g.db")
    engine = store.engine

    def sqlite_gave_up(conn: sqlite3.Connection) -> None:
        conn.execute("ROLLBACK")  # what SQLite does on SQLITE_FULL / SQLITE_IOERR
        raise sqlite3.OperationalError("database or disk is full")

    def buggy(conn: sqlite3.Connection) -> None:
        raise ValueError("a bug in an operation")

    try:
        hold = asyncio.ensure_future(engine.write(lambda conn: time.sleep(0.2)))
        await asyncio.sleep(0.05)
        good = store.messages.store_chats([NewChat(1, "a", 1, 2, 1, "x", 0)])
        results = await asyncio.gather(good, engine.write(sqlite_gave_up), return_exceptions=True)
        await hold
        assert all(isinstance(r, StorageError) for r in results), results
        assert "nothing of this batch was stored" in str(results[0])
        assert await store.messages.chat(1) is None
        # an ordinary exception fails only its own operation, and the writer keeps going
        results = await asyncio.gather(
            engine.write(buggy), store.messages.store_chats([NewChat(1, "a", 1, 2, 1, "x", 0)]), return_exceptions=True
        )
        assert isinstance(results[0], StorageError) and "a bug in an operation" in results[0].message
        assert await store.messages.chat(1) is not None
    finally:
        await store.close()


async def test_close_flushes_queued_writes(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    store = await SqliteStore.open(path)
    tasks = [
        asyncio.ensure_future(store.messages.store_chats([NewChat(i, "", 1, 2, 1, "x", 0)])) for i in range(1, 201)
    ]
    await asyncio.sleep(0)  # let every task enqueue its write
    await store.close()
    results = await asyncio.wait_for(asyncio.gather(*tasks), 5)  # every queued write completed, none failed
    assert [r[0].message.mid for r in results] == list(range(1, 201))
    with pytest.raises(StorageError, match="closed"):
        await store.messages.chat(1)
    with pytest.raises(StorageError, match="closed"):
        await store.messages.store_chats([NewChat(999, "", 1, 2, 1, "x", 0)])
    await store.close()  # idempotent
    reopened = await SqliteStore.open(path)
    assert await reopened.messages.last_mid() == 200
    await reopened.close()


async def test_acknowledgements_reach_the_file_soon_or_at_close(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    store = await SqliteStore.open(path)
    stored = await store.messages.store_chats([NewChat(i, "", 1, 2, 1, "x", 0) for i in range(1, 4)])
    assert [m.mid for m in await store.messages.ack_inbox(2, [1])] == [1]
    assert [m.mid for m in await store.messages.inbox(2)] == [2, 3]  # seen at once by this node
    before = store.batches_committed
    await asyncio.sleep(0.3)  # nothing else is written: the acknowledgement goes in on its own
    assert store.batches_committed == before + 1
    await store.messages.ack_inbox(2, [2])
    await store.close()  # an acknowledgement still waiting is written by close
    reopened = await SqliteStore.open(path)
    try:
        assert [m.mid for m in await reopened.messages.inbox(2)] == [stored[2].message.mid]
    finally:
        await reopened.close()


async def test_cancelled_caller_does_not_break_the_batch(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "g.db")
    try:
        task = asyncio.ensure_future(store.messages.store_chats([NewChat(1, "a", 1, 2, 1, "x", 0)]))
        await asyncio.sleep(0)
        task.cancel()
        [ok] = await store.messages.store_chats([NewChat(2, "a", 1, 2, 1, "x", 0)])
        # the cancelled write still happened (at-least-once): the retry is recognised as a duplicate
        assert ok.duplicate and ok.message.mid == 1
    finally:
        await store.close()


# the WAL


async def test_a_hold_queues_commits_until_released(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The checkpointer's hold (taken while it copies the WAL's last frames) delays commits, loses none: they
    go in at the release, at the hold's time limit, or at close."""
    monkeypatch.setattr(sqlite_engine, "HOLD_LIMIT_S", 3600.0)
    store = await SqliteStore.open(tmp_path / "h.db")
    engine = store.engine
    try:
        token = object()
        engine.hold(token)
        before = store.batches_committed
        write = asyncio.ensure_future(store.messages.store_chats([NewChat(1, "a", 1, 2, 1, "x", 0)]))
        await asyncio.sleep(0.05)
        assert not write.done() and store.batches_committed == before
        engine.release(object())  # not this hold's token: nothing happens
        await asyncio.sleep(0.01)
        assert not write.done()
        engine.release(token)
        [stored] = await asyncio.wait_for(write, 5)
        assert not stored.duplicate and store.batches_committed == before + 1
        engine.release(token)  # released twice: nothing happens

        monkeypatch.setattr(sqlite_engine, "HOLD_LIMIT_S", 0.01)  # nobody releases: the limit does
        engine.hold(object())
        [stored] = await asyncio.wait_for(store.messages.store_chats([NewChat(2, "b", 1, 2, 1, "x", 0)]), 5)
        assert stored.message.mid == 2

        monkeypatch.setattr(sqlite_engine, "HOLD_LIMIT_S", 3600.0)
        engine.hold(object())
        write = asyncio.ensure_future(store.messages.store_chats([NewChat(3, "c", 1, 2, 1, "x", 0)]))
        await asyncio.sleep(0)
    finally:
        await store.close()  # a hold does not keep queued writes out of the file
    [stored] = await asyncio.wait_for(write, 5)
    reopened = await SqliteStore.open(tmp_path / "h.db")
    try:
        assert [m.mid for m in await reopened.messages.inbox(2)] == [1, 2, 3]
    finally:
        await reopened.close()


async def test_the_wal_starts_over_while_writes_never_pause(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A commit every tick never leaves SQLite a moment when the whole WAL is copied back, so without the
    checkpointer's hold the WAL grows by every page written; with it the WAL starts over again and again,
    and its file stays near WAL_LIMIT_BYTES. Nothing written is lost or reordered."""
    monkeypatch.setattr(sqlite_engine, "CHECKPOINT_INTERVAL_S", 0.01)
    monkeypatch.setattr(sqlite_engine, "RESTART_FRAMES", 64)
    monkeypatch.setattr(sqlite_engine, "HOLD_FRAMES", 512)  # a copy that converges even on a slow disk
    monkeypatch.setattr(sqlite_engine, "WAL_LIMIT_BYTES", 256 << 10)
    path = tmp_path / "w.db"
    wal = path.with_name("w.db-wal")
    store = await SqliteStore.open(path)
    checkpointer = store.engine._checkpointer
    content = "x" * 3000  # about a page per message
    mid = 0
    largest = 0
    try:
        while checkpointer.restarts < 5 or mid < 12_000:
            assert mid < 200_000, f"the WAL started over {checkpointer.restarts} times in {mid} messages"
            batch = [NewChat(mid + i + 1, "", 1, 2, 1, content, 0) for i in range(4)]
            mid += len(batch)
            await store.messages.store_chats(batch)  # one commit each, with no pause between them
            largest = max(largest, wal.stat().st_size)
        size, restarts = store.wal_stats()  # what /metrics reports (the checkpointer may count on meanwhile)
        assert size == wal.stat().st_size and 5 <= restarts <= checkpointer.restarts
    finally:
        await store.close()
    written = mid * len(content)  # >= 36 MB: the WAL without restarts was 2.5 times that
    assert largest < 8 << 20, (largest, written)
    reopened = await SqliteStore.open(path)
    try:
        assert reopened.engine._conn is not None
        assert reopened.engine._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert await reopened.messages.last_mid() == mid
        page = await reopened.messages.inbox(2, limit=500)
        assert [m.mid for m in page] == list(range(1, 501))
    finally:
        await reopened.close()


def test_padded_chunks_come_in_a_few_lengths_and_keep_every_item() -> None:
    lengths: set[int] = set()
    for n in range(1, 3 * CHUNK + 7):
        items = list(range(n))
        got = list(padded_chunks(items))
        kept: list[int] = []
        for chunk in got:
            own = list(dict.fromkeys(chunk))
            assert chunk == own + [own[-1]] * (len(chunk) - len(own))  # padded with its last item only
            kept += own
        assert kept == items
        lengths.update(len(c) for c in got)
    assert lengths == {1 << k for k in range(CHUNK.bit_length()) if 1 << k < CHUNK} | {CHUNK}


def test_remembered_messages_stay_few_and_small() -> None:
    """What the writer keeps of the messages it stored, for their acknowledgements, is bounded in count and size."""
    state = WriterState()
    for mid in range(1, 3 * RECENT_LIMIT):
        state.stored([ChatMessage(mid, "", 1, 2, 1, "x", 0, 0, 0, None, mid, mid)])
        assert len(state.recent) <= RECENT_LIMIT
    assert max(state.recent) == 3 * RECENT_LIMIT - 1  # the newest stay
    state.stored([ChatMessage(10**9, "", 1, 2, 1, "x" * (RECENT_CONTENT + 1), 0, 0, 0, None, 1, 1)])
    assert 10**9 not in state.recent
