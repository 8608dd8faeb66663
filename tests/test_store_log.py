"""SQLite's message log (glide.store.sqlite.message_log): rows appended at once, index entries written later
in sorted slices. Reads answer the same whether a message is in the unindexed tail, in an epoch cut in the
middle, or indexed; a restart picks an interrupted epoch up again; a recall moves a message in every state."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from glide.store import NewChat, SqliteStore
from glide.store.base import ChatMessage
from glide.store.sqlite import message_log
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


def index_all(log: MessageLog, store: SqliteStore) -> None:
    """Run the epoch to its end now (in one transaction)."""
    conn = store.engine._conn
    assert conn is not None
    conn.execute("BEGIN")
    while log.index_slice(conn, now=True):
        pass
    conn.execute("COMMIT")


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
        index_all(log, store)
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
    conn.execute("BEGIN")
    assert log.index_slice(conn)  # two entries per index written, eight to go
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
        index_all(reopened.messages.log, reopened)  # and written again, over the first half
        assert await snapshot(reopened) == expected
    finally:
        await reopened.close()


def written(conn: object, table: str, mid: int) -> bool:
    """Whether message ``mid`` has its entry in index ``table``."""
    sql = f"SELECT count(*) FROM {table} t JOIN chat_messages m ON m.pos = t.pos WHERE m.mid = ?"
    return bool(conn.execute(sql, (mid,)).fetchone()[0])  # type: ignore[attr-defined]


@pytest.mark.parametrize("state", ["tail", "chat_by_cli_mid", "chat_by_receiver", "chat_by_sender", "indexed"])
async def test_a_recall_moves_a_message_in_every_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, state: str
) -> None:
    """In an epoch, a recall may come before the index its positions change in is sorted (cli_mid), after its
    entry there was written (message 3) or while it waits to be (message 6)."""
    monkeypatch.setattr(message_log, "EPOCH_AGE_S", 3600.0)
    monkeypatch.setattr(message_log, "SLICE", 1)
    store = await SqliteStore.open(tmp_path / "a.db")
    try:
        await fill(store)
        log = store.messages.log
        conn = store.engine._conn
        assert conn is not None
        if state == "indexed":
            index_all(log, store)
        elif state != "tail":
            monkeypatch.setattr(message_log, "EPOCH_ROWS", 1)
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
        index_all(log, store)
        assert await snapshot(store) == before  # no old entry of a moved message was left in the index
    finally:
        await store.close()


async def test_a_step_rolled_back_starts_the_epoch_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A transaction that fails while an epoch is under way takes its step with it (the temporary table's rows
    too); the log forgets what it held, reads the file again and indexes the same rows from the start."""
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
        conn.execute("BEGIN")
        for _ in range(8):  # cli_mid's entries sorted and written, the receivers' sorted, some written
            assert log.index_slice(conn)
        conn.execute("COMMIT")
        assert log.epoch is not None and log.epoch.index == 1
        conn.execute("BEGIN")
        assert log.index_slice(conn)
        conn.execute("ROLLBACK")
        store.engine._rolled_back()
        assert log.epoch is None and not log.loaded
        assert await snapshot(store) == expected
        index_all(log, store)
        assert log.indexed == 10 and log.tail.positions() == []
        assert await snapshot(store) == expected
    finally:
        await store.close()
