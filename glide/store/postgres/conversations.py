"""Conversations and timelines on PostgreSQL (glide.store.conversations.ConversationStore), and the
bookkeeping the message path runs inside its own transaction.

The bookkeeping is set-based (a fixed number of statements per batch) and takes its row locks in key order
(conversations by (owner, peer), timeline heads by uid), so that batches of several nodes rarely deadlock;
when they do, the engine re-runs the losing operation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import asyncpg

from glide.errors import BadRequest, NotFound, UserNotFound
from glide.store.base import ChatMessage
from glide.store.checks import INT64_MAX, check_id, check_int
from glide.store.contacts import RELATION_BLACK, RELATION_WHITE
from glide.store.conversations import MAX_RECENT, MAX_SYNC_PAGE, Conversation, TimelineEntry, TimelinePage
from glide.store.postgres.engine import Conn, PgEngine, WriteConn
from glide.store.postgres.rows import M_COLUMNS, chat_from

CONV_COLUMNS = "c.owner, c.peer, c.last_mid, c.read_mid, c.unread, c.created_at, c.updated_at"

# Every query, named so tests can check each one is served by an index.
SQL_REFUSED = (
    "SELECT p.sender, p.receiver FROM unnest($1::bigint[], $2::bigint[]) AS p(sender, receiver) "
    "LEFT JOIN relations r ON r.owner = p.receiver AND r.other = p.sender "
    "LEFT JOIN privacy v ON v.uid = p.receiver "
    f"WHERE r.type = {RELATION_BLACK} "
    f"OR (coalesce(v.whitelist_only, false) AND r.type IS DISTINCT FROM {RELATION_WHITE})"
)
# One row per (owner, peer) of the batch; the receiver's unread grows by its messages above read_mid.
SQL_CONV_UPSERT = (
    "INSERT INTO conversations AS c (owner, peer, last_mid, read_mid, unread, created_at, updated_at) "
    "SELECT owner, peer, max(mid), 0, count(*) FILTER (WHERE incoming), min(at), max(at) "
    "FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::boolean[], $5::bigint[]) "
    "AS t(owner, peer, mid, incoming, at) GROUP BY owner, peer ORDER BY owner, peer "
    "ON CONFLICT (owner, peer) DO UPDATE SET "
    "last_mid = greatest(c.last_mid, excluded.last_mid), updated_at = greatest(c.updated_at, excluded.updated_at), "
    "unread = c.unread + (SELECT count(*) FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::boolean[]) "
    "AS u(owner, peer, mid, incoming) "
    "WHERE u.owner = c.owner AND u.peer = c.peer AND u.incoming AND u.mid > c.read_mid)"
)
# Take n seqs for each uid (ascending uid order, so concurrent batches lock heads in one order).
SQL_HEADS_BUMP = (
    "INSERT INTO timeline_heads AS h (uid, head) SELECT uid, n FROM unnest($1::bigint[], $2::bigint[]) AS t(uid, n) "
    "ORDER BY uid ON CONFLICT (uid) DO UPDATE SET head = h.head + excluded.head RETURNING uid, head"
)
SQL_TIMELINE_INSERT = (
    "INSERT INTO timeline (uid, seq, mid) SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[])"
)
SQL_TIMELINE_HEAD = "SELECT head FROM timeline_heads WHERE uid = $1"
SQL_TIMELINE_PAGE = (
    f"SELECT t.seq, {M_COLUMNS} FROM timeline t JOIN chat_messages m ON m.mid = t.mid "
    "WHERE t.uid = $1 AND t.seq > $2 ORDER BY t.seq LIMIT $3"
)
SQL_RECENT = (
    f"SELECT {CONV_COLUMNS}, {M_COLUMNS} FROM conversations c LEFT JOIN chat_messages m ON m.mid = c.last_mid "
    "WHERE c.owner = $1 ORDER BY c.updated_at DESC, c.last_mid DESC, c.peer DESC LIMIT $2"
)
SQL_CONVERSATION = (
    f"SELECT {CONV_COLUMNS}, {M_COLUMNS} FROM conversations c LEFT JOIN chat_messages m ON m.mid = c.last_mid "
    "WHERE c.owner = $1 AND c.peer = $2"
)
SQL_CONVERSATION_LOCK = SQL_CONVERSATION + " FOR UPDATE OF c"
SQL_UNREAD = (
    "SELECT count(*) FROM chat_messages "
    "WHERE peer_lo = $1 AND peer_hi = $2 AND mid > $3 AND sender = $4 AND sender <> $5"
)


def _conversation(row: asyncpg.Record) -> Conversation:
    last = chat_from(row, 7) if row[7] is not None else None
    return Conversation(row[0], row[1], row[2], row[3], row[4], row[5], row[6], last)


async def refused_pairs(conn: Conn, pairs: Sequence[tuple[int, int]]) -> set[tuple[int, int]]:
    """The (sender, receiver) pairs whose receiver refuses the sender (glide.store.contacts), one statement."""
    wanted = sorted({(s, r) for s, r in pairs if s != r})
    if not wanted:
        return set()
    rows = await conn.fetch(SQL_REFUSED, [s for s, _ in wanted], [r for _, r in wanted])
    return {(r[0], r[1]) for r in rows}


async def record_new_chats(conn: WriteConn, messages: Sequence[ChatMessage]) -> None:
    """New messages: both conversations (the receiver's unread + 1), both timelines."""
    if not messages:
        return
    rows: list[tuple[int, int, int, bool, int]] = []
    for m in messages:
        rows.append((m.sender, m.receiver, m.mid, False, m.created_at))
        if m.receiver != m.sender:
            rows.append((m.receiver, m.sender, m.mid, True, m.created_at))
    await conn.execute(SQL_CONV_UPSERT, *(list(col) for col in zip(*rows, strict=True)))
    await append_timelines(conn, messages)


async def append_timelines(conn: WriteConn, messages: Sequence[ChatMessage]) -> None:
    """Append each message, in order, to the timelines of its sender and receiver."""
    if not messages:
        return
    per_uid: dict[int, list[int]] = {}
    for m in messages:
        for uid in dict.fromkeys((m.sender, m.receiver)):
            per_uid.setdefault(uid, []).append(m.mid)
    uids = sorted(per_uid)
    heads: dict[int, int] = {
        r[0]: r[1] for r in await conn.fetch(SQL_HEADS_BUMP, uids, [len(per_uid[u]) for u in uids])
    }
    t_uid: list[int] = []
    t_seq: list[int] = []
    t_mid: list[int] = []
    for uid in uids:
        mids = per_uid[uid]
        first = heads[uid] - len(mids) + 1
        t_uid += [uid] * len(mids)
        t_seq += range(first, first + len(mids))
        t_mid += mids
    await conn.execute(SQL_TIMELINE_INSERT, t_uid, t_seq, t_mid)


class PgConversationStore:
    def __init__(self, engine: PgEngine, clock_ms: Callable[[], int]) -> None:
        self._engine = engine
        self._clock_ms = clock_ms

    async def recent(self, owner: int, *, limit: int = MAX_RECENT) -> list[Conversation]:
        check_id(owner, "owner")
        n = max(1, min(limit, MAX_RECENT))
        return [_conversation(r) for r in await self._engine.fetch(SQL_RECENT, owner, n)]

    async def conversation(self, owner: int, peer: int) -> Conversation | None:
        check_id(owner, "owner")
        check_id(peer, "peer")
        row = await self._engine.fetchrow(SQL_CONVERSATION, owner, peer)
        return _conversation(row) if row else None

    async def open_conversation(self, owner: int, peer: int) -> Conversation:
        check_id(owner, "owner")
        check_id(peer, "peer")
        clock = self._clock_ms

        async def op(conn: WriteConn) -> Conversation:
            if await conn.fetchval("SELECT 1 FROM users WHERE uid = $1", peer) is None:
                raise UserNotFound(f"user {peer} does not exist")
            now = clock()
            await conn.execute(
                "INSERT INTO conversations (owner, peer, last_mid, read_mid, unread, created_at, updated_at) "
                "VALUES ($1, $2, 0, 0, 0, $3, $3) ON CONFLICT (owner, peer) DO NOTHING",
                owner,
                peer,
                now,
            )
            row = await conn.fetchrow(SQL_CONVERSATION, owner, peer)
            assert row is not None
            return _conversation(row)

        return await self._engine.write(op)

    async def mark_read(self, owner: int, peer: int, *, up_to_mid: int = 0) -> Conversation:
        check_id(owner, "owner")
        check_id(peer, "peer")
        if not isinstance(up_to_mid, int) or isinstance(up_to_mid, bool) or not 0 <= up_to_mid <= INT64_MAX:
            raise BadRequest(f"mid: expected a non-negative integer, got {up_to_mid!r:.40}")
        lo, hi = min(owner, peer), max(owner, peer)

        async def op(conn: WriteConn) -> Conversation:
            row = await conn.fetchrow(SQL_CONVERSATION_LOCK, owner, peer)
            if row is None:
                raise NotFound(f"no conversation with user {peer}")
            current = _conversation(row)
            read = max(current.read_mid, up_to_mid or current.last_mid)
            if read == current.read_mid:
                return current
            unread = int(await conn.fetchval(SQL_UNREAD, lo, hi, read, peer, owner))
            await conn.execute(
                "UPDATE conversations SET read_mid = $1, unread = $2 WHERE owner = $3 AND peer = $4",
                read,
                unread,
                owner,
                peer,
            )
            return Conversation(
                owner, peer, current.last_mid, read, unread, current.created_at, current.updated_at, current.last
            )

        return await self._engine.write(op)

    async def timeline(self, owner: int, *, after_seq: int = 0, limit: int = 100) -> TimelinePage:
        check_id(owner, "owner")
        check_int(after_seq, "after_seq", 0)
        n = max(1, min(limit, MAX_SYNC_PAGE))

        async def op(conn: Conn) -> TimelinePage:
            rows = await conn.fetch(SQL_TIMELINE_PAGE, owner, after_seq, n + 1)
            more = len(rows) > n
            entries = [TimelineEntry(r[0], chat_from(r, 1)) for r in rows[:n]]
            head = int(await conn.fetchval(SQL_TIMELINE_HEAD, owner) or 0)
            cursor = entries[-1].seq if entries else after_seq
            return TimelinePage(entries, cursor, max(head, cursor), more)

        return await self._engine.read(op)

    async def timeline_head(self, owner: int) -> int:
        check_id(owner, "owner")
        return int(await self._engine.fetchval(SQL_TIMELINE_HEAD, owner) or 0)
