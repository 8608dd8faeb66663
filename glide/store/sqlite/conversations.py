"""The SQLite backend of :class:`glide.store.conversations.ConversationStore`.

Nothing here is written per message: a conversation row (owner, peer, read_mid) is created once per pair
(by the message path, glide.store.sqlite.messages), and everything else is derived when it is read — the
last message and the unread count from the conversation index of ``chat_messages``, the timeline from the
log positions of each message.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from glide.errors import BadRequest, NotFound, UserNotFound
from glide.store.base import ChatMessage
from glide.store.checks import INT64_MAX, check_id, check_int
from glide.store.conversations import MAX_RECENT, MAX_SYNC_PAGE, Conversation, TimelineEntry, TimelinePage
from glide.store.sqlite.engine import SqliteEngine
from glide.store.sqlite.messages import CHAT_COLUMNS

_M = ", ".join("m." + c.strip() for c in CHAT_COLUMNS.split(","))
_PAIR = "peer_lo = min(c.owner, c.peer) AND peer_hi = max(c.owner, c.peer)"
# owner, peer, read_mid, created_at, unread, then the last message (NULLs when there is none).
_CONVERSATION = (
    f"SELECT c.owner, c.peer, c.read_mid, c.created_at, "
    f"(SELECT count(*) FROM chat_messages WHERE {_PAIR} AND mid > c.read_mid AND sender = c.peer "
    f"AND sender <> c.owner), {_M} FROM conversations c "
    f"LEFT JOIN chat_messages m ON m.mid = (SELECT max(mid) FROM chat_messages WHERE {_PAIR}) "
)

# Every query, named so tests can check each one is served by an index.
SQL_RECENT = (
    _CONVERSATION + "WHERE c.owner = ? ORDER BY coalesce(m.created_at, c.created_at) DESC, "
    "coalesce(m.mid, 0) DESC, c.peer DESC LIMIT ?"
)
SQL_CONVERSATION = _CONVERSATION + "WHERE c.owner = ? AND c.peer = ?"
SQL_READ = "UPDATE conversations SET read_mid = ? WHERE owner = ? AND peer = ?"
SQL_OPEN = "INSERT INTO conversations (owner, peer, read_mid, created_at) VALUES (?, ?, 0, ?) ON CONFLICT DO NOTHING"
# Both directions of the owner's log, each bounded by the page size, merged by position.
SQL_TIMELINE_PAGE = (
    f"SELECT * FROM (SELECT sender_seq, {CHAT_COLUMNS} FROM chat_messages WHERE sender = ?1 AND sender_seq > ?2 "
    "ORDER BY sender_seq LIMIT ?3) "
    f"UNION ALL SELECT * FROM (SELECT receiver_seq, {CHAT_COLUMNS} FROM chat_messages "
    "WHERE receiver = ?1 AND receiver_seq > ?2 AND sender <> ?1 ORDER BY receiver_seq LIMIT ?3) "
    "ORDER BY 1 LIMIT ?3"
)
SQL_TIMELINE_HEAD = (
    "SELECT max(coalesce((SELECT max(sender_seq) FROM chat_messages WHERE sender = ?1), 0), "
    "coalesce((SELECT max(receiver_seq) FROM chat_messages WHERE receiver = ?1), 0))"
)


def _conversation(row: tuple[object, ...]) -> Conversation:
    owner, peer, read_mid, created_at, unread = row[:5]
    last = ChatMessage(*row[5:]) if row[5] is not None else None  # type: ignore[arg-type]
    updated_at = last.created_at if last is not None else created_at
    last_mid = last.mid if last is not None else 0
    return Conversation(owner, peer, last_mid, read_mid, unread, created_at, updated_at, last)  # type: ignore[arg-type]


def _head(conn: sqlite3.Connection, owner: int) -> int:
    return int(conn.execute(SQL_TIMELINE_HEAD, (owner,)).fetchone()[0])


class SqliteConversationStore:
    def __init__(self, engine: SqliteEngine, clock_ms: Callable[[], int]) -> None:
        self._engine = engine
        self._clock_ms = clock_ms

    async def recent(self, owner: int, *, limit: int = MAX_RECENT) -> list[Conversation]:
        check_id(owner, "owner")
        n = max(1, min(limit, MAX_RECENT))
        return await self._engine.read(lambda conn: [_conversation(r) for r in conn.execute(SQL_RECENT, (owner, n))])

    async def conversation(self, owner: int, peer: int) -> Conversation | None:
        check_id(owner, "owner")
        check_id(peer, "peer")

        def op(conn: sqlite3.Connection) -> Conversation | None:
            row = conn.execute(SQL_CONVERSATION, (owner, peer)).fetchone()
            return _conversation(row) if row else None

        return await self._engine.read(op)

    async def open_conversation(self, owner: int, peer: int) -> Conversation:
        check_id(owner, "owner")
        check_id(peer, "peer")
        clock = self._clock_ms

        def op(conn: sqlite3.Connection) -> Conversation:
            if conn.execute("SELECT 1 FROM users WHERE uid = ?", (peer,)).fetchone() is None:
                raise UserNotFound(f"user {peer} does not exist")
            conn.execute(SQL_OPEN, (owner, peer, clock()))
            return _conversation(conn.execute(SQL_CONVERSATION, (owner, peer)).fetchone())

        return await self._engine.write(op)

    async def mark_read(self, owner: int, peer: int, *, up_to_mid: int = 0) -> Conversation:
        check_id(owner, "owner")
        check_id(peer, "peer")
        if not isinstance(up_to_mid, int) or isinstance(up_to_mid, bool) or not 0 <= up_to_mid <= INT64_MAX:
            raise BadRequest(f"mid: expected a non-negative integer, got {up_to_mid!r:.40}")

        def op(conn: sqlite3.Connection) -> Conversation:
            row = conn.execute(SQL_CONVERSATION, (owner, peer)).fetchone()
            if row is None:
                raise NotFound(f"no conversation with user {peer}")
            current = _conversation(row)
            read = max(current.read_mid, up_to_mid or current.last_mid)
            if read == current.read_mid:
                return current
            conn.execute(SQL_READ, (read, owner, peer))
            return _conversation(conn.execute(SQL_CONVERSATION, (owner, peer)).fetchone())

        return await self._engine.write(op)

    async def timeline(self, owner: int, *, after_seq: int = 0, limit: int = 100) -> TimelinePage:
        check_id(owner, "owner")
        check_int(after_seq, "after_seq", 0)
        n = max(1, min(limit, MAX_SYNC_PAGE))

        def op(conn: sqlite3.Connection) -> TimelinePage:
            rows = conn.execute(SQL_TIMELINE_PAGE, (owner, after_seq, n + 1)).fetchall()
            more = len(rows) > n
            entries = [TimelineEntry(r[0], ChatMessage(*r[1:])) for r in rows[:n]]
            cursor = entries[-1].seq if entries else after_seq
            return TimelinePage(entries, cursor, max(_head(conn, owner), cursor), more)

        return await self._engine.read(op)

    async def timeline_head(self, owner: int) -> int:
        check_id(owner, "owner")
        return await self._engine.read(lambda conn: _head(conn, owner))
