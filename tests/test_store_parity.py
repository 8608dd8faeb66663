"""Corners of the message path where a set-based backend (PostgreSQL stores a whole batch in a few
statements) could drift from one that goes message by message (SQLite): both must give the same answers."""

from __future__ import annotations

import pytest

from glide.store import NewChat, Store
from glide.store.contacts import RELATION_BLACK, RELATION_WHITE

pytestmark = pytest.mark.usefixtures("log_epochs")


async def users(store: Store, *names: str) -> list[int]:
    made = [
        await store.users.create_user(account=n, email=None, nickname=n, avatar="", password_hash="h") for n in names
    ]
    return [u.uid for u in made]


def chat(mid: int, sender: int, receiver: int, cli_mid: str = "") -> NewChat:
    return NewChat(mid, cli_mid, sender, receiver, 1, f"m{mid}", 0)


async def test_a_batch_behaves_as_if_stored_in_order(store: Store) -> None:
    a, b, c = await users(store, "a", "b", "c")
    await store.contacts.add_relations(c, RELATION_BLACK, [a])
    results = await store.messages.store_chats(
        [
            chat(10, a, c, "k"),  # refused: nothing with key k exists yet
            chat(11, a, b, "k"),  # stored
            chat(12, a, c, "k"),  # refused, but k exists now: a duplicate of 11
            chat(13, a, b, "k"),  # a duplicate of 11
            chat(14, a, a, ""),  # to oneself: never refused, never unread
            chat(15, a, b, ""),
        ]
    )
    summary = [(r.message.mid, r.duplicate, r.refused) for r in results]
    expected = [(10, False, True), (11, False, False), (11, True, False), (11, True, False)]
    assert summary == [*expected, (14, False, False), (15, False, False)]
    assert [m.mid for m in await store.messages.inbox(b)] == [11, 15]
    assert await store.messages.inbox(c) == [] and await store.messages.chat(10) is None
    page = await store.conversations.timeline(a)
    assert [(e.seq, e.message.mid) for e in page.entries] == [(1, 11), (2, 14), (3, 15)]
    [with_b] = await store.conversations.recent(b)
    assert (with_b.peer, with_b.last_mid, with_b.unread) == (a, 15, 2)
    own = await store.conversations.conversation(a, a)
    assert own is not None and own.unread == 0 and own.last_mid == 14


async def test_unread_counts_only_messages_above_the_read_mark(store: Store) -> None:
    a, b = await users(store, "a", "b")
    await store.messages.store_chats([chat(100, a, b)])
    ahead = await store.conversations.mark_read(b, a, up_to_mid=500)  # read "ahead" of what exists
    assert (ahead.read_mid, ahead.unread) == (500, 0)
    await store.messages.store_chats([chat(200, a, b), chat(600, a, b), chat(300, b, a), chat(700, a, b)])
    theirs = await store.conversations.conversation(b, a)
    assert theirs is not None and (theirs.last_mid, theirs.unread) == (700, 2)  # 600, 700; 200 is below the mark
    mine = await store.conversations.conversation(a, b)
    assert mine is not None and mine.unread == 1  # b's 300
    read = await store.conversations.mark_read(b, a)
    assert (read.read_mid, read.unread) == (700, 0)


async def test_whitelist_only_refuses_all_but_the_whitelist(store: Store) -> None:
    a, b, c = await users(store, "a", "b", "c")
    await store.contacts.set_whitelist_only(c, True)
    await store.contacts.add_relations(c, RELATION_WHITE, [b])
    results = await store.messages.store_chats([chat(1, a, c), chat(2, b, c), chat(3, c, c), chat(4, c, a)])
    assert [r.refused for r in results] == [True, False, False, False]
    assert await store.contacts.refused([(a, c), (b, c), (c, c), (a, b)]) == {(a, c)}
    await store.contacts.add_relations(c, RELATION_BLACK, [b])  # moves b from the whitelist to the blacklist
    [again] = await store.messages.store_chats([chat(5, b, c, "x")])
    assert again.refused and (await store.contacts.relations(c, RELATION_WHITE)) == []


async def test_recall_moves_the_message_to_the_end_of_both_logs(store: Store) -> None:
    a, b = await users(store, "a", "b")
    await store.messages.store_chats([chat(1, a, b), chat(2, b, a)])
    before = await store.conversations.timeline(b)
    await store.messages.recall(1, a, not_before_ms=0)
    await store.messages.recall(1, a, not_before_ms=0)  # repeated: it stays where it is
    for uid in (a, b):
        page = await store.conversations.timeline(uid)
        assert [(e.seq, e.message.mid, e.message.status) for e in page.entries] == [(2, 2, 0), (3, 1, 1)]
        assert page.head == 3 and not page.more
    # a client that synced up to the old position learns of the recall after it
    assert [e.message.mid for e in (await store.conversations.timeline(b, after_seq=before.cursor)).entries] == [1]
    first = await store.conversations.timeline(a, limit=1)
    assert (first.cursor, first.more) == (2, True)
    rest = await store.conversations.timeline(a, after_seq=first.cursor)
    assert [e.seq for e in rest.entries] == [3] and await store.conversations.timeline_head(b) == 3


async def test_recall_keeps_the_receivers_acknowledgement(store: Store) -> None:
    a, b = await users(store, "a", "b")
    await store.messages.store_chats([chat(1, a, b), chat(2, a, b), chat(3, a, b)])
    await store.messages.ack_inbox(b, [1])
    await store.messages.recall(1, a, not_before_ms=0)  # acknowledged: stays acknowledged
    await store.messages.recall(2, a, not_before_ms=0)  # pending: stays pending, now as a recall
    pending = await store.messages.inbox(b)
    assert [(m.mid, m.status) for m in pending] == [(3, 0), (2, 1)]
    assert [m.mid for m in await store.messages.ack_inbox(b, [3, 2])] == [3, 2]
    assert await store.messages.inbox(b) == []
