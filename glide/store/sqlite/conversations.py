"""The SQLite backend of :class:`glide.store.conversations.ConversationStore`.

Nothing here is written per message: a conversation row (owner, peer, read_mid) is created once per pair
(by the message path, glide.store.sqlite.messages), and everything else is derived when it is read from the
message log (glide.store.sqlite.message_log) — the last message and the unread count from the pair's
entries, the timeline from each message's log positions.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from glide.errors import BadRequest, NotFound, UserNotFound
from glide.store.checks import INT64_MAX, check_id, check_int
from glide.store.conversations import MAX_RECENT, MAX_SYNC_PAGE, Conversation, TimelineEntry, TimelinePage
from glide.store.sqlite.engine import SqliteEngine
from glide.store.sqlite.message_log import SQL_BY_MID, MessageLog, chat_row

# Every query, named so tests can check each one is served by an index.
SQL_OWNED = "SELECT peer, read_mid, created_at FROM conversations WHERE owner = ?"
SQL_ONE = "SELECT peer, read_mid, created_at FROM conversations WHERE owner = ? AND peer = ?"
SQL_READ = "UPDATE conversations SET read_mid = ? WHERE owner = ? AND peer = ?"
SQL_OPEN = "INSERT INTO conversations (owner, peer, read_mid, created_at) VALUES (?, ?, 0, ?) ON CONFLICT DO NOTHING"


class SqliteConversationStore:
    def __init__(self, engine: SqliteEngine, clock_ms: Callable[[], int], log: MessageLog) -> None:
        self._engine = engine
        self._clock_ms = clock_ms
        self._log = log

    def _conversation(self, conn: sqlite3.Connection, owner: int, row: tuple[int, int, int]) -> Conversation:
        peer, read_mid, created_at = row
        last_mid, unread = self._log.pair_state(conn, owner, peer, read_mid)
        last_row = conn.execute(SQL_BY_MID, (last_mid,)).fetchone() if last_mid else None
        last = chat_row(last_row) if last_row else None
        updated_at = last.created_at if last is not None else created_at
        return Conversation(owner, peer, last_mid, read_mid, unread, created_at, updated_at, last)

    def _one(self, conn: sqlite3.Connection, owner: int, peer: int) -> Conversation | None:
        self._log.load(conn)
        row = conn.execute(SQL_ONE, (owner, peer)).fetchone()
        return self._conversation(conn, owner, row) if row else None

    async def recent(self, owner: int, *, limit: int = MAX_RECENT) -> list[Conversation]:
        check_id(owner, "owner")
        n = max(1, min(limit, MAX_RECENT))

        def op(conn: sqlite3.Connection) -> list[Conversation]:
            self._log.load(conn)
            every = [self._conversation(conn, owner, row) for row in conn.execute(SQL_OWNED, (owner,)).fetchall()]
            every.sort(key=lambda c: (c.updated_at, c.last_mid, c.peer), reverse=True)
            return every[:n]

        return await self._engine.read(op)

    async def conversation(self, owner: int, peer: int) -> Conversation | None:
        check_id(owner, "owner")
        check_id(peer, "peer")
        return await self._engine.read(lambda conn: self._one(conn, owner, peer))

    async def open_conversation(self, owner: int, peer: int) -> Conversation:
        check_id(owner, "owner")
        check_id(peer, "peer")
        clock = self._clock_ms

        def op(conn: sqlite3.Connection) -> Conversation:
            if conn.execute("SELECT 1 FROM users WHERE uid = ?", (peer,)).fetchone() is None:
                raise UserNotFound(f"user {peer} does not exist")
            conn.execute(SQL_OPEN, (owner, peer, clock()))
            opened = self._one(conn, owner, peer)
            assert opened is not None
            return opened

        return await self._engine.write(op)

    async def mark_read(self, owner: int, peer: int, *, up_to_mid: int = 0) -> Conversation:
        check_id(owner, "owner")
        check_id(peer, "peer")
        if not isinstance(up_to_mid, int) or isinstance(up_to_mid, bool) or not 0 <= up_to_mid <= INT64_MAX:
            raise BadRequest(f"mid: expected a non-negative integer, got {up_to_mid!r:.40}")

        def op(conn: sqlite3.Connection) -> Conversation:
            current = self._one(conn, owner, peer)
            if current is None:
                raise NotFound(f"no conversation with user {peer}")
            read = max(current.read_mid, up_to_mid or current.last_mid)
            if read == current.read_mid:
                return current
            conn.execute(SQL_READ, (read, owner, peer))
            updated = self._one(conn, owner, peer)
            assert updated is not None
            return updated

        return await self._engine.write(op)

    async def timeline(self, owner: int, *, after_seq: int = 0, limit: int = 100) -> TimelinePage:
        check_id(owner, "owner")
        check_int(after_seq, "after_seq", 0)
        n = max(1, min(limit, MAX_SYNC_PAGE))
        log = self._log

        def op(conn: sqlite3.Connection) -> TimelinePage:
            rows = log.log(conn, owner, after_seq, n + 1)
            more = len(rows) > n
            entries = [TimelineEntry(seq, m) for seq, m in rows[:n]]
            cursor = entries[-1].seq if entries else after_seq
            return TimelinePage(entries, cursor, max(log.head(conn, owner), cursor), more)

        return await self._engine.read(op)

    async def timeline_head(self, owner: int) -> int:
        check_id(owner, "owner")
        log = self._log
        return await self._engine.read(lambda conn: log.head(conn, owner))
