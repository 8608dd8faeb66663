"""SQLite's message log (glide.store.sqlite.message_log): rows appended at once, index entries written later
in sorted slices. Reads answer the same whether a message is in the unindexed tail, in an epoch cut in the
middle, or indexed; a restart picks an interrupted epoch up again; a recall moves a message in every state."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from glide.store import NewChat, SqliteStore
from glide.store.base import ChatMessage
from glide.store.sqlite import engine as sqlite_engine
from glide.store.sqlite import message_log
from glide.store.sqlite import messages as sqlite_messages
from glide.store.sqlite.background import scratch_attached
from glide.store.sqlite.message_log import MessageLog

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


async def index_all(log: MessageLog, store: SqliteStore) -> None:
    """Run the epoch to its end now: its sort, then its slices in one transaction."""
    conn = store.engine._conn
    assert conn is not None
    while True:
        conn.execute("BEGIN")
        more = log.index_slice(conn, now=True)
        conn.execute("COMMIT")
        if not more and not await sort(log, store):
            break
    store.engine.detach_scratch()


def start(log: MessageLog, conn: sqlite3.Connection) -> None:
    """The step that starts an epoch (it writes nothing: the epoch is sorted first)."""
    conn.execute("BEGIN")
    assert not log.index_slice(conn)
    conn.execute("COMMIT")
    assert log.epoch is not None and log.epoch.entries is None


async def sort(log: MessageLog, store: SqliteStore) -> bool:
    """The sort of the epoch just started, by the background worker, awaited (what the store asks for after the
    step's commit); False when there is none to sort."""
    epoch = log.unsorted()
    if epoch is None:
        return False
    done: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
    store.engine.background(message_log.sort_epoch(log.indexed, epoch.last), done.set_result)
    entries = await done
    store.engine.attach_scratch()
    epoch.ready(entries)
    return True


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
        await index_all(log, store)
        assert log.tail.positions() == [] and log.indexed == 10
        assert await snapshot(store) == in_tail
        # a duplicate of an indexed message is found there; a new one joins a fresh tail
        dup, new = await store.messages.store_chats([chat(3), chat(11)])
        assert dup.duplicate and dup.message.mid == 3 and not new.duplicate and log.tail.positions() == [11]
    finally:
        await store.close()


async def test_an_interrupted_epoch_is_taken_up_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(message_log, "EPOCH_AGE_S", 3600.0)
    monkeypatch.setattr(message_log, "SLICE", 2)
    path = tmp_path / "a.db"
    store = await SqliteStore.open(path)
    await fill(store)
    expected = await snapshot(store)
    log = store.messages.log
    conn = store.engine._conn
    assert conn is not None
    monkeypatch.setattr(message_log, "EPOCH_ROWS", 1)
    start(log, conn)
    assert await sort(log, store)
    conn.execute("BEGIN")
    assert log.index_slice(conn)  # two entries of the first index written, eight to go
    conn.execute("COMMIT")
    assert log.epoch is not None and log.indexed == 0
    monkeypatch.setattr(message_log, "EPOCH_ROWS", 10_000)
    store.messages.log.epoch = None  # the process ends here: what is in the file stays
    await store.close()
    reopened = await SqliteStore.open(path)
    try:
        assert len(reopened.messages.log.tail.positions()) == 0  # loaded on first use
        assert await snapshot(reopened) == expected  # half-written entries are ignored above `indexed`
        assert len(reopened.messages.log.tail.positions()) == 10
        await index_all(reopened.messages.log, reopened)  # and written again, over the first half
        assert await snapshot(reopened) == expected
    finally:
        await reopened.close()


def written(conn: object, table: str, mid: int) -> bool:
    """Whether message ``mid`` has its entry in index ``table``."""
    sql = f"SELECT count(*) FROM {table} t JOIN chat_messages m ON m.pos = t.pos WHERE m.mid = ?"
    return bool(conn.execute(sql, (mid,)).fetchone()[0])  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "state", ["tail", "unsorted", "chat_by_cli_mid", "chat_by_receiver", "chat_by_sender", "indexed"]
)
async def test_a_recall_moves_a_message_in_every_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, state: str
) -> None:
    """In an epoch, a recall may come before its sort (which then reads the new row), after it (its entries
    sorted from the old row: cli_mid), after its entry in an index was written (message 3) or while it waits to
    be (message 6)."""
    monkeypatch.setattr(message_log, "EPOCH_AGE_S", 3600.0)
    monkeypatch.setattr(message_log, "SLICE", 1)
    store = await SqliteStore.open(tmp_path / "a.db")
    try:
        await fill(store)
        log = store.messages.log
        conn = store.engine._conn
        assert conn is not None
        if state == "indexed":
            await index_all(log, store)
        elif state == "unsorted":
            monkeypatch.setattr(message_log, "EPOCH_ROWS", 1)
            start(log, conn)
        elif state != "tail":
            monkeypatch.setattr(message_log, "EPOCH_ROWS", 1)
            start(log, conn)
            assert await sort(log, store)
            conn.execute("BEGIN")
            while not written(conn, state, 3):
                assert log.index_slice(conn)
            conn.execute("COMMIT")
            assert log.epoch is not None and message_log.EPOCH_INDEXES[log.epoch.index].table == state
            assert not written(conn, state, 6)
        for mid in (3, 6):
            await store.messages.recall(mid, ALICE, not_before_ms=0)
        await asyncio.sleep(0)
        before = await snapshot(store)
        timeline = before[3]
        assert [mid for _, mid, _ in timeline][-2:] == [3, 6]  # moved to the end of alice's log
        assert [(mid, status) for _, mid, status in timeline if mid in (3, 6)] == [(3, 1), (6, 1)]
        assert len({seq for seq, _, _ in timeline}) == len(timeline) == 9  # 9 is carol's to bob
        await index_all(log, store)
        assert await snapshot(store) == before  # no old entry of a moved message was left in the index
    finally:
        await store.close()


