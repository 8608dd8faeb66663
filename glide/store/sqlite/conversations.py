"""The SQLite backend of :class:`glide.store.conversations.ConversationStore`, and the bookkeeping the
message path runs inside its own transaction (:class:`ChatBookkeeping`)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from glide.errors import BadRequest, NotFound, UserNotFound
from glide.store.base import ChatMessage
from glide.store.checks import INT64_MAX, check_id, check_int
from glide.store.conversations import MAX_RECENT, MAX_SYNC_PAGE, Conversation, TimelineEntry, TimelinePage
from glide.store.sqlite.contacts import refuses
from glide.store.sqlite.engine import SqliteEngine

CHAT_COLUMNS = "mid, cli_mid, sender, receiver, type, content, send_at, created_at, status, recalled_by"
_M = ", ".join("m." + c.strip() for c in CHAT_COLUMNS.split(","))
CONV_COLUMNS = "c.owner, c.peer, c.last_mid, c.read_mid, c.unread, c.created_at, c.updated_at"

# Every query, named so tests can check each one is served by an index.
SQL_CONV_UPSERT = (
    "INSERT INTO conversations (owner, peer, last_mid, read_mid, unread, created_at, updated_at) "
    "VALUES (?1, ?2, ?3, 0, ?4, ?5, ?5) ON CONFLICT (owner, peer) DO UPDATE SET "
    "last_mid = max(last_mid, excluded.last_mid), updated_at = max(updated_at, excluded.updated_at), "
    "unread = unread + (excluded.unread > 0 AND excluded.last_mid > read_mid)"
)
SQL_TIMELINE_HEAD = "SELECT seq FROM timeline WHERE uid = ? ORDER BY seq DESC LIMIT 1"
SQL_TIMELINE_INSERT = "INSERT INTO timeline (uid, seq, mid) VALUES (?, ?, ?)"
SQL_TIMELINE_PAGE = (
    f"SELECT t.seq, {_M} FROM timeline t JOIN chat_messages m ON m.mid = t.mid "
    "WHERE t.uid = ? AND t.seq > ? ORDER BY t.seq LIMIT ?"
)
SQL_RECENT = (
    f"SELECT {CONV_COLUMNS}, {_M} FROM conversations c LEFT JOIN chat_messages m ON m.mid = c.last_mid "
    "WHERE c.owner = ? ORDER BY c.updated_at DESC, c.last_mid DESC, c.peer DESC LIMIT ?"
)
SQL_CONVERSATION = (
    f"SELECT {CONV_COLUMNS}, {_M} FROM conversations c LEFT JOIN chat_messages m ON m.mid = c.last_mid "
    "WHERE c.owner = ? AND c.peer = ?"
)
SQL_UNREAD = (
    "SELECT count(*) FROM chat_messages WHERE peer_lo = ? AND peer_hi = ? AND mid > ? AND sender = ? AND sender <> ?"
)


def _conversation(row: tuple[object, ...]) -> Conversation:
    last = ChatMessage(*row[7:]) if row[7] is not None else None  # type: ignore[arg-type]
    owner, peer, last_mid, read_mid, unread, created_at, updated_at = row[:7]
    return Conversation(owner, peer, last_mid, read_mid, unread, created_at, updated_at, last)  # type: ignore[arg-type]


class ChatBookkeeping:
    """What storing or recalling 1:1 messages does besides the message row, inside the writer's transaction.
    One instance per transaction: it remembers timeline heads, so a batch costs one head lookup per user."""

    __slots__ = ("_conn", "_heads", "_refused")

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._heads: dict[int, int] = {}
        self._refused: dict[tuple[int, int], bool] = {}

    def refused(self, sender: int, receiver: int) -> bool:
        """The receiver's rule, looked up once per pair and batch (a batch is one transaction)."""
        pair = (sender, receiver)
        answer = self._refused.get(pair)
        if answer is None:
            answer = self._refused[pair] = refuses(self._conn, sender, receiver)
        return answer

    def stored(self, m: ChatMessage) -> None:
        """A new message: both conversations, both timelines."""
        conn = self._conn
        conn.execute(SQL_CONV_UPSERT, (m.sender, m.receiver, m.mid, 0, m.created_at))
        if m.receiver != m.sender:
            conn.execute(SQL_CONV_UPSERT, (m.receiver, m.sender, m.mid, 1, m.created_at))
        self.append(m)

    def append(self, m: ChatMessage) -> None:
        """Append ``m`` to the timelines of its sender and receiver."""
        for uid in {m.sender, m.receiver}:
            head = self._heads.get(uid)
            if head is None:
                row = self._conn.execute(SQL_TIMELINE_HEAD, (uid,)).fetchone()
                head = int(row[0]) if row else 0
            head += 1
            self._conn.execute(SQL_TIMELINE_INSERT, (uid, head, m.mid))
            self._heads[uid] = head


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
            now = clock()
            conn.execute(
                "INSERT INTO conversations (owner, peer, last_mid, read_mid, unread, created_at, updated_at) "
                "VALUES (?, ?, 0, 0, 0, ?, ?) ON CONFLICT (owner, peer) DO NOTHING",
                (owner, peer, now, now),
            )
            return _conversation(conn.execute(SQL_CONVERSATION, (owner, peer)).fetchone())

        return await self._engine.write(op)

    async def mark_read(self, owner: int, peer: int, *, up_to_mid: int = 0) -> Conversation:
        check_id(owner, "owner")
        check_id(peer, "peer")
        if not isinstance(up_to_mid, int) or isinstance(up_to_mid, bool) or not 0 <= up_to_mid <= INT64_MAX:
            raise BadRequest(f"mid: expected a non-negative integer, got {up_to_mid!r:.40}")
        lo, hi = min(owner, peer), max(owner, peer)

        def op(conn: sqlite3.Connection) -> Conversation:
            row = conn.execute(SQL_CONVERSATION, (owner, peer)).fetchone()
            if row is None:
                raise NotFound(f"no conversation with user {peer}")
            current = _conversation(row)
            read = max(current.read_mid, up_to_mid or current.last_mid)
            if read == current.read_mid:
                return current
            unread = int(conn.execute(SQL_UNREAD, (lo, hi, read, peer, owner)).fetchone()[0])
            conn.execute(
                "UPDATE conversations SET read_mid = ?, unread = ? WHERE owner = ? AND peer = ?",
                (read, unread, owner, peer),
            )
            return Conversation(
                owner,
                peer,
                current.last_mid,
                read,
                unread,
                current.created_at,
                current.updated_at,
                current.last,
            )

        return await self._engine.write(op)

    async def timeline(self, owner: int, *, after_seq: int = 0, limit: int = 100) -> TimelinePage:
        check_id(owner, "owner")
        check_int(after_seq, "after_seq", 0)
        n = max(1, min(limit, MAX_SYNC_PAGE))

        def op(conn: sqlite3.Connection) -> TimelinePage:
            rows = conn.execute(SQL_TIMELINE_PAGE, (owner, after_seq, n + 1)).fetchall()
            more = len(rows) > n
            entries = [TimelineEntry(r[0], ChatMessage(*r[1:])) for r in rows[:n]]
            head_row = conn.execute(SQL_TIMELINE_HEAD, (owner,)).fetchone()
            head = int(head_row[0]) if head_row else 0
            cursor = entries[-1].seq if entries else after_seq
            return TimelinePage(entries, cursor, max(head, cursor), more)

        return await self._engine.read(op)

    async def timeline_head(self, owner: int) -> int:
        check_id(owner, "owner")

        def op(conn: sqlite3.Connection) -> int:
            row = conn.execute(SQL_TIMELINE_HEAD, (owner,)).fetchone()
            return int(row[0]) if row else 0

        return await self._engine.read(op)
