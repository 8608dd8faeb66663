"""1:1 messages on PostgreSQL (the semantics of glide.store.base.MessageStore): an append-only log.

The same design as SQLite (glide.store.sqlite.messages): a message is one row carrying its positions in the
sender's and the receiver's log; a receiver's inbox is a cursor over its log, acknowledged at once in the
node's memory and saved with a later transaction (within DEFERRED_S, merged with what other nodes saved).
Several nodes write here, so the positions come from ``timeline_heads``: one row per user, bumped once per
batch under its row lock (in uid order), which makes each log contiguous and in commit order across nodes.
A batch costs a fixed number of round trips whatever its size: its chats are one statement (refusals,
duplicates, heads and the rows together, ``SQL_STORE_CHATS``) plus one for the conversations it opens, and a
batch that writes nothing else and opens no conversation is one call that takes its locks and commits on its
own (``SQL_STORE_CHATS_CALL``: one round trip, not three with BEGIN and COMMIT); its
acknowledgements are one read (the messages and the saved cursors; without a transaction when the batch has
nothing else) and no write: what the node acknowledged since the last save joins a transaction DEFERRED_S
later as two statements (the cursors locked, then merged, advanced, saved). The read is kept for a message
this node stored too: answered from the node's memory (as SQLite does), a receipt goes out at once, in a
cluster in a Redis round of its own instead of the one its batch's deliveries make (measured: a same-node
message 10-15 % dearer).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import asyncpg

from glide.errors import NotFound, StorageError
from glide.store.base import MAX_HISTORY_PAGE, MAX_INBOX_PAGE, STATUS_RECALLED, ChatMessage, NewChat, StoredChat
from glide.store.checks import INT64_MAX, check_int, check_text, is_id
from glide.store.message_checks import InboxCursor, ack_requests, check_new_chats, check_recall, recalled
from glide.store.postgres.codec import enc
from glide.store.postgres.connection import Conn, WriteConn
from glide.store.postgres.conversations import refusals_of
from glide.store.postgres.engine import LOCK_KEYS_AT_PARAM, DeferredWrite, PgEngine
from glide.store.postgres.routines import PLANNED_ONCE, routine
from glide.store.postgres.rows import CHAT_COLUMNS, M_COLUMNS, chat_from

KNOWN_CONVERSATIONS = 100_000  # (owner, peer) rows this node knows exist (they are never deleted)
# CHAT_COLUMNS with their types, as a routine returns them.
_CHAT_TYPES = (
    "mid bigint, cli_mid text, sender bigint, receiver bigint, type bigint, content text, send_at bigint, "
    "created_at bigint, status integer, recalled_by bigint, sender_seq bigint, receiver_seq bigint"
)

# Every query of the message path, named so tests can check each one is served by an index.
# A batch of chats in one statement: the (sender, cliMid) keys it stored before (kind 1: that message), its
# refused (sender, receiver) pairs (kind 2), and the rows it appends (kind 0: mid and positions). The rows
# appended are the batch's chats in order that are neither refused nor stored before nor repeated earlier
# in the batch; each takes the next positions of its users' logs from ``timeline_heads`` (bumped once per
# user, in uid order, so concurrent batches lock heads in one order). The earlier messages are looked up key
# by key (LATERAL ... LIMIT 1: a key names at most one row), never by a join that may read the whole index of
# keys: a plan made for a new database's empty tables chose that, and the batch grew dearer with every message
# stored (measured: the server's CPU per chat 635 -> 1,705 us over the first 8,000 messages).
SQL_STORE_CHATS = f"""WITH t AS (
    SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::text[],
        $7::bigint[]) WITH ORDINALITY AS t(mid, cli_mid, sender, receiver, type, content, send_at, ord)
), earlier AS (
    SELECT e.* FROM (SELECT DISTINCT sender, cli_mid FROM t WHERE cli_mid <> '') k CROSS JOIN LATERAL (
        SELECT {M_COLUMNS} FROM chat_messages m WHERE m.sender = k.sender AND m.cli_mid = k.cli_mid
        AND m.cli_mid <> '' LIMIT 1) e
), refused AS (
    SELECT p.sender, p.receiver {refusals_of("(SELECT DISTINCT sender, receiver FROM t WHERE sender <> receiver)")}
), admitted AS (
    SELECT t.*, row_number() OVER (PARTITION BY t.sender, t.cli_mid ORDER BY t.ord) AS nth FROM t
    WHERE NOT EXISTS (SELECT FROM refused f WHERE f.sender = t.sender AND f.receiver = t.receiver)
), fresh AS (
    SELECT * FROM admitted a WHERE a.cli_mid = '' OR (a.nth = 1 AND NOT EXISTS (
        SELECT FROM earlier e WHERE e.sender = a.sender AND e.cli_mid = a.cli_mid))
), occ AS (
    SELECT f.*, 0 AS side, f.sender AS uid FROM fresh f
    UNION ALL SELECT f.*, 1, f.receiver FROM fresh f WHERE f.receiver <> f.sender
), cnt AS (
    SELECT uid, count(*) AS n FROM occ GROUP BY uid
), heads AS (
    INSERT INTO timeline_heads AS h (uid, head) SELECT uid, n FROM cnt ORDER BY uid
    ON CONFLICT (uid) DO UPDATE SET head = h.head + excluded.head RETURNING uid, head
), pos AS (
    SELECT o.*, h.head - c.n + row_number() OVER (PARTITION BY o.uid ORDER BY o.ord, o.side) AS seq
    FROM occ o JOIN cnt c USING (uid) JOIN heads h USING (uid)
), paired AS (
    SELECT p.*, lead(p.seq) OVER (PARTITION BY p.ord ORDER BY p.side) AS r_seq FROM pos p
), ins AS (
    INSERT INTO chat_messages ({CHAT_COLUMNS}, peer_lo, peer_hi)
    SELECT mid, cli_mid, sender, receiver, type, content, send_at, $8, 0, NULL, seq, coalesce(r_seq, seq),
        least(sender, receiver), greatest(sender, receiver)
    FROM paired WHERE side = 0 ORDER BY ord
    ON CONFLICT (sender, cli_mid) WHERE cli_mid <> '' DO NOTHING RETURNING mid, sender_seq, receiver_seq
)
SELECT 0 AS kind, mid, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, sender_seq, receiver_seq FROM ins
UNION ALL SELECT 1, * FROM earlier
UNION ALL SELECT 2, NULL, NULL, sender, receiver, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL FROM refused"""
# The same as a function that takes the advisory locks of $9 first: a batch whose only write is its chats
# commits on its own, in one round trip (PgEngine.write_many's ``alone``); inside a transaction (which holds
# the locks) it is called with none. Planning the statement costs the server ~610 µs for one chat (its
# execution ~250), so a batch of at most SMALL_BATCH chats runs it planned once per connection (a plan that
# looks every row up by index, the right one for a few rows); a larger batch plans it at each call: a plan kept
# for every batch size joined the CTEs of a batch of thousands of chats row by row (measured: a saturated
# node's p99 0.5 s -> 27 s).
SMALL_BATCH = 128
_STORE_CHATS_PARAMS = "bigint[], text[], bigint[], bigint[], bigint[], text[], bigint[], bigint, bigint[]"
_STORE_CHATS_BODY = (LOCK_KEYS_AT_PARAM.format(n=9), SQL_STORE_CHATS)
STORE_CHATS_ROUTINE = routine(
    "glide_store_chats", _STORE_CHATS_PARAMS, f"TABLE (kind integer, {_CHAT_TYPES})", _STORE_CHATS_BODY
)
STORE_FEW_CHATS_ROUTINE = routine(
    "glide_store_few_chats",
    _STORE_CHATS_PARAMS,
    f"TABLE (kind integer, {_CHAT_TYPES})",
    _STORE_CHATS_BODY,
    settings=PLANNED_ONCE,
)
SQL_STORE_CHATS_CALL = STORE_CHATS_ROUTINE.call
SQL_STORE_FEW_CHATS_CALL = STORE_FEW_CHATS_ROUTINE.call


def store_chats_call(batch: Sequence[NewChat]) -> str:
    """The call that stores ``batch``: planned once for a few chats, at each call for more."""
    return SQL_STORE_FEW_CHATS_CALL if len(batch) <= SMALL_BATCH else SQL_STORE_CHATS_CALL


SQL_CHATS_BY_CLI_MID = (
    f"SELECT {M_COLUMNS} FROM unnest($1::bigint[], $2::text[]) AS k(sender, cli_mid) "
    "JOIN chat_messages m ON m.sender = k.sender AND m.cli_mid = k.cli_mid WHERE m.cli_mid <> ''"
)
# Take n positions of each uid's log (ascending uid order, so concurrent batches lock heads in one order).
SQL_HEADS_BUMP = (
    "INSERT INTO timeline_heads AS h (uid, head) SELECT uid, n FROM unnest($1::bigint[], $2::bigint[]) AS t(uid, n) "
    "ORDER BY uid ON CONFLICT (uid) DO UPDATE SET head = h.head + excluded.head RETURNING uid, head"
)
SQL_CONVERSATIONS_NEW = (
    "INSERT INTO conversations (owner, peer, read_mid, created_at) "
    "SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[]) "
    "ORDER BY 1, 2 ON CONFLICT DO NOTHING"
)
SQL_CHAT_BY_MID = f"SELECT {CHAT_COLUMNS} FROM chat_messages WHERE mid = $1"
SQL_CHAT_BY_MID_LOCK = f"SELECT {CHAT_COLUMNS} FROM chat_messages WHERE mid = $1 FOR UPDATE"
SQL_CHAT_BY_CLI_MID = f"SELECT {CHAT_COLUMNS} FROM chat_messages WHERE sender = $1 AND cli_mid = $2 AND cli_mid <> ''"
SQL_CURSOR = "SELECT cursor, acked FROM inbox_cursors WHERE uid = $1"
# What acknowledgements need, in one statement and no lock (the cursors are saved later, deferred): the
# acknowledged messages (kind 0) and the saved cursors of the receivers (kind 1: uid, cursor, acked).
SQL_ACKS_READ = f"""SELECT 0 AS kind, {CHAT_COLUMNS}, NULL, NULL, NULL FROM chat_messages WHERE mid = ANY($1::bigint[])
UNION ALL SELECT 1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, uid, cursor, acked
FROM inbox_cursors WHERE uid = ANY($2::bigint[])"""
# SQL_ACKS_READ planned once per connection (its planning cost ~95 µs, its execution ~35): two index scans of
# a list of keys, whatever its length.
ACKS_READ_ROUTINE = routine(
    "glide_acks_read",
    "bigint[], bigint[]",
    f"TABLE (kind integer, {_CHAT_TYPES}, uid bigint, cursor bigint, acked bigint[])",
    (SQL_ACKS_READ,),
    settings=PLANNED_ONCE,
)
SQL_ACKS_READ_CALL = ACKS_READ_ROUTINE.call
# A receiver's cursor row, created when missing, locked and returned (a recall or a clear of one inbox).
SQL_CURSORS_TAKE = (
    "INSERT INTO inbox_cursors AS c (uid, cursor, acked) SELECT uid, 0, '{}' FROM unnest($1::bigint[]) AS u(uid) "
    "ORDER BY uid ON CONFLICT (uid) DO UPDATE SET cursor = c.cursor RETURNING uid, cursor, acked"
)
# Save each (uid, cursor, acked) with the cursor moved over its acknowledged prefix (InboxCursor.advance, here
# so that the walk and the save are one round trip): the receiver's next n incoming positions above the
# cursor (n = acked + 1) are read, the cursor moves to the last of those that begin the list and are all
# acknowledged, and ``acked`` keeps the positions above it.
SQL_CURSORS_SAVE = """UPDATE inbox_cursors c SET cursor = a.cursor, acked = a.acked
FROM (
    SELECT u.uid, coalesce(w.top, u.cursor) AS cursor,
        array(SELECT x FROM unnest(u.acked) AS x WHERE x > coalesce(w.top, u.cursor) ORDER BY x) AS acked
    FROM unnest($1::bigint[], $2::bigint[], $3::text[]) AS t(uid, cursor, acked)
    CROSS JOIN LATERAL (SELECT t.uid, t.cursor, t.acked::bigint[] AS acked) u
    LEFT JOIN LATERAL (
        SELECT max(seq) FILTER (WHERE prefix) AS top FROM (
            SELECT seq, bool_and(seq = ANY(u.acked)) OVER (ORDER BY seq) AS prefix FROM (
                SELECT receiver_seq AS seq FROM chat_messages
                WHERE receiver = u.uid AND receiver_seq > u.cursor AND cardinality(u.acked) > 0
                ORDER BY receiver_seq LIMIT cardinality(u.acked) + 1
            ) incoming
        ) walk
    ) w ON true
) a WHERE c.uid = a.uid"""
SQL_INBOX_PAGE = (
    f"SELECT {CHAT_COLUMNS} FROM chat_messages WHERE receiver = $1 AND receiver_seq > $2 ORDER BY receiver_seq LIMIT $3"
)
SQL_INBOX_UP_TO_MID = "SELECT receiver_seq FROM chat_messages WHERE receiver = $1 AND receiver_seq > $2 AND mid <= $3"
SQL_RECALL = "UPDATE chat_messages SET status = $1, recalled_by = $2, sender_seq = $3, receiver_seq = $4 WHERE mid = $5"
SQL_HISTORY = (
    f"SELECT {CHAT_COLUMNS} FROM chat_messages WHERE peer_lo = $1 AND peer_hi = $2 AND mid < $3 "
    "ORDER BY mid DESC LIMIT $4"
)
SQL_LAST_MID = "SELECT max(mid) FROM chat_messages"


def _cursor(row: asyncpg.Record, at: int = 0) -> InboxCursor:
    return InboxCursor(row[at], row[at + 1])


async def take_positions(conn: WriteConn, uids: Sequence[int]) -> dict[int, list[int]]:
    """The next positions of each user's log, one per occurrence of the uid in ``uids``, ascending."""
    counts: dict[int, int] = {}
    for uid in uids:
        counts[uid] = counts.get(uid, 0) + 1
    order = sorted(counts)
    rows = await conn.fetch(SQL_HEADS_BUMP, order, [counts[u] for u in order])
    return {r[0]: list(range(r[1] - counts[r[0]] + 1, r[1] + 1)) for r in rows}