async def test_a_step_rolled_back_starts_the_epoch_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A transaction that fails while an epoch is under way takes its step with it; the log forgets what it
    held, reads the file again and indexes the same rows from the start (sorted again)."""
    monkeypatch.setattr(message_log, "EPOCH_AGE_S", 3600.0)
    monkeypatch.setattr(message_log, "SLICE", 2)
    store = await SqliteStore.open(tmp_path / "a.db")
    try:
        await fill(store)
        store.engine._flush_deferred()  # bob's acknowledgements reach the file (DEFERRED_S is over)
        expected = await snapshot(store)
        log = store.messages.log
        conn = store.engine._conn
        assert conn is not None
        monkeypatch.setattr(message_log, "EPOCH_ROWS", 1)
        start(log, conn)
        assert await sort(log, store)
        conn.execute("BEGIN")
        for _ in range(6):  # cli_mid's entries written, some of the receivers'
            assert log.index_slice(conn)
        conn.execute("COMMIT")
        assert log.epoch is not None and log.epoch.index == 1
        conn.execute("BEGIN")
        assert log.index_slice(conn)
        conn.execute("ROLLBACK")
        store.engine._rolled_back()
        assert log.epoch is None and not log.loaded
        assert await snapshot(store) == expected
        await index_all(log, store)
        assert log.indexed == 10 and log.tail.positions() == []
        assert await snapshot(store) == expected
    finally:
        await store.close()


@pytest.fixture
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    """A tail is indexed as soon as written, a step in every tick (no waiting DEFERRED_S for a transaction)."""
    monkeypatch.setattr(message_log, "EPOCH_AGE_S", 0.0)
    monkeypatch.setattr(sqlite_engine, "DEFERRED_S", 0.0)


def parties(mid: int) -> tuple[int, int]:
    """Sender and receiver of message ``mid`` in ``written_all``: users 1-3 to users 1-4."""
    return 1 + mid % 3, 1 + mid % 4


async def written_all(store: SqliteStore, chats: int) -> None:
    """Messages sent until ``chats`` are stored, ten per transaction, then until the log is indexed to its
    end (each step rides a transaction, or waits DEFERRED_S for one)."""
    messages = store.messages
    for first in range(1, chats + 1, 10):
        await messages.store_chats([chat(mid, *parties(mid)) for mid in range(first, first + 10)])
    for _ in range(1000):  # seconds at most; each turn another step
        if messages.log.indexed >= chats and messages.log.epoch is None:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"indexed up to {messages.log.indexed} of {chats}")


async def test_epochs_are_sorted_off_the_loop_and_written_by_its_transactions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, quick: None
) -> None:
    """The store's own path: each epoch sorted by the background worker into the scratch file, written a slice
    per transaction, every read agreeing with the tail's; the scratch file is gone once the store is closed."""
    monkeypatch.setattr(message_log, "EPOCH_ROWS", 50)
    monkeypatch.setattr(message_log, "SLICE", 16)
    path = tmp_path / "a.db"
    store = await SqliteStore.open(path)
    try:
        await written_all(store, 400)
        assert path.with_name("a.db-scratch").exists()
        inbox = [m.mid for m in await store.messages.inbox(BOB, limit=500)]
        assert inbox == [mid for mid in range(1, 401) if parties(mid)[1] == BOB]
        assert [m.mid for m in await store.messages.history(ALICE, BOB, limit=500)] == [
            mid for mid in range(400, 0, -1) if set(parties(mid)) == {ALICE, BOB}
        ]
        dup, new = await store.messages.store_chats([chat(7, *parties(7)), chat(401)])
        assert dup.duplicate and dup.message.mid == 7 and not new.duplicate  # found in the index
    finally:
        await store.close()
    assert not path.with_name("a.db-scratch").exists()


