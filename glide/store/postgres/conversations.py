"""Conversations and timelines on PostgreSQL (glide.store.conversations.ConversationStore).

As on SQLite (glide.store.sqlite.conversations), nothing is written per message: a conversation row (owner,
peer, read_mid) is created once per pair by the message path, and the last message, the unread count and the
timeline are derived from ``chat_messages`` when read. The log heads live in ``timeline_heads``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import asyncpg

from glide.errors import BadRequest, NotFound, UserNotFound
from glide.store.checks import INT64_MAX, check_id, check_int
from glide.store.contacts import RELATION_BLACK, RELATION_WHITE
from glide.store.conversations import MAX_RECENT, MAX_SYNC_PAGE, Conversation, TimelineEntry, TimelinePage
from glide.store.postgres.connection import Conn, WriteConn
from glide.store.postgres.engine import PgEngine
from glide.store.postgres.rows import CHAT_COLUMNS, M_COLUMNS, chat_from

_PAIR = "peer_lo = least(c.owner, c.peer) AND peer_hi = greatest(c.owner, c.peer)"
# owner, peer, read_mid, created_at, unread, then the last message (NULLs when there is none).
_CONVERSATION = (
    "SELECT c.owner, c.peer, c.read_mid, c.created_at, "
    f"(SELECT count(*) FROM chat_messages WHERE {_PAIR} AND mid > c.read_mid AND sender = c.peer "
    f"AND sender <> c.owner), {M_COLUMNS} FROM conversations c "
    f"LEFT JOIN chat_messages m ON m.mid = (SELECT max(mid) FROM chat_messages WHERE {_PAIR}) "
)

# Every query, named so tests can check each one is served by an index.


def refusals_of(pairs: str) -> str:
    """``FROM … WHERE …`` of the (sender, receiver) pairs of ``pairs`` (a FROM item of two bigint columns,
    named ``p`` here) whose receiver refuses the sender. Each pair's rows are looked up by key (LATERAL …
    LIMIT 1, each a primary key's row), whatever plan a routine planned once keeps (a join may scan an index
    whole, as plans made on small tables do)."""
    return (
        f"FROM {pairs} AS p(sender, receiver) "
        "LEFT JOIN LATERAL (SELECT type FROM relations WHERE owner = p.receiver AND other = p.sender LIMIT 1) r "
        "ON true "
        "LEFT JOIN LATERAL (SELECT whitelist_only FROM privacy WHERE uid = p.receiver LIMIT 1) v ON true "
        f"WHERE r.type = {RELATION_BLACK} "
        f"OR (coalesce(v.whitelist_only, false) AND r.type IS DISTINCT FROM {RELATION_WHITE})"
    )


SQL_REFUSED = "SELECT p.sender, p.receiver " + refusals_of("unnest($1::bigint[], $2::bigint[])")
SQL_RECENT = (
    _CONVERSATION + "WHERE c.owner = $1 ORDER BY coalesce(m.created_at, c.created_at) DESC, "
    "coalesce(m.mid, 0) DESC, c.peer DESC LIMIT $2"
)
SQL_CONVERSATION = _CONVERSATION + "WHERE c.owner = $1 AND c.peer = $2"
SQL_CONVERSATION_LOCK = SQL_CONVERSATION + " FOR UPDATE OF c"
SQL_READ = "UPDATE conversations SET read_mid = $1 WHERE owner = $2 AND peer = $3"
SQL_OPEN = "INSERT INTO conversations (owner, peer, read_mid, created_at) VALUES ($1, $2, 0, $3) ON CONFLICT DO NOTHING"
# Both directions of the owner's log, each bounded by the page size, merged by position.
SQL_TIMELINE_PAGE = (
    f"(SELECT sender_seq AS seq, {CHAT_COLUMNS} FROM chat_messages WHERE sender = $1 AND sender_seq > $2 "
    "ORDER BY sender_seq LIMIT $3) "
    f"UNION ALL (SELECT receiver_seq, {CHAT_COLUMNS} FROM chat_messages "
    "WHERE receiver = $1 AND receiver_seq > $2 AND sender <> $1 ORDER BY receiver_seq LIMIT $3) "
    "ORDER BY 1 LIMIT $3"
)
SQL_TIMELINE_HEAD = "SELECT head FROM timeline_heads WHERE uid = $1"


def _conversation(row: asyncpg.Record) -> Conversation:
    owner, peer, read_mid, created_at, unread = row[0], row[1], row[2], row[3], row[4]
    last = chat_from(row, 5) if row[5] is not None else None
    updated_at = last.created_at if last is not None else created_at
    return Conversation(owner, peer, last.mid if last else 0, read_mid, unread, created_at, updated_at, last)


async def refused_pairs(conn: Conn, pairs: Sequence[tuple[int, int]]) -> set[tuple[int, int]]:
    """The (sender, receiver) pairs whose receiver refuses the sender (glide.store.contacts), one statement."""
    wanted = sorted({(s, r) for s, r in pairs if s != r})
    if not wanted:
        return set()
    rows = await conn.fetch(SQL_REFUSED, [s for s, _ in wanted], [r for _, r in wanted])
    return {(r[0], r[1]) for r in rows}


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
            await conn.execute(SQL_OPEN, owner, peer, now)
            row = await conn.fetchrow(SQL_CONVERSATION, owner, peer)
            assert row is not None
            return _conversation(row)

        return await self._engine.write(op)

    async def mark_read(self, owner: int, peer: int, *, up_to_mid: int = 0) -> Conversation:
        check_id(owner, "owner")
        check_id(peer, "peer")
        if not isinstance(up_to_mid, int) or isinstance(up_to_mid, bool) or not 0 <= up_to_mid <= INT64_MAX:
            raise BadRequest(f"mid: expected a non-negative integer, got {up_to_mid!r:.40}")

        async def op(conn: WriteConn) -> Conversation:
            row = await conn.fetchrow(SQL_CONVERSATION_LOCK, owner, peer)
            if row is None:
                raise NotFound(f"no conversation with user {peer}")
            current = _conversation(row)
            read = max(current.read_mid, up_to_mid or current.last_mid)
            if read == current.read_mid:
                return current
            await conn.execute(SQL_READ, read, owner, peer)
            row = await conn.fetchrow(SQL_CONVERSATION, owner, peer)
            assert row is not None
            return _conversation(row)

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