async def lock_cursors(conn: WriteConn, uids: Sequence[int]) -> dict[int, InboxCursor]:
    return {r[0]: _cursor(r, 1) for r in await conn.fetch(SQL_CURSORS_TAKE, sorted(set(uids)))}


async def save_cursors(conn: WriteConn, cursors: dict[int, InboxCursor]) -> None:
    """Store the cursors, each advanced over its acknowledged prefix: one statement for all."""
    order = sorted(cursors)
    await conn.execute(
        SQL_CURSORS_SAVE,
        order,
        [cursors[u].cursor for u in order],
        ["{" + ",".join(map(str, sorted(cursors[u].acked))) + "}" for u in order],
    )


async def _ack_reads(
    conn: WriteConn, wanted: list[tuple[int, Sequence[int]]]
) -> list[tuple[dict[int, ChatMessage], InboxCursor | None]]:
    """For each ``(uid, mids)`` of every combined call: the messages among ``mids`` and ``uid``'s saved cursor."""
    rows = await conn.fetch(
        SQL_ACKS_READ_CALL, sorted({mid for _, mids in wanted for mid in mids}), sorted({uid for uid, _ in wanted})
    )
    found: dict[int, ChatMessage] = {}
    saved: dict[int, InboxCursor] = {}
    for row in rows:
        if row[0] == 0:
            m = chat_from(row, 1)
            found[m.mid] = m
        else:
            saved[row[13]] = _cursor(row, 14)
    return [({mid: found[mid] for mid in mids if mid in found}, saved.get(uid)) for uid, mids in wanted]