@pytest.mark.parametrize("where", ["the sort", "attaching", "detaching"])
async def test_a_sort_that_fails_is_asked_for_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, quick: None, caplog: pytest.LogCaptureFixture, where: str
) -> None:
    """Whatever fails on the way (the worker's job, attaching its file, detaching it), the epoch is sorted again
    a little later and every message gets indexed; until then they are read from the tail."""
    monkeypatch.setattr(message_log, "EPOCH_ROWS", 50)
    monkeypatch.setattr(sqlite_messages, "SORT_RETRY_S", 0.05)
    failures = [sqlite3.OperationalError("disk I/O error")]

    def fail_once() -> None:
        if failures:
            raise failures.pop()

    if where == "the sort":

        def failing_once(first: int, last: int) -> Callable[[sqlite3.Connection], list[int]]:
            job = message_log.sort_epoch(first, last)

            def run(conn: sqlite3.Connection) -> list[int]:
                fail_once()
                return job(conn)

            return run

        monkeypatch.setattr(sqlite_messages, "sort_epoch", failing_once)
    store = await SqliteStore.open(tmp_path / "a.db")
    engine = store.engine
    if where != "the sort":
        method = "attach_scratch" if where == "attaching" else "detach_scratch"
        real = getattr(engine, method)

        def failing() -> None:
            fail_once()
            real()

        monkeypatch.setattr(engine, method, failing)
    try:
        await written_all(store, 200)
        assert not failures and "sorting the message log's index entries failed (tried again in 0.05 s)" in caplog.text
        assert [m.mid for m in await store.messages.inbox(BOB, limit=500)] == [
            mid for mid in range(1, 201) if parties(mid)[1] == BOB
        ]
    finally:
        await store.close()


async def test_the_scratch_file_is_never_attached_to_the_loop_while_the_worker_writes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, quick: None
) -> None:
    """A transaction begun on the loop's connection locks every database attached to it: were the scratch file
    attached there while the worker writes it, one of them would wait for the other (the loop's writes fail
    after 20 ms). Messages keep coming while five epochs are sorted; at each sort the loop's connection has
    the scratch file detached, and every write succeeds."""
    monkeypatch.setattr(message_log, "EPOCH_ROWS", 30)
    monkeypatch.setattr(message_log, "SLICE", 64)
    store = await SqliteStore.open(tmp_path / "a.db")
    loop_conn = store.engine._conn
    assert loop_conn is not None
    attached: list[bool] = []

    def watched(first: int, last: int) -> Callable[[sqlite3.Connection], list[int]]:
        job = message_log.sort_epoch(first, last)

        def run(conn: sqlite3.Connection) -> list[int]:
            attached.append(scratch_attached(loop_conn))  # read from the worker's thread, as the sort begins
            time.sleep(0.01)
            return job(conn)

        return run

    monkeypatch.setattr(sqlite_messages, "sort_epoch", watched)
    try:
        mid = 0
        while len(attached) < 5:
            await store.messages.store_chats([chat(mid + i, *parties(mid + i)) for i in range(1, 11)])
            mid += 10
        await written_all(store, 0)
        assert store.messages.log.indexed == mid
        assert attached == [False] * len(attached)
    finally:
        await store.close()


async def test_an_indexed_generation_is_freed_a_slice_per_loop_iteration(monkeypatch: pytest.MonkeyPatch) -> None:
    """Freeing an epoch's messages and views at once held the loop ~9 ms; they go a slice per iteration, and
    the tail answers from its live generation meanwhile."""
    monkeypatch.setattr(message_log, "RELEASE_SLICE", 100)
    tail = message_log.Tail(
        (mid, ChatMessage(mid, f"c{mid}", ALICE, BOB, 1, "x", 0, 0, 0, None, mid, mid)) for mid in range(1, 301)
    )
    tail.freeze()
    frozen = tail.frozen
    tail.live.add(301, ChatMessage(301, "c301", ALICE, BOB, 1, "x", 0, 0, 0, None, 301, 301))
    tail.indexed(300)
    sizes = [len(frozen.rows) + len(frozen.by_key)]  # 300 + 300, and a view entry each per user and pair
    while frozen.rows:
        await asyncio.sleep(0)
        sizes.append(len(frozen.rows) + len(frozen.by_key))
    assert sizes[0] == 600 - 100 and len(sizes) == 7  # 606 entries, 100 per iteration
    assert not (frozen.by_key or frozen.by_pair or frozen.by_sender or frozen.by_receiver)
    assert [m.mid for m in tail.received(BOB)] == [301] and tail.keyed((ALICE, "c301")) is not None
