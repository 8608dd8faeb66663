"""The contact and conversation store contracts (glide.store.contacts, glide.store.conversations) on every
backend, plus SQLite's query plans and its v4 migration of an existing database."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from pathlib import Path

import pytest

from glide.errors import BadRequest, NotAllowed, NotFound, UserNotFound
from glide.ids import MidGenerator
from glide.store import NewChat, SqliteStore, Store
from glide.store.base import StoredChat
from glide.store.contacts import RELATION_BLACK, RELATION_WHITE, REQUEST_ACCEPTED, REQUEST_PENDING, AlreadyContacts
from glide.store.sqlite import contacts as sqlite_contacts
from glide.store.sqlite import conversations as sqlite_conversations
from glide.store.sqlite import message_log as sqlite_message_log
from glide.store.sqlite import messages as sqlite_messages
from glide.store.sqlite.schema import MIGRATIONS

pytestmark = pytest.mark.usefixtures("log_epochs")

IDS = MidGenerator(3)


async def users(store: Store, n: int) -> list[int]:
    made = []
    for _ in range(n):
        user = await store.users.create_user(
            account=f"u{IDS.next()}", email=None, nickname="n", avatar="", password_hash="-"
        )
        made.append(user.uid)
    return made


def chat(sender: int, receiver: int, content: str = "x", cli_mid: str = "", mid: int = 0) -> NewChat:
    return NewChat(mid or IDS.next(), cli_mid, sender, receiver, 1, content, 0)


async def test_requests_contacts_remarks(store: Store) -> None:
    a, b, c = await users(store, 3)
    contacts = store.contacts
    first = await contacts.request_contact(a, b, remark="bee", comment="hello")
    assert (first.request.status, first.contacts) == (REQUEST_PENDING, None)
    again = await contacts.request_contact(a, b, remark="B", comment="hello again")  # refreshes
    assert (again.request.remark, again.request.comment) == ("B", "hello again")
    assert [(r.requester, r.comment) for r in await contacts.pending_requests(b)] == [(a, "hello again")]
    assert [r.target for r in await contacts.sent_requests(a)] == [b]
    done = await contacts.answer_request(a, b, accept=True, remark="ay")
    assert done.request.status == REQUEST_ACCEPTED and done.contacts is not None
    assert [(x.owner, x.peer, x.remark) for x in done.contacts] == [(b, a, "ay"), (a, b, "B")]
    assert await contacts.pending_requests(b) == [] and await contacts.sent_requests(a) == []
    with pytest.raises(AlreadyContacts):
        await contacts.request_contact(b, a, remark="", comment="")
    with pytest.raises(NotFound):
        await contacts.answer_request(a, b, accept=True, remark="")
    assert (await contacts.set_remark(a, b, "bb")).remark == "bb"
    assert (await contacts.set_last_mid(a, b, 9)).last_mid == 9
    assert (await contacts.set_last_mid(a, b, 3)).last_mid == 9
    with pytest.raises(NotFound):
        await contacts.set_remark(a, c, "x")
    with pytest.raises(BadRequest):
        await contacts.set_last_mid(a, b, -1)
    assert [x.peer for x in await contacts.contacts(a)] == [b]
    assert await contacts.delete_contact(b, a) is True
    assert await contacts.contact(a, b) is None and await contacts.contacts(b) == []
    assert await contacts.delete_contact(a, b) is False

    rejected = await contacts.request_contact(c, a, remark="", comment="")
    assert (await contacts.answer_request(c, a, accept=False, remark="")).contacts is None
    assert rejected.request.status == REQUEST_PENDING and await contacts.contacts(c) == []
    met = await contacts.request_contact(a, c, remark="", comment="")  # c's request was rejected: pending
    assert met.contacts is None
    met = await contacts.request_contact(c, a, remark="", comment="")  # now they meet
    assert met.request.status == REQUEST_ACCEPTED and met.contacts is not None
    with pytest.raises(BadRequest):
        await contacts.request_contact(a, a, remark="", comment="")
    with pytest.raises(UserNotFound):
        await contacts.request_contact(a, 10**9, remark="", comment="")
    with pytest.raises(BadRequest):
        await contacts.request_contact(a, b, remark="r" * 65, comment="")


async def test_relations_and_refusal(store: Store) -> None:
    a, b, c, d = await users(store, 4)
    contacts = store.contacts
    assert await contacts.add_relations(a, RELATION_BLACK, [b, c, b]) == [b, c]
    assert await contacts.add_relations(a, RELATION_BLACK, [b]) == []  # unchanged
    assert [r.other for r in await contacts.relations(a, RELATION_BLACK)] == [b, c]
    assert await contacts.refused([(b, a), (a, b), (d, a), (a, a)]) == {(b, a)}
    with pytest.raises(NotAllowed):
        await contacts.request_contact(b, a, remark="", comment="")
    assert await contacts.add_relations(a, RELATION_WHITE, [c]) == [c]  # moves c to the whitelist
    assert [r.other for r in await contacts.relations(a, RELATION_BLACK)] == [b]
    await contacts.set_whitelist_only(a, True)
    assert await contacts.whitelist_only(a) is True
    assert await contacts.refused([(b, a), (c, a), (d, a), (a, a)]) == {(b, a), (d, a)}
    assert await contacts.remove_relations(a, RELATION_BLACK, [b, d]) == [b]
    await contacts.set_whitelist_only(a, False)
    assert await contacts.refused([(b, a), (c, a), (d, a)]) == set()
    with pytest.raises(BadRequest):
        await contacts.add_relations(a, RELATION_BLACK, [a])
    with pytest.raises(BadRequest):
        await contacts.add_relations(a, 7, [b])
    with pytest.raises(UserNotFound):
        await contacts.add_relations(a, RELATION_BLACK, [b, 10**9])
    assert await contacts.relations(a, RELATION_BLACK) == []  # nothing half-stored


async def test_the_message_path_keeps_conversations_and_timelines(store: Store) -> None:
    a, b, c = await users(store, 3)
    conv = store.conversations
    m1 = chat(b, a, "1")
    late_mid = IDS.next()  # stored last, below mids already read
    m2, m3 = chat(b, a, "2"), chat(a, b, "3")
    await store.messages.store_chats([m1, m2, m3, chat(c, a, "4"), chat(a, a, "self")])
    rows = {x.peer: x for x in await conv.recent(a)}
    assert set(rows) == {a, b, c}
    ab = rows[b]
    assert (ab.unread, ab.last_mid, ab.read_mid, ab.last and ab.last.content) == (2, m3.mid, 0, "3")
    assert (rows[c].unread, rows[a].unread, rows[a].last_mid) == (1, 0, rows[a].last_mid)
    assert (await conv.conversation(b, a)).unread == 1  # type: ignore[union-attr]
    assert (await conv.conversation(c, a)).unread == 0  # type: ignore[union-attr]

    read = await conv.mark_read(a, b, up_to_mid=m1.mid)
    assert (read.read_mid, read.unread) == (m1.mid, 1)
    read = await conv.mark_read(a, b)
    assert (read.read_mid, read.unread) == (m3.mid, 0)
    # A message with a smaller mid that commits after the read is already read: it is not unread.
    late = chat(b, a, "late", mid=late_mid)
    await store.messages.store_chats([late])
    assert (await conv.conversation(a, b)).unread == 0  # type: ignore[union-attr]
    with pytest.raises(NotFound):
        await conv.mark_read(b, c)
    with pytest.raises(BadRequest):
        await conv.mark_read(a, b, up_to_mid=-1)

    page = await conv.timeline(a, after_seq=0, limit=3)
    assert [e.seq for e in page.entries] == [1, 2, 3] and page.more and page.cursor == 3
    rest = await conv.timeline(a, after_seq=3)
    assert [e.seq for e in rest.entries] == [4, 5, 6] and not rest.more and rest.head == 6
    assert [e.message.content for e in page.entries + rest.entries] == ["1", "2", "3", "4", "self", "late"]
    assert await conv.timeline_head(b) == 4 and await conv.timeline_head(c) == 1

    await store.messages.recall(m3.mid, a, not_before_ms=0)
    [entry] = (await conv.timeline(b, after_seq=4)).entries
    assert (entry.seq, entry.message.mid, entry.message.status) == (5, m3.mid, 1)
    await store.messages.recall(m3.mid, a, not_before_ms=0)  # a repeated recall appends nothing
    assert await conv.timeline_head(b) == 5

    opened = await conv.open_conversation(c, b)
    assert (opened.last_mid, opened.unread, opened.last) == (0, 0, None)
    with pytest.raises(UserNotFound):
        await conv.open_conversation(c, 10**9)


async def test_refused_messages_leave_no_trace(store: Store) -> None:
    a, b = await users(store, 2)
    kept = chat(b, a, "kept", cli_mid="k")
    await store.messages.store_chats([kept])
    await store.contacts.add_relations(a, RELATION_BLACK, [b])
    dup, refused, back = await store.messages.store_chats(
        [chat(b, a, "kept", cli_mid="k"), chat(b, a, "no", cli_mid="n"), chat(a, b, "yes")]
    )
    assert (dup.duplicate, dup.refused, dup.message.mid) == (True, False, kept.mid)
    assert (refused.duplicate, refused.refused) == (False, True)
    assert (back.duplicate, back.refused) == (False, False)
    assert await store.messages.chat(refused.message.mid) is None
    assert [m.mid for m in await store.messages.inbox(a)] == [kept.mid]
    assert await store.conversations.timeline_head(a) == 2  # "kept" and alice's own "yes"
    assert (await store.conversations.conversation(a, b)).unread == 1  # type: ignore[union-attr]


def _bindings(sql: str) -> list[int]:
    numbered = [int(n) for n in re.findall(r"\?(\d+)", sql)]
    return [1] * (max(numbered) if numbered else sql.count("?"))


def test_every_query_uses_an_index(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "plan.db")
    for migration in MIGRATIONS:
        migration(conn)
    conn.execute("ATTACH DATABASE ? AS indexes", (str(tmp_path / "plan.db-indexes"),))
    for ddl in sqlite_message_log.INDEX_TABLES:
        conn.execute(ddl)
    queries = {
        f"{module.__name__}.{name}": getattr(module, name)
        for module in (sqlite_contacts, sqlite_conversations, sqlite_messages, sqlite_message_log)
        for name in dir(module)
        if name.startswith("SQL_")
    }
    # the batch queries, for two keys
    queries["sql_duplicates"] = sqlite_messages.sql_duplicates(2)
    queries["sql_refused"] = sqlite_messages.sql_refused(2)
    queries["sql_by_mids"] = sqlite_messages.sql_by_mids(2)
    assert len(queries) >= 30, sorted(queries)
    # read whole on purpose, once, when the store opens: the keys of the log's key filter, the users who may refuse
    read_whole = {"glide.store.sqlite.message_log.SQL_KEYS", "glide.store.sqlite.contacts.SQL_REFUSERS"}
    for name, sql in queries.items():
        if name in read_whole:
            continue
        plan = conn.execute("EXPLAIN QUERY PLAN " + sql, _bindings(sql)).fetchall()
        # a scan of a table is what must not happen; scanning constants or a bounded subquery's rows is fine, and
        # so is reading chat_moved (v) whole when the log is loaded (recalls not reindexed yet: a few rows)
        scans = [
            row[3] for row in plan if re.match(r"SCAN (?!CONSTANT ROW|\d+ CONSTANT ROWS|\(subquery|[kpv]$)", row[3])
        ]
        assert not scans, f"{name} scans: {scans}"
    conn.close()


async def test_v4_migrates_existing_messages(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = await SqliteStore.open(path, migrations=MIGRATIONS[:3])  # the release before contacts
    a, b = await users(old, 2)
    await old.close()
    mids = [IDS.next() for _ in range(3)]
    raw = sqlite3.connect(path)
    with raw:
        for mid, (s, r) in zip(mids, ((a, b), (b, a), (a, a)), strict=True):
            raw.execute(
                "INSERT INTO chat_messages (mid, cli_mid, sender, receiver, type, content, send_at, created_at, "
                "peer_lo, peer_hi) VALUES (?, '', ?, ?, 1, 'old', 0, ?, ?, ?)",
                (mid, s, r, mid, min(s, r), max(s, r)),
            )
    raw.close()
    store = await SqliteStore.open(path)
    try:
        [ab, aa] = sorted(await store.conversations.recent(a), key=lambda x: x.peer != b)
        assert (ab.peer, ab.last_mid, ab.read_mid, ab.unread) == (b, mids[1], mids[1], 0)  # starts read
        assert aa.peer == a
        page = await store.conversations.timeline(a)
        assert [(e.seq, e.message.mid) for e in page.entries] == [(1, mids[0]), (2, mids[1]), (3, mids[2])]
        assert [e.message.mid for e in (await store.conversations.timeline(b)).entries] == mids[:2]
        await store.messages.store_chats([chat(b, a, "new")])
        assert await store.conversations.timeline_head(a) == 4
        assert (await store.conversations.conversation(a, b)).unread == 1  # type: ignore[union-attr]
    finally:
        await store.close()


def refusal_queries(store: SqliteStore) -> list[str]:
    """The statements the loop's connection runs against the refusal rule's tables, from now on."""
    statements: list[str] = []
    conn = store.engine._conn
    assert conn is not None
    conn.set_trace_callback(lambda sql: statements.append(sql) if "relations" in sql or "privacy" in sql else None)
    return statements


def outcome(stored: list[StoredChat]) -> list[str]:
    return ["refused" if s.refused else "stored" for s in stored]


async def test_sqlite_asks_about_refusal_only_for_receivers_who_may_refuse(tmp_path: Path) -> None:
    """Receivers who never blocked anyone and are not whitelist-only cost no refusal query; a blacklist entry
    or whitelist-only, set while the store runs, in the same transaction as the send, or before a restart, is
    obeyed; a failed write that would have made a user refuse refuses nothing."""
    path = tmp_path / "r.db"
    store = await SqliteStore.open(path)
    try:
        a, b, c, d = await users(store, 4)
        queries = refusal_queries(store)
        assert (
            outcome(await store.messages.store_chats([chat(a, b), chat(b, c), chat(c, d), chat(d, a)]))
            == ["stored"] * 4
        )
        assert outcome(await store.messages.store_chats([chat(a, b)])) == ["stored"]  # the one-pair path
        assert queries == []
        await store.contacts.add_relations(b, RELATION_BLACK, [a])
        del queries[:]
        assert outcome(await store.messages.store_chats([chat(a, b), chat(c, b), chat(a, c)])) == [
            "refused",
            "stored",
            "stored",
        ]
        assert len(queries) == 1  # b's two senders, in one statement; nothing asked about c
        # in the transaction of the send, before it: the send is refused
        _, sent = await asyncio.gather(
            store.contacts.set_whitelist_only(c, True), store.messages.store_chats([chat(d, c)])
        )
        assert outcome(sent) == ["refused"]
        await store.contacts.add_relations(c, RELATION_WHITE, [d])
        assert outcome(await store.messages.store_chats([chat(d, c), chat(a, c)])) == ["stored", "refused"]
        # a blacklist that fails (a user that does not exist) is rolled back: d still reaches a
        with pytest.raises(UserNotFound):
            await store.contacts.add_relations(a, RELATION_BLACK, [d, 10**9])
        assert outcome(await store.messages.store_chats([chat(d, a)])) == ["stored"]
        # removed from the blacklist: b takes a's messages again
        await store.contacts.remove_relations(b, RELATION_BLACK, [a])
        assert outcome(await store.messages.store_chats([chat(a, b)])) == ["stored"]
    finally:
        await store.close()
    reopened = await SqliteStore.open(path)  # who may refuse is read from the file when the store opens
    try:
        assert reopened.refusers.uids == {c}
        await reopened.contacts.add_relations(d, RELATION_BLACK, [a])
        assert outcome(await reopened.messages.store_chats([chat(a, c), chat(d, c), chat(a, d), chat(b, a)])) == [
            "refused",
            "stored",
            "refused",
            "stored",
        ]
    finally:
        await reopened.close()


def test_refusers_read_before_a_write_see_it_and_never_lose_a_refuser(tmp_path: Path) -> None:
    """Before it is read, an addition is left to the read (which sees the row); after, it only grows."""
    conn = sqlite3.connect(tmp_path / "plan.db", isolation_level=None)
    for migration in MIGRATIONS:
        migration(conn)
    refusers = sqlite_contacts.Refusers()
    refusers.add(5)  # not read yet: the row is what counts
    conn.execute("INSERT INTO relations (owner, other, type, created_at) VALUES (1, 2, ?, 0)", (RELATION_BLACK,))
    conn.execute("INSERT INTO relations (owner, other, type, created_at) VALUES (3, 2, ?, 0)", (RELATION_WHITE,))
    conn.execute("INSERT INTO privacy (uid, whitelist_only) VALUES (4, 1), (6, 0)")
    assert refusers.loaded(conn) == {1, 4}  # a blacklist, whitelist-only; not a whitelist alone, nor 5
    refusers.add(3)
    conn.execute("DELETE FROM relations")
    assert refusers.loaded(conn) == {1, 3, 4}  # a query more, never a refusal missed
    conn.close()