def _chat_columns(batch: list[NewChat]) -> tuple[list[Any], ...]:
    """SQL_STORE_CHATS's parameters $1-$7."""
    return (
        [c.mid for c in batch],
        [enc(c.cli_mid) for c in batch],
        [c.sender for c in batch],
        [c.receiver for c in batch],
        [c.type for c in batch],
        [enc(c.content) for c in batch],
        [c.send_at for c in batch],
    )


def _used_mid(e: asyncpg.UniqueViolationError) -> StorageError:
    detail = getattr(e, "detail", "") or ""
    mid = detail.split("=(", 1)[1].split(")", 1)[0] if "=(" in detail else "?"
    return StorageError(f"message id {mid} is already used (do two nodes share a node_id?)")


class PgMessageStore:
    def __init__(self, engine: PgEngine, clock_ms: Callable[[], int]) -> None:
        self._engine = engine
        self._clock_ms = clock_ms
        self._conversations: set[tuple[int, int]] = set()
        engine.on_rollback.append(self._conversations.clear)  # what it saw inserted may not have been
        # Receivers' cursors as this node acknowledged them, not saved yet: every read of this node sees them.
        self._unsaved: dict[int, InboxCursor] = {}

    def _current(self, uid: int, saved: InboxCursor | None) -> InboxCursor:
        """``uid``'s cursor: the saved one with what this node acknowledged since (its unsaved cursor itself
        when that holds everything saved)."""
        mine = self._unsaved.get(uid)
        if mine is None:
            return saved if saved is not None else InboxCursor()
        if saved is not None and (saved.cursor > mine.cursor or not saved.acked <= mine.acked):
            return mine.union(saved)
        return mine

    async def store_chats(self, chats: Sequence[NewChat]) -> list[StoredChat]:
        check_new_chats(chats)
        if not chats:
            return []
        keys = [u for c in chats for u in (c.sender, c.receiver)]
        return await self._engine.write_many(
            "store_chats", chats, self._store_chats, keys=keys, alone=self._store_chats_alone
        )

    async def _store_chats(self, conn: WriteConn, batch: list[NewChat]) -> list[StoredChat]:
        """Store ``batch`` in order (the chats of every combined call): one result per chat."""
        now = self._clock_ms()
        try:  # (the transaction holds the locks: the routine takes none)
            rows = await conn.fetch(store_chats_call(batch), *_chat_columns(batch), now, [])
        except asyncpg.UniqueViolationError as e:
            raise _used_mid(e) from None
        return await self._stored(conn, batch, rows, now)

    async def _store_chats_alone(
        self, conn: WriteConn, batch: list[NewChat], keys: list[int]
    ) -> list[StoredChat] | None:
        """:meth:`_store_chats` as one statement with its locks, when it opens no conversation (a second
        statement); None otherwise."""
        known = self._conversations
        if any((c.sender, c.receiver) not in known or (c.receiver, c.sender) not in known for c in batch):
            return None
        now = self._clock_ms()
        rows = await conn.fetch(store_chats_call(batch), *_chat_columns(batch), now, keys)
        try:  # committed: what follows must not make the engine run the batch again
            return await self._stored(conn, batch, rows, now)
        except asyncpg.PostgresError as e:
            raise StorageError(f"storage failure after the messages were stored (a resend finds them): {e}") from None

    async def _stored(
        self, conn: WriteConn, batch: list[NewChat], rows: list[asyncpg.Record], now: int
    ) -> list[StoredChat]:
        """One result per chat of ``batch`` from what SQL_STORE_CHATS returned (and the conversations the
        stored ones open)."""
        positions: dict[int, tuple[int, int]] = {}
        earlier: dict[tuple[int, str], ChatMessage] = {}
        refused: set[tuple[int, int]] = set()
        for row in rows:
            kind = row[0]
            if kind == 0:
                positions[row[1]] = (row[11], row[12])
            elif kind == 1:
                before = chat_from(row, 1)
                earlier[(before.sender, before.cli_mid)] = before
            else:
                refused.add((row[3], row[4]))
        stored = {c.mid: ChatMessage(*_fields(c), now, 0, None, *positions[c.mid]) for c in batch if c.mid in positions}
        # A chat the statement meant to append that did not go in: another node stored its key meanwhile.
        went_in = {(m.sender, m.cli_mid) for m in stored.values()}
        lost = {
            key
            for c in batch
            if c.cli_mid
            and (key := (c.sender, c.cli_mid)) not in went_in
            and key not in earlier
            and (c.sender, c.receiver) not in refused
        }
        if lost:
            earlier |= await self._earlier(conn, lost)
        await self._new_conversations(conn, list(stored.values()))
        out: list[StoredChat] = []
        for c in batch:
            m = stored.get(c.mid)
            if m is not None:
                out.append(StoredChat(m, False))
                if c.cli_mid:
                    earlier[(c.sender, c.cli_mid)] = m  # its repeats later in the batch are duplicates
            elif c.cli_mid and (c.sender, c.cli_mid) in earlier:
                out.append(StoredChat(earlier[(c.sender, c.cli_mid)], True))
            else:
                out.append(StoredChat(ChatMessage(*_fields(c), now, 0, None), False, True))
        return out

    async def _earlier(self, conn: WriteConn, keys: set[tuple[int, str]]) -> dict[tuple[int, str], ChatMessage]:
        ordered = sorted(keys)
        rows = await conn.fetch(SQL_CHATS_BY_CLI_MID, [s for s, _ in ordered], [enc(k) for _, k in ordered])
        return {(m.sender, m.cli_mid): m for m in map(chat_from, rows)}

    async def _new_conversations(self, conn: WriteConn, messages: list[ChatMessage]) -> None:
        known = self._conversations
        if len(known) >= KNOWN_CONVERSATIONS:
            known.clear()
        rows = [
            (owner, peer, 0, m.created_at)
            for m in messages
            for owner, peer in dict.fromkeys(((m.sender, m.receiver), (m.receiver, m.sender)))
            if (owner, peer) not in known
        ]
        if rows:
            await conn.execute(SQL_CONVERSATIONS_NEW, *(list(col) for col in zip(*rows, strict=True)))
            # Forgotten again if this is rolled back (engine.on_rollback).
            known.update((owner, peer) for owner, peer, _, _ in rows)

    async def chat(self, mid: int) -> ChatMessage | None:
        if not is_id(mid):
            return None
        row = await self._engine.fetchrow(SQL_CHAT_BY_MID, mid)
        return chat_from(row) if row else None

    async def chat_by_cli_mid(self, sender: int, cli_mid: str) -> ChatMessage | None:
        if not cli_mid or not is_id(sender):
            return None
        check_text(cli_mid, "cli_mid")
        row = await self._engine.fetchrow(SQL_CHAT_BY_CLI_MID, sender, enc(cli_mid))
        return chat_from(row) if row else None

    async def inbox(self, uid: int, *, after_seq: int = 0, limit: int = 200) -> list[ChatMessage]:
        check_int(uid, "uid")
        check_int(after_seq, "after_seq")
        limit = max(1, min(limit, MAX_INBOX_PAGE))

        async def op(conn: Conn) -> list[ChatMessage]:
            row = await conn.fetchrow(SQL_CURSOR, uid)
            state = self._current(uid, _cursor(row) if row else None)
            rows = await conn.fetch(SQL_INBOX_PAGE, uid, max(after_seq, state.cursor), limit + len(state.acked))
            return state.page(map(chat_from, rows), limit)

        return await self._engine.read(op)

    async def ack_inbox(self, uid: int, mids: Sequence[int]) -> list[ChatMessage]:
        (acked,) = await self.ack_inboxes([(uid, mids)])
        return acked

    async def ack_inboxes(self, requests: Sequence[tuple[int, Sequence[int]]]) -> list[list[ChatMessage]]:
        """Acknowledged at once in this node's memory (what every later read of this node sees); the cursors
        reach the database with a later transaction, within DEFERRED_S. A crash before that, or the receiver
        logging in on another node meanwhile, only means those messages are delivered once more (receivers
        recognise a mid they have seen). What they need is read in the writer's next batch (it sees every
        message committed before, and the receipts go out with that batch's deliveries)."""
        wanted = ack_requests(requests)
        if not any(mids for _, mids in wanted):
            return [[] for _ in wanted]
        reads = await self._engine.write_many("ack_inboxes", wanted, _ack_reads, reads=True)
        answers: list[list[ChatMessage]] = []
        for (uid, mids), (found, saved) in zip(wanted, reads, strict=True):
            cursor = self._current(uid, saved)
            acked = cursor.acknowledge(uid, mids, found)
            if acked:
                self._unsaved[uid] = cursor
            answers.append(acked)
        if self._unsaved:
            self._engine.defer(self, self._take_unsaved)
        return answers

    def _take_unsaved(self) -> DeferredWrite:
        """The write of the cursors acknowledged so far: each merged with the saved one (another node may have
        saved since), advanced and saved. Once committed, those no acknowledgement changed meanwhile are
        forgotten (reads find them saved); if it fails, they are deferred again."""
        taken = {uid: cursor.copy() for uid, cursor in self._unsaved.items()}

        async def save(conn: WriteConn) -> None:
            if not taken:
                return
            locked = await lock_cursors(conn, list(taken))
            await save_cursors(conn, {uid: cursor.union(locked[uid]) for uid, cursor in taken.items()})

        def settled(error: BaseException | None) -> None:
            if error is not None:
                self._engine.defer(self, self._take_unsaved)
                return
            for uid, cursor in taken.items():
                if self._unsaved.get(uid) == cursor:
                    del self._unsaved[uid]

        return DeferredWrite(save, sorted(taken), settled)

    async def clear_inbox(self, uid: int, up_to_mid: int | None = None) -> int:
        check_int(uid, "uid")
        if up_to_mid is not None:
            check_int(up_to_mid, "up_to_mid")

        async def op(conn: WriteConn) -> int:
            cursor = self._current(uid, (await lock_cursors(conn, [uid]))[uid]).copy()  # not its own: may roll back
            limit = INT64_MAX if up_to_mid is None else up_to_mid
            seqs = [r[0] for r in await conn.fetch(SQL_INBOX_UP_TO_MID, uid, cursor.cursor, limit)]
            cleared = sum(cursor.ack(seq) for seq in seqs)
            if cleared:
                await save_cursors(conn, {uid: cursor})
            return cleared

        return await self._engine.write(op, keys=[uid])

    async def recall(self, mid: int, by_uid: int, *, not_before_ms: int) -> ChatMessage:
        check_int(by_uid, "by_uid")
        check_int(not_before_ms, "not_before_ms")
        if not is_id(mid):
            raise NotFound(f"message {mid} not found")

        async def op(conn: WriteConn) -> ChatMessage:
            row = await conn.fetchrow(SQL_CHAT_BY_MID_LOCK, mid)
            m = check_recall(chat_from(row) if row else None, mid, by_uid, not_before_ms)
            if m.status == STATUS_RECALLED:
                return m
            positions = await take_positions(conn, list(dict.fromkeys((m.sender, m.receiver))))
            s_seq, r_seq = positions[m.sender][0], positions[m.receiver][0]
            await conn.execute(SQL_RECALL, STATUS_RECALLED, by_uid, s_seq, r_seq, mid)
            cursor = self._current(m.receiver, (await lock_cursors(conn, [m.receiver]))[m.receiver]).copy()
            if not cursor.is_pending(m.receiver_seq):  # acknowledged before: the recall notice is too
                cursor.ack(r_seq)
                await save_cursors(conn, {m.receiver: cursor})
            return recalled(m, by_uid, s_seq, r_seq)

        return await self._engine.write(op, keys=[by_uid])  # the receiver is known inside: rare, retried

    async def history(self, uid: int, peer: int, *, before_mid: int = 0, limit: int = 20) -> list[ChatMessage]:
        check_int(uid, "uid")
        check_int(peer, "peer")
        check_int(before_mid, "before_mid")
        lo, hi = min(uid, peer), max(uid, peer)
        before = before_mid if before_mid > 0 else INT64_MAX
        limit = max(1, min(limit, MAX_HISTORY_PAGE))
        return [chat_from(r) for r in await self._engine.fetch(SQL_HISTORY, lo, hi, before, limit)]

    async def last_mid(self) -> int:
        return int(await self._engine.fetchval(SQL_LAST_MID) or 0)


def _fields(c: NewChat | ChatMessage) -> tuple[int, str, int, int, int, str, int]:
    return c.mid, c.cli_mid, c.sender, c.receiver, c.type, c.content, c.send_at
