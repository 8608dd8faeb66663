"""Schema v7 (the append-only message log) carries a v6 database over on both backends: log positions from
the old timeline (a recall's newest entry wins), the inbox as cursors (exactly the old pending rows stay
pending), conversations with their last message and unread count derived as before."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

import asyncpg
import pytest

from glide.store import NewChat, SqliteStore, Store
from glide.store.postgres import MIGRATIONS as PG_MIGRATIONS
from glide.store.postgres import PostgresStore
from glide.store.sqlite.schema import MIGRATIONS as SQLITE_MIGRATIONS

V6 = 6
# mid: (sender, receiver, status) — 4 was recalled, so it stands twice in the timelines.
MESSAGES = {1: ("a", "b", 0), 2: ("b", "a", 0), 3: ("a", "b", 0), 4: ("a", "b", 1), 5: ("c", "b", 0), 6: ("a", "a", 0)}
TIMELINES = {"a": [1, 2, 3, 4, 6, 4], "b": [1, 2, 3, 4, 5, 4], "c": [5]}
INBOX = {"b": [3, 5], "a": [2]}  # what was still pending; 1 and 4 were acknowledged by b, 6 by a
READ_MID = {("b", "a"): 1}


def v6_rows(uid: dict[str, int]) -> dict[str, list[tuple[object, ...]]]:
    conversations: dict[tuple[int, int], list[int]] = {}
    for mid, (s, r, _) in MESSAGES.items():
        for owner, peer in {(uid[s], uid[r]), (uid[r], uid[s])}:
            conversations.setdefault((owner, peer), []).append(mid)
    names = {v: k for k, v in uid.items()}
    return {
        "chat_messages": [
            (mid, f"c{mid}", uid[s], uid[r], 1, f"m{mid}", 0, 1000 + mid, st, uid[s] if st else None, *pair)
            for mid, (s, r, st) in MESSAGES.items()
            for pair in [(min(uid[s], uid[r]), max(uid[s], uid[r]))]
        ],
        "timeline": [(uid[u], seq, mid) for u, mids in TIMELINES.items() for seq, mid in enumerate(mids, 1)],
        "inbox": [(uid[u], mid) for u, mids in INBOX.items() for mid in mids],
        "conversations": [
            (o, p, max(mids), READ_MID.get((names[o], names[p]), 0), 0, 1000, 1000 + max(mids))
            for (o, p), mids in conversations.items()
        ],
    }


async def write_v6_sqlite(path: Path, uid: dict[str, int]) -> None:
    conn = sqlite3.connect(path)
    with conn:
        for table, rows in v6_rows(uid).items():
            conn.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * len(rows[0]))})", rows)
    conn.close()


async def write_v6_pg(url: str, uid: dict[str, int]) -> None:
    conn = await asyncpg.connect(url)
    try:
        for table, rows in v6_rows(uid).items():
            marks = ", ".join(f"${i + 1}" for i in range(len(rows[0])))
            await conn.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)
    finally:
        await conn.close()


async def make_users(store: Store, names: Sequence[str]) -> dict[str, int]:
    return {
        n: (await store.users.create_user(account=n, email=None, nickname=n, avatar="", password_hash="h")).uid
        for n in names
    }


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_v7_carries_a_v6_database_over(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    if backend == "sqlite":
        path = tmp_path / "v6.db"
        old: Store = await SqliteStore.open(path, migrations=SQLITE_MIGRATIONS[:V6])
        uid = await make_users(old, "abc")
        await old.close()
        await write_v6_sqlite(path, uid)
        store: Store = await SqliteStore.open(path)
    else:
        url = request.getfixturevalue("empty_pg_url")
        old = await PostgresStore.open(url, migrations=PG_MIGRATIONS[:V6], routines=())
        uid = await make_users(old, "abc")
        await old.close()
        await write_v6_pg(url, uid)
        conn = await asyncpg.connect(url)  # v6 kept the heads of the timelines in their own table
        await conn.execute(
            "INSERT INTO timeline_heads SELECT uid, max(seq) FROM timeline GROUP BY uid "
            "ON CONFLICT (uid) DO UPDATE SET head = excluded.head"
        )
        await conn.close()
        store = await PostgresStore.open(url)
    a, b, c = uid["a"], uid["b"], uid["c"]
    try:
        # the inbox: exactly what was pending, in log order
        assert [m.mid for m in await store.messages.inbox(b)] == [3, 5]
        assert [m.mid for m in await store.messages.inbox(a)] == [2]
        assert await store.messages.inbox(c) == []
        # log positions: a recall's newest entry (4 stands at 6 in both logs; a's 4th position is empty now)
        page = await store.conversations.timeline(a)
        assert [(e.seq, e.message.mid, e.message.status) for e in page.entries] == [
            (1, 1, 0),
            (2, 2, 0),
            (3, 3, 0),
            (5, 6, 0),
            (6, 4, 1),
        ]
        assert page.head == 6 and await store.conversations.timeline_head(c) == 1
        # conversations: last message and unread derived from the messages
        ba = await store.conversations.conversation(b, a)
        assert ba is not None and (ba.last_mid, ba.read_mid, ba.unread, ba.updated_at) == (4, 1, 2, 1004)
        assert [x.peer for x in await store.conversations.recent(b)] == [c, a]
        # the log goes on after the old positions; acknowledging empties the inbox
        [new] = await store.messages.store_chats([NewChat(10, "", a, b, 1, "new", 0)])
        assert (new.message.sender_seq, new.message.receiver_seq) == (7, 7)
        assert [m.mid for m in await store.messages.ack_inbox(b, [5, 3, 1, 4, 10])] == [3, 5, 10]
        assert await store.messages.inbox(b) == []
    finally:
        await store.close()
