"""PostgreSQL store: opening and migrations, the group-commit writer (batching, failure isolation, a lost
connection, shutdown), NUL-safe text, and an index behind every query (the PostgreSQL-only side of
test_store_sqlite.py; the shared semantics run on both backends in test_store_*.py)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pg_support import ADMIN_URL

from glide.config import Config
from glide.errors import ConfigError, StorageError
from glide.store import NewChat, open_store
from glide.store.groups import NewGroupMessage, StoredGroupMessage
from glide.store.postgres import MIGRATIONS, PostgresStore, contacts, conversations, group_ops, messages, users
from glide.store.postgres import engine as pg_engine
from glide.store.postgres.codec import ESC, dec, enc
from glide.store.postgres.connection import WriteConn, redact
from glide.store.postgres.routines import PLANNED_ONCE as PLANNED_ONCE_SETTINGS
from glide.store.postgres.routines import Routine
from glide.store.postgres.schema import ROUTINES

PG_HOST_PORT = urlsplit(ADMIN_URL).netloc.rpartition("@")[2]  # the test server, with its real password


@pytest.fixture
async def pg(pg_url: str) -> AsyncIterator[PostgresStore]:
    store = await PostgresStore.open(pg_url)
    yield store
    await store.close()


async def admin(url: str) -> asyncpg.Connection[asyncpg.Record]:
    return await asyncpg.connect(url)


async def schema_version(url: str) -> int:
    conn = await admin(url)
    try:
        return int(await conn.fetchval("SELECT version FROM schema_version"))
    finally:
        await conn.close()


def chat(mid: int, cli_mid: str = "", sender: int = 1, receiver: int = 2, content: str = "x") -> NewChat:
    return NewChat(mid, cli_mid, sender, receiver, 1, content, 0)


# opening and migrations


async def test_creates_the_schema_in_an_empty_database_once(empty_pg_url: str) -> None:
    store = await PostgresStore.open(empty_pg_url)
    uid = (await store.users.create_user(account="a", email=None, nickname="a", avatar="", password_hash="h")).uid
    await store.close()
    assert await schema_version(empty_pg_url) == len(MIGRATIONS)
    again = await PostgresStore.open(empty_pg_url)  # no second migration: it would fail on existing tables
    try:
        assert [u.uid for u in await again.users.users([uid])] == [uid]
    finally:
        await again.close()


async def test_nodes_starting_together_migrate_once(empty_pg_url: str) -> None:
    stores = await asyncio.gather(*(PostgresStore.open(empty_pg_url) for _ in range(4)))
    for store in stores:
        await store.close()
    assert await schema_version(empty_pg_url) == len(MIGRATIONS)


async def test_migrates_an_older_database_keeping_its_data(empty_pg_url: str) -> None:
    # a release with users and chat (and none of today's functions)
    old = await PostgresStore.open(empty_pg_url, migrations=MIGRATIONS[:2], routines=())
    a = (await old.users.create_user(account="a", email="a@x", nickname="a", avatar="", password_hash="h")).uid
    b = (await old.users.create_user(account="b", email=None, nickname="b", avatar="", password_hash="h")).uid
    conn = await admin(empty_pg_url)
    try:  # what that release stored: messages without conversations or timelines
        for mid, (s, r) in enumerate([(a, b), (b, a), (a, b)], start=10):
            await conn.execute(
                "INSERT INTO chat_messages VALUES ($1, '', $2, $3, 1, 'old', 0, $1, 0, NULL, $4, $5)",
                mid,
                s,
                r,
                min(s, r),
                max(s, r),
            )
    finally:
        await conn.close()
    await old.close()
    assert await schema_version(empty_pg_url) == 2
    store = await PostgresStore.open(empty_pg_url)
    try:
        assert await schema_version(empty_pg_url) == len(MIGRATIONS)
        user = await store.users.user_by_login("A@X")
        assert user is not None and user.uid == a
        [conv] = await store.conversations.recent(b)
        assert (conv.peer, conv.last_mid, conv.unread) == (a, 12, 0)  # backfilled, read
        page = await store.conversations.timeline(b)
        assert [(e.seq, e.message.mid) for e in page.entries] == [(1, 10), (2, 11), (3, 12)]
        [stored] = await store.messages.store_chats([chat(20, "new", a, b)])
        assert not stored.duplicate
        assert (await store.conversations.timeline(b, after_seq=3)).entries[0].seq == 4  # the head continues
        [conv] = await store.conversations.recent(b)
        assert (conv.last_mid, conv.unread) == (20, 1)
    finally:
        await store.close()


async def test_newer_schema_is_refused(pg_url: str) -> None:
    conn = await admin(pg_url)
    await conn.execute("UPDATE schema_version SET version = 99")
    await conn.close()
    with pytest.raises(ConfigError, match="schema version 99 is newer"):
        await PostgresStore.open(pg_url)


async def test_a_foreign_schema_is_refused(empty_pg_url: str) -> None:
    conn = await admin(empty_pg_url)
    await conn.execute("CREATE TABLE schema_version (id text PRIMARY KEY, version text)")
    await conn.execute("INSERT INTO schema_version VALUES ('1', 'banana')")
    await conn.close()
    with pytest.raises(ConfigError, match="not a usable glide database"):
        await PostgresStore.open(empty_pg_url)


async def test_open_store_dispatches_on_the_url(pg_url: str, tmp_path: Any) -> None:
    for url in (pg_url, pg_url.replace("postgresql://", "postgres://", 1)):
        store = await open_store(Config(data_dir=str(tmp_path), store=url))
        try:
            assert isinstance(store, PostgresStore)
            assert await store.messages.last_mid() == 0
        finally:
            await store.close()
    assert not (tmp_path / "glide.db").exists()  # no SQLite file on the side


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql://postgres:postgres@127.0.0.1:1/glide", "cannot connect to PostgreSQL"),
        (f"postgresql://postgres:wrong-secret@{PG_HOST_PORT}/postgres", "cannot connect to PostgreSQL"),
        (f"postgresql://postgres:postgres@{PG_HOST_PORT}/no_such_db_glide", "cannot connect to PostgreSQL"),
        ("postgresql://postgres:postgres@127.0.0.1:notaport/x", "cannot connect to PostgreSQL"),
    ],
)
async def test_unusable_urls_are_clear_config_errors_without_the_password(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        await open_store(Config(store=url))
    assert "wrong-secret" not in str(info.value)


def test_redact_hides_only_the_password() -> None:
    assert redact("postgresql://u:p4ss@h:5/db?x=1") == "postgresql://u:***@h:5/db?x=1"
    assert redact("postgresql://u:p4ss@[::1]/db") == "postgresql://u:***@[::1]/db"
    assert redact("postgresql://u@h/db") == "postgresql://u@h/db"


# text that PostgreSQL's text type cannot hold as is


@given(st.text(alphabet=st.sampled_from(["\x00", ESC, "0", "1", "a", "é"]), max_size=30))
def test_text_codec_round_trips(value: str) -> None:
    stored = enc(value)
    assert "\x00" not in stored and dec(stored) == value


@given(st.text(max_size=30), st.text(max_size=30))
def test_text_codec_is_injective_and_leaves_ordinary_text_alone(a: str, b: str) -> None:
    assert (enc(a) == enc(b)) == (a == b)
    if "\x00" not in a and ESC not in a:
        assert enc(a) == a


# the writer


async def test_group_commit_batches_concurrent_writes(pg: PostgresStore) -> None:
    before = pg.batches_committed
    n = 300
    results = await asyncio.gather(*(pg.messages.store_chats([chat(i + 1, f"c{i}")]) for i in range(n)))
    assert [r[0].message.mid for r in results] == list(range(1, n + 1))
    batches = pg.batches_committed - before
    assert 1 <= batches <= n // 10, batches  # many writers share few transactions (and WAL flushes)
    assert len(await pg.messages.inbox(2, limit=1000)) == n
    assert (await pg.conversations.timeline(2, limit=500)).head == n


async def test_every_connection_plans_each_statement_for_the_tables_as_they_are(pg: PostgresStore) -> None:
    # A generic plan made while the tables were empty (a new database, before autovacuum's first ANALYZE) scans
    # whole tables and would be kept by every prepared statement as the tables grow: p50 18 ms -> 190 ms in
    # glide bench case1 on a fresh database. The writer and every reader must plan with the current sizes.
    async def mode(conn: Any) -> str:
        return str(await conn.fetchval("SELECT current_setting('plan_cache_mode')"))

    assert await pg.engine.write(mode) == "force_custom_plan"
    readers = await asyncio.gather(*(pg.engine.read(mode) for _ in range(8)))
    assert set(readers) == {"force_custom_plan"}


async def sleeping(conn: WriteConn) -> None:
    await conn.execute("SELECT pg_sleep(0.3)")


async def test_a_failing_operation_fails_only_itself(pg: PostgresStore) -> None:
    await pg.messages.store_chats([chat(100, "x")])
    before = pg.batches_committed
    hold = asyncio.ensure_future(pg.engine.write(sleeping))  # keeps the writer busy: the rest queue up
    await asyncio.sleep(0.1)

    async def bad_sql(conn: WriteConn) -> None:
        await conn.execute("SELECT * FROM no_such_table")

    async def buggy(conn: WriteConn) -> None:
        await conn.execute("INSERT INTO privacy VALUES (77, true)")
        raise ValueError("a bug in an operation")

    good1 = pg.messages.store_chats([chat(101, "a", sender=5, receiver=6)])  # a new conversation
    clash = pg.messages.store_chats([chat(102, "b"), chat(100, "c")])
    good2 = pg.users.create_user(account="z", email=None, nickname="z", avatar="", password_hash="h")
    r1, r2, r3, r4, r5 = await asyncio.gather(
        good1, clash, good2, pg.engine.write(bad_sql), pg.engine.write(buggy), return_exceptions=True
    )
    await hold
    assert pg.batches_committed - before == 2  # the holding batch, then all five together
    assert not isinstance(r1, BaseException) and not isinstance(r3, BaseException)
    assert isinstance(r2, StorageError) and "message id 100 is already used" in r2.message
    assert isinstance(r4, StorageError) and "no_such_table" in r4.message
    assert isinstance(r5, StorageError) and "a bug in an operation" in r5.message
    assert await pg.messages.chat(101) is not None
    assert await pg.messages.chat(102) is None  # the failed call left nothing behind
    assert not await pg.contacts.whitelist_only(77)  # neither did the buggy one
    assert [m.mid for m in await pg.messages.inbox(6)] == [101]
    # The batch ran twice (together, then op by op once an op failed): the conversation opened by the
    # first, rolled-back run is still written by the second.
    assert [c.peer for c in await pg.conversations.recent(6)] == [5]
    assert [c.peer for c in await pg.conversations.recent(5)] == [6]


async def test_a_lost_connection_fails_the_whole_batch_and_the_writer_reconnects(pg: PostgresStore) -> None:
    async def killed(conn: WriteConn) -> None:
        await conn.execute("SELECT pg_terminate_backend(pg_backend_pid())")

    hold = asyncio.ensure_future(pg.engine.write(sleeping))
    await asyncio.sleep(0.1)
    results = await asyncio.gather(
        pg.messages.store_chats([chat(1, "a")]), pg.engine.write(killed), return_exceptions=True
    )
    await hold
    assert all(isinstance(r, StorageError) for r in results), results
    assert "nothing of this batch was stored" in str(results[0])
    assert await pg.messages.chat(1) is None
    [ok] = await pg.messages.store_chats([chat(1, "a")])  # a new connection, same store
    assert not ok.duplicate and await pg.messages.chat(1) is not None


async def test_close_flushes_queued_writes(pg_url: str) -> None:
    store = await PostgresStore.open(pg_url)
    tasks = [asyncio.ensure_future(store.messages.store_chats([chat(i)])) for i in range(1, 201)]
    await asyncio.sleep(0)  # let every task enqueue its write
    await store.close()
    results = await asyncio.wait_for(asyncio.gather(*tasks), 10)  # every queued write completed, none failed
    assert [r[0].message.mid for r in results] == list(range(1, 201))
    with pytest.raises(StorageError, match="closed"):
        await store.messages.chat(1)
    with pytest.raises(StorageError, match="closed"):
        await store.messages.store_chats([chat(999)])
    await store.close()  # idempotent
    reopened = await PostgresStore.open(pg_url)
    assert await reopened.messages.last_mid() == 200
    await reopened.close()


async def test_cancelled_caller_does_not_break_the_batch(pg: PostgresStore) -> None:
    task = asyncio.ensure_future(pg.messages.store_chats([chat(1, "a")]))
    await asyncio.sleep(0)
    task.cancel()
    [ok] = await pg.messages.store_chats([chat(2, "a")])
    # the cancelled write still happened (at-least-once): the retry is recognised as a duplicate
    assert ok.duplicate and ok.message.mid == 1


async def test_long_content_and_odd_text_round_trip(pg: PostgresStore) -> None:
    content = ("\x00" + ESC + "0" + "😀" * 3) * 400_000  # ~7 MB of text with NULs and escape characters
    await pg.messages.store_chats([chat(5, "\x00" + ESC, content=content)])
    stored = await pg.messages.chat(5)
    assert stored is not None and stored.content == content and stored.cli_mid == "\x00" + ESC
    assert await pg.messages.chat_by_cli_mid(1, "\x00" + ESC) == stored
    [dup] = await pg.messages.store_chats([chat(6, "\x00" + ESC)])
    assert dup.duplicate and dup.message.mid == 5


# every query is served by an index


def _dummy(type_name: str) -> object:
    base = type_name.removesuffix("[]")
    value: object = {"int2": 1, "int4": 1, "int8": 1, "text": "x", "bool": False}[base]
    return [value] if type_name.endswith("[]") else value


def _seq_scans(node: dict[str, Any]) -> list[str]:
    found = [node.get("Relation Name", "?")] if node.get("Node Type") == "Seq Scan" else []
    for child in node.get("Plans", []):
        found += _seq_scans(child)
    return found


def _unkeyed_scans(node: dict[str, Any]) -> list[str]:
    """The scans of a plan that are not bounded by a key of the statement's own: a sequential scan, or an
    index scan whose condition names neither a parameter nor a row of another relation (a whole index, or all
    of it that a constant selects), whose cost grows with the table."""
    found = []
    if node.get("Node Type") == "Seq Scan":
        found.append(node.get("Relation Name", "?"))
    elif node.get("Node Type") in ("Index Scan", "Index Only Scan", "Bitmap Index Scan"):
        condition = node.get("Index Cond", "")
        if "$" not in condition and "." not in condition:
            found.append(f"{node.get('Index Name')} ({condition or 'no condition'})")
    for child in node.get("Plans", []):
        found += _unkeyed_scans(child)
    return found


QUERY_MODULES = (users, messages, conversations, group_ops, contacts)


async def test_every_query_uses_an_index(pg_url: str) -> None:
    conn = await admin(pg_url)
    try:
        # With sequential scans priced out, a plan that still has one has no index to use instead.
        await conn.execute("SET enable_seqscan = off")
        checked = 0
        for module in QUERY_MODULES:
            for name in dir(module):
                if not name.startswith("SQL_"):
                    continue
                sql = getattr(module, name)
                params = (await conn.prepare(sql)).get_parameters()
                plan = json.loads(
                    await conn.fetchval("EXPLAIN (FORMAT JSON) " + sql, *map(_dummy, (p.name for p in params)))
                )
                scans = _seq_scans(plan[0]["Plan"])
                assert not scans, f"{module.__name__}.{name} scans {scans}"
                checked += 1
        assert checked >= 40, checked
    finally:
        await conn.close()


PLANNED_ONCE = [r for r in ROUTINES if all(f"SET {k} = {v}" in r.create for k, v in PLANNED_ONCE_SETTINGS)]


async def _unkeyed_scans_of_generic_plan(conn: asyncpg.Connection[asyncpg.Record], routine: Routine) -> list[str]:
    """The unkeyed scans of the plan ``routine`` keeps (generic, made with its settings)."""
    await conn.execute("SET plan_cache_mode = force_generic_plan; SET enable_seqscan = off")
    params = (await conn.prepare(routine.query)).get_parameters()
    await conn.execute(f"PREPARE q AS {routine.query}")
    try:
        nulls = ", ".join("NULL" for _ in params)
        plan = json.loads(await conn.fetchval(f"EXPLAIN (FORMAT JSON) EXECUTE q({nulls})"))
    finally:
        await conn.execute("DEALLOCATE q")
    return _unkeyed_scans(plan[0]["Plan"])


@pytest.mark.parametrize("routine", PLANNED_ONCE, ids=lambda r: r.name.rsplit("_", 1)[0])
async def test_routines_planned_once_look_up_by_index_even_on_empty_tables(pg_url: str, routine: Routine) -> None:
    """A routine planned once keeps one generic plan per connection (no planning per call); made on an empty
    database, that plan must still look rows up by index, key by key, or it would read whole tables or indexes
    once they are large (the chats' routine did so for the keys of earlier messages: a full scan of an index)."""
    assert routine in PLANNED_ONCE and messages.ACKS_READ_ROUTINE in PLANNED_ONCE
    conn = await admin(pg_url)
    try:
        assert not await _unkeyed_scans_of_generic_plan(conn, routine)
        assert await conn.fetchval("SELECT count(*) FROM chat_messages") == 0  # the tables were empty
    finally:
        await conn.close()


async def test_routines_planned_once_look_up_by_key_on_tables_with_statistics(pg_url: str) -> None:
    """The same once the tables hold rows and have statistics (plans made then differ: the group members'
    read, planned on small analyzed tables, scanned a whole index instead of each group's rows)."""
    store = await PostgresStore.open(pg_url)
    try:
        uids = []
        for i in range(100):
            user = await store.users.create_user(account=f"u{i}", email=None, nickname="", avatar="", password_hash="h")
            uids.append(user.uid)
        gids = []
        for g in range(10):
            owner, *members = uids[g * 10 : g * 10 + 10]
            change = await store.groups.create_group(owner=owner, name="g", avatar="", members=members, mid=g + 1)
            gids.append(change.group.gid)
        mid = 100
        for _ in range(20):
            sends, chats = [], []
            for i in range(100):
                mid += 1
                sends.append(NewGroupMessage(mid, f"k{mid}", gids[i % 10], uids[i % 10 * 10 + i // 10], 1, "x", 0))
                chats.append(chat(10**6 + mid, f"k{mid}", uids[i], uids[(i + 7) % 100]))
            await store.groups.store_group_messages(sends)
            await store.messages.store_chats(chats)
    finally:
        await store.close()
    conn = await admin(pg_url)
    try:
        await conn.execute("ANALYZE")
        found = {r.name: await _unkeyed_scans_of_generic_plan(conn, r) for r in PLANNED_ONCE}
        assert not any(found.values()), found
    finally:
        await conn.close()


async def test_calls_queued_together_run_as_one_operation(pg: PostgresStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """store_chats and ack_inboxes calls that queue while the writer is busy combine into one operation each
    (the statements of one), and each caller gets what it would have got alone, in order."""
    monkeypatch.setattr(pg_engine, "DEFERRED_S", 3600.0)  # the receipt's save stays out of the count
    await pg.messages.store_chats([chat(1, "a")])
    hold = asyncio.ensure_future(pg.engine.write(sleeping))
    await asyncio.sleep(0.1)
    ops_before = pg.engine.ops_committed
    stores = [pg.messages.store_chats([chat(10 + i, f"k{i % 20}")]) for i in range(40)]  # 20 repeats
    acks = [pg.messages.ack_inboxes([(2, [1])]) for _ in range(5)]
    results = await asyncio.gather(*stores, *acks)
    await hold
    # the holding op, then every store_chats call in one op (its own statement: the batch has no other write)
    # and every ack in one read after it
    assert pg.engine.ops_committed - ops_before == 2
    stored, acked = results[:40], results[40:]
    assert [r[0].message.mid for r in stored[:20]] == list(range(10, 30))
    assert all(not r[0].duplicate for r in stored[:20])
    assert [(r[0].message.mid, r[0].duplicate) for r in stored[20:]] == [(m, True) for m in range(10, 30)]
    assert [[m.mid for m in a[0]] for a in acked] == [[1], [], [], [], []]  # acknowledged once, by the first


async def test_acknowledgements_alone_take_no_transaction(pg: PostgresStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """An acknowledgement reads in the writer's queue and writes nothing then (its cursor is saved later,
    deferred): a batch of acknowledgements alone runs without a transaction; the save comes when due."""
    monkeypatch.setattr(pg_engine, "DEFERRED_S", 3600.0)
    await pg.messages.store_chats([chat(1), chat(2), chat(3)])
    before = pg.engine.batches_committed
    acked = await asyncio.gather(pg.messages.ack_inbox(2, [2]), pg.messages.ack_inbox(2, [1, 2]))
    assert [[m.mid for m in a] for a in acked] == [[2], [1]]
    assert [m.mid for m in await pg.messages.inbox(2)] == [3]
    assert pg.engine.batches_committed == before  # not a transaction yet
    saved = await pg.engine.fetchrow("SELECT cursor, acked FROM inbox_cursors WHERE uid = 2")
    assert saved is None or saved[0] == 0
    pg.engine._deferred_ready()
    await pg.messages.store_chats([chat(4)])  # the next transaction takes the save
    assert pg.engine.batches_committed == before + 1
    saved = await pg.engine.fetchrow("SELECT cursor, acked FROM inbox_cursors WHERE uid = 2")
    assert saved is not None and (saved[0], list(saved[1])) == (2, [])
    assert [m.mid for m in await pg.messages.inbox(2)] == [3, 4]


def writer_pid(pg: PostgresStore) -> int:
    assert pg.engine._conn is not None
    return pg.engine._conn.get_server_pid()


async def test_chats_alone_are_one_statement_that_takes_its_locks(pg: PostgresStore) -> None:
    """A batch whose only write is chats in known conversations is one call on the writer's connection (no
    BEGIN, no COMMIT: it commits on its own); opening a conversation takes the transaction as before."""
    logged: list[str] = []
    await pg.messages.store_chats([chat(1)])  # the writer connects; the conversation is opened
    writer = pg.engine._conn
    assert writer is not None
    writer.add_query_logger(lambda q: logged.append(q.query))
    await pg.messages.store_chats([chat(2, "a"), chat(3, "b")])
    assert logged == [messages.SQL_STORE_FEW_CHATS_CALL]  # a few chats: the routine planned once
    logged.clear()
    await pg.messages.store_chats([chat(4, sender=1, receiver=3)])  # a new conversation: BEGIN … COMMIT
    assert logged[0].startswith("BEGIN") and logged[-1] == "COMMIT", logged
    assert [m.mid for m in await pg.messages.inbox(2)] == [1, 2, 3]
    assert (await pg.conversations.timeline(2)).head == 3
    logged.clear()
    many = [chat(10 + i, f"m{i}") for i in range(messages.SMALL_BATCH + 1)]
    stored = await pg.messages.store_chats([*many, chat(9, "m0")])  # the last repeats the first's cliMid
    assert logged == [messages.SQL_STORE_CHATS_CALL]  # more: planned at the call, for its size
    assert [(s.message.mid, s.duplicate) for s in stored] == [(c.mid, False) for c in many] + [(10, True)]
    assert [m.receiver_seq for m in await pg.messages.inbox(2)] == list(range(1, len(many) + 4))


async def test_chats_alone_wait_for_their_keys_and_see_what_was_committed_meanwhile(pg: PostgresStore) -> None:
    """The one-statement batch keeps the transaction's guarantees: it waits for a transaction holding the
    advisory lock of one of its users, and then sees what that one committed (a block of the sender)."""
    await pg.messages.store_chats([chat(1)])
    other = await admin(pg.engine.url)
    try:
        await other.execute("BEGIN")
        await other.execute("SELECT pg_advisory_xact_lock(2)")
        await other.execute("INSERT INTO relations VALUES (2, 1, 2, 0)")  # 2 blocks 1 (RELATION_BLACK)
        sending = asyncio.ensure_future(pg.messages.store_chats([chat(2, "x")]))
        waiting = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND pid = $1"
        while not await other.fetchval(waiting, writer_pid(pg)):  # the writer's statement waits for the lock
            assert not sending.done()
            await asyncio.sleep(0.01)
        await other.execute("COMMIT")
        [result] = await sending
    finally:
        await other.close()
    assert result.refused and await pg.messages.chat(2) is None


async def test_chats_alone_that_fail_run_again_as_a_transaction_answering_each_call(pg: PostgresStore) -> None:
    """The one statement of combined calls fails as a whole (a mid already used) and changes nothing; the
    batch runs again as a transaction, where only the call at fault fails."""
    await pg.messages.store_chats([chat(100, "x")])
    hold = asyncio.ensure_future(pg.engine.write(sleeping))
    await asyncio.sleep(0.1)
    good = pg.messages.store_chats([chat(101, "a")])
    clash = pg.messages.store_chats([chat(102, "b"), chat(100, "c")])
    later = pg.messages.store_chats([chat(103, "d")])
    r1, r2, r3 = await asyncio.gather(good, clash, later, return_exceptions=True)
    await hold
    assert isinstance(r2, StorageError) and "message id 100 is already used" in r2.message
    assert not isinstance(r1, BaseException) and not isinstance(r3, BaseException)
    assert [m.mid for m in await pg.messages.inbox(2)] == [100, 101, 103]
    assert (await pg.conversations.timeline(2)).head == 3  # no position taken by the failed statement


async def _lost_to_another_node(pg: PostgresStore) -> asyncio.Future[list[Any]]:
    """A chat of key (1, "z") sent while another node's transaction, not committed yet, inserts that key: the
    batch's statement did not see it, waits for it and skips its own row (it was stored elsewhere)."""
    await pg.messages.store_chats([chat(1)])  # the conversation is known: the batch goes alone
    other = await admin(pg.engine.url)
    try:
        await other.execute("BEGIN")
        await other.execute(
            "INSERT INTO chat_messages VALUES (500, 'z', 1, 2, 1, 'elsewhere', 0, 0, 0, NULL, 1, 2, 1000, 1000)"
        )
        sending = asyncio.ensure_future(pg.messages.store_chats([chat(2, "z"), chat(3, "y")]))
        waiting = "SELECT count(*) FROM pg_locks WHERE locktype = 'transactionid' AND NOT granted AND pid = $1"
        while not await other.fetchval(waiting, writer_pid(pg)):
            assert not sending.done()
            await asyncio.sleep(0.01)
        await other.execute("COMMIT")
        await asyncio.wait([sending])
        return sending
    finally:
        await other.close()


async def test_chats_alone_find_a_key_stored_meanwhile_by_another_node(pg: PostgresStore) -> None:
    [z, y] = (await _lost_to_another_node(pg)).result()
    assert (z.message.mid, z.message.content, z.duplicate) == (500, "elsewhere", True)
    assert (y.message.mid, y.duplicate) == (3, False)


async def test_chats_alone_that_fail_after_committing_are_not_run_again(
    pg: PostgresStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other node's chat is read after the statement committed; when that read fails, the calls get an
    error saying what was stored, and the batch is not run again (its chats would come back as duplicates)."""
    monkeypatch.setattr(messages, "SQL_CHATS_BY_CLI_MID", "SELECT * FROM no_such_table")
    sending = await _lost_to_another_node(pg)
    error = sending.exception()
    assert isinstance(error, StorageError) and "after the messages were stored" in error.message
    [y] = await pg.messages.store_chats([chat(4, "y")])  # a resend of the stored one finds it
    assert (y.message.mid, y.duplicate) == (3, True)


async def test_group_sends_are_the_same_statements_whatever_their_number(pg: PostgresStore) -> None:
    """A batch of group messages costs a fixed number of statements on the writer's connection (its groups
    locked, the keys stored before, the senders' memberships, the append, the members), not some per message."""
    uids = []
    for name in "abc":
        user = await pg.users.create_user(account=name, email=None, nickname=name, avatar="", password_hash="h")
        uids.append(user.uid)
    gids = []
    for i in range(2):
        change = await pg.groups.create_group(owner=uids[0], name="g", avatar="", members=uids[1:], mid=900 + i)
        gids.append(change.group.gid)
    writer = pg.engine._conn
    assert writer is not None
    logged: list[str] = []
    writer.add_query_logger(lambda q: logged.append(q.query))
    mids = iter(range(1000, 2000))

    def sends(n: int) -> list[NewGroupMessage]:
        return [NewGroupMessage(next(mids), f"k{next(mids)}", gids[i % 2], uids[i % 3], 1, "hi", 0) for i in range(n)]

    few = await pg.groups.store_group_messages(sends(2))
    few_statements, logged[:] = list(logged), []
    many = await pg.groups.store_group_messages(sends(40))
    assert logged == few_statements and len(logged) <= 8, logged
    assert [r.message.seq for r in few + many if isinstance(r, StoredGroupMessage)] == [2, 2] + [
        3 + i // 2 for i in range(40)
    ]
