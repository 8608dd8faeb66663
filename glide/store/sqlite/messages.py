"""1:1 messages on SQLite (the semantics of glide.store.base.MessageStore): an append-only log.

A message is one row appended to the log (glide.store.sqlite.message_log, which also writes its index
entries later, in sorted bulk); its positions in the sender's and the receiver's log (``sender_seq``,
``receiver_seq``) are allocated by the writer (the only writer of the file), so each user's log is in commit
order. A receiver's inbox is a cursor over its log (``inbox_cursors``, one row per receiver, saved DEFERRED_S
after an acknowledgement, together with every cursor moved meanwhile). A batch of messages costs a fixed
number of statements: one duplicate lookup, one refusal lookup, one ``executemany`` of the rows, one of new
conversations.

The writer keeps log heads and inbox cursors in memory (bounded); they are read from the database the first
time a user is seen and forgotten whenever writes are rolled back.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

from glide.errors import NotFound, StorageError
from glide.store.base import MAX_HISTORY_PAGE, MAX_INBOX_PAGE, STATUS_RECALLED, ChatMessage, NewChat, StoredChat
from glide.store.checks import INT64_MAX, check_int, check_text, is_id
from glide.store.contacts import RELATION_BLACK, RELATION_WHITE
from glide.store.message_checks import InboxCursor, ack_requests, check_new_chats, check_recall, recalled
from glide.store.sqlite.contacts import Refusers, refuses
from glide.store.sqlite.engine import SqliteEngine
from glide.store.sqlite.message_log import (
    COLUMNS,
    M_COLUMNS,
    SQL_BY_MID,
    SQL_INSERT,
    SQL_MOVED_DROP,
    Epoch,
    MessageLog,
    chat_row,
)

T = TypeVar("T")
logger = logging.getLogger("glide.store")
CACHE_LIMIT = 100_000  # users whose log head / inbox cursor the writer keeps in memory
# The newest messages the writer stored, remembered for the acknowledgements that name them: at most
# RECENT_LIMIT, each of at most RECENT_CONTENT characters (a longer one is read when its acknowledgement
# comes), so a flood of large messages nobody acknowledges holds a few MiB, not the messages themselves.
RECENT_LIMIT = 16_384
RECENT_CONTENT = 512
TRACK_LIMIT = 256  # pending messages of a receiver that the writer tracks (more: it asks the database)
CHUNK = 400  # ids per IN (...) list, keys per VALUES list
INDEX_RETRY_S = 1.0  # after the background worker failed to write an epoch

# Every query of the message path, named so tests can check each one is served by an index.
SQL_CURSOR = "SELECT cursor, acked FROM inbox_cursors WHERE uid = ?"
SQL_CURSOR_SAVE = (
    "INSERT INTO inbox_cursors (uid, cursor, acked) VALUES (?, ?, ?) "
    "ON CONFLICT (uid) DO UPDATE SET cursor = excluded.cursor, acked = excluded.acked"
)
SQL_CONVERSATION_NEW = (
    "INSERT INTO conversations (owner, peer, read_mid, created_at) VALUES (?, ?, 0, ?) ON CONFLICT DO NOTHING"
)
SQL_LAST_MID = "SELECT max(mid) FROM chat_messages"


@functools.cache
def sql_duplicates(n: int) -> str:
    """Indexed messages with one of ``n`` (sender, cli_mid) keys (the tail's are in memory)."""
    keys = ", ".join(["(?, ?)"] * n)
    return (
        f"WITH k(sender, cli_mid) AS (VALUES {keys}) SELECT {M_COLUMNS} FROM k JOIN chat_by_cli_mid i "
        "ON i.sender = k.sender AND i.cli_mid = k.cli_mid JOIN chat_messages m ON m.pos = i.pos"
    )


@functools.cache
def sql_refused(n: int) -> str:
    """Which of ``n`` (sender, receiver) pairs the receiver refuses (the rule of glide.store.contacts)."""
    pairs = ", ".join(["(?, ?)"] * n)
    return (
        f"WITH p(sender, receiver) AS (VALUES {pairs}) SELECT p.sender, p.receiver FROM p "
        "LEFT JOIN relations r ON r.owner = p.receiver AND r.other = p.sender "
        "LEFT JOIN privacy v ON v.uid = p.receiver "
        f"WHERE r.type = {RELATION_BLACK} OR (coalesce(v.whitelist_only, 0) AND r.type IS NOT {RELATION_WHITE})"
    )


@functools.cache
def sql_by_mids(n: int) -> str:
    return f"SELECT {COLUMNS} FROM chat_messages WHERE mid IN ({', '.join('?' * n)})"


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def padded_chunks(items: Sequence[T]) -> Iterator[list[T]]:
    """Chunks of at most CHUNK items, each padded to a power of two (or CHUNK) by repeating its last item.

    A query over a chunk then comes in a dozen lengths, which SQLite's statement cache keeps prepared; with a
    length per batch size it compiled a VALUES list of up to CHUNK tuples again and again. The repeats change
    no answer that is gathered into a set or a dict, as every caller's is."""
    for chunk in chunks(items):
        n = len(chunk)
        size = min(1 << (n - 1).bit_length(), CHUNK)
        yield [*chunk, *[chunk[-1]] * (size - n)]


class WriterState:
    """What the writer thread remembers between batches: each user's log head, each receiver's inbox cursor
    and, for a receiver with few pending messages, their positions (so that acknowledging needs no query).
    Only ops on the writer thread touch it, and every write of the file goes through that thread, so it
    stays exact; ``forget`` (on every rollback) drops it all, the database being the truth."""

    __slots__ = ("conversations", "cursors", "heads", "log", "pending", "recent", "unsaved")

    def __init__(self) -> None:
        self.log = MessageLog()
        self.heads: dict[int, int] = {}
        self.cursors: dict[int, InboxCursor] = {}
        # Receiver -> its pending incoming positions, ascending; absent: not tracked (too many, or not loaded).
        # None pending is the empty tuple, shared: an empty list would cost 56 bytes per idle receiver.
        self.pending: dict[int, list[int] | tuple[()]] = {}
        self.conversations: set[tuple[int, int]] = set()  # (owner, peer) rows known to exist
        self.recent: dict[int, ChatMessage] = {}  # the newest messages stored, by mid: what acks mostly name
        self.unsaved: dict[int, InboxCursor] = {}  # cursors moved by acknowledgements, not yet in the file

    def forget(self) -> None:
        self.log.forget()
        self.unsaved.clear()
        self.recent.clear()
        self.heads.clear()
        self.cursors.clear()
        self.pending.clear()
        self.conversations.clear()

    def forget_receiver(self, uid: int) -> None:
        """Drop what is remembered of ``uid``'s inbox (its cursor was just saved)."""
        self.cursors.pop(uid, None)
        self.pending.pop(uid, None)
        self.unsaved.pop(uid, None)

    def next_seq(self, conn: sqlite3.Connection, uid: int) -> int:
        """Take the next position of ``uid``'s log."""
        head = self.heads.get(uid)
        if head is None:
            if len(self.heads) >= CACHE_LIMIT:
                self.heads.clear()
            head = self.log.head(conn, uid)
        head += 1
        self.heads[uid] = head
        return head

    def stored(self, messages: list[ChatMessage]) -> None:
        recent = self.recent
        if len(recent) >= RECENT_LIMIT:  # dicts keep insertion order: drop the older half
            for mid in list(itertools.islice(recent, RECENT_LIMIT // 2)):
                del recent[mid]
        for m in messages:
            if len(m.content) <= RECENT_CONTENT:
                recent[m.mid] = m

    def messages(self, conn: sqlite3.Connection, mids: Sequence[int]) -> dict[int, ChatMessage]:
        """The stored messages among ``mids``."""
        recent = self.recent
        found = {mid: m for mid in mids if (m := recent.get(mid)) is not None}
        missing = [mid for mid in mids if mid not in found]
        for chunk in padded_chunks(missing):
            found.update((r[0], chat_row(r)) for r in conn.execute(sql_by_mids(len(chunk)), chunk))
        return found

    def cursor(self, conn: sqlite3.Connection, uid: int) -> InboxCursor:
        state = self.cursors.get(uid)
        if state is None:
            if len(self.cursors) >= CACHE_LIMIT:
                self.cursors = dict(self.unsaved)  # unsaved ones stay: they are the only copy
                self.pending.clear()
            state = self.cursors[uid] = self._stored_cursor(conn, uid)
            n = TRACK_LIMIT + len(state.acked)
            seqs = self.incoming(conn, uid, state.cursor, n + 1)
            if len(seqs) <= n:
                self.pending[uid] = [seq for seq in seqs if seq not in state.acked] or ()
        return state

    def peek(self, conn: sqlite3.Connection, uid: int) -> InboxCursor:
        """``uid``'s cursor to read by: the cached one (it may hold acknowledgements not saved yet), else the
        row's, not cached (a user who only logs in and reads keeps no state here: memory per session)."""
        state = self.cursors.get(uid)
        return state if state is not None else self._stored_cursor(conn, uid)

    @staticmethod
    def _stored_cursor(conn: sqlite3.Connection, uid: int) -> InboxCursor:
        row = conn.execute(SQL_CURSOR, (uid,)).fetchone()
        return InboxCursor.decode(row[0], row[1]) if row else InboxCursor()

    def acknowledge(
        self, uid: int, mids: Sequence[int], found: dict[int, ChatMessage], cursor: InboxCursor
    ) -> list[ChatMessage]:
        acked = cursor.acknowledge(uid, mids, found)
        pending = self.pending.get(uid)
        if isinstance(pending, list):
            for m in acked:
                pending.remove(m.receiver_seq)  # the oldest, when acknowledged in order: found at once
            if not pending:
                self.pending[uid] = ()
        return acked

    def advance(self, conn: sqlite3.Connection, uid: int, state: InboxCursor) -> tuple[int, int, str]:
        """Move ``uid``'s cursor over its acknowledged prefix; the row to save."""
        if state.acked:
            pending = self.pending.get(uid)
            if pending is not None:
                state.settle(pending[0] if pending else None)
            else:
                state.advance(self.incoming(conn, uid, state.cursor, state.walk_limit))
        return uid, state.cursor, state.encode()

    def incoming(self, conn: sqlite3.Connection, uid: int, after: int, limit: int) -> list[int]:
        """``uid``'s next incoming positions above ``after``."""
        return self.log.incoming_seqs(conn, uid, after, limit)

    def new_conversations(self, messages: Sequence[ChatMessage]) -> list[tuple[int, int, int]]:
        """Rows for the conversations ``messages`` open (both sides), skipping those known to exist."""
        known = self.conversations
        if len(known) >= CACHE_LIMIT:
            known.clear()
        rows: list[tuple[int, int, int]] = []
        for m in messages:  # (both sides written out: no tuple of pairs to loop over per message)
            sender, receiver = m.sender, m.receiver
            if (sender, receiver) not in known:
                known.add((sender, receiver))
                rows.append((sender, receiver, m.created_at))
            if (receiver, sender) not in known:
                known.add((receiver, sender))
                rows.append((receiver, sender, m.created_at))
        return rows


def _refused(conn: sqlite3.Connection, refusers: Refusers, chats: list[NewChat]) -> set[tuple[int, int]]:
    """The (sender, receiver) pairs of ``chats`` whose receiver refuses the sender."""
    may_refuse = refusers.loaded(conn)
    wanted = sorted({(c.sender, c.receiver) for c in chats if c.receiver in may_refuse and c.sender != c.receiver})
    if not wanted:  # the usual case: no receiver has ever refused anyone
        return set()
    if len(wanted) == 1:  # the common case of a quiet moment: the plain query, cheaper than a VALUES list
        sender, receiver = wanted[0]
        return set(wanted) if refuses(conn, sender, receiver) else set()
    refused: set[tuple[int, int]] = set()
    for chunk in padded_chunks(wanted):
        params = [x for pair in chunk for x in pair]
        refused.update((r[0], r[1]) for r in conn.execute(sql_refused(len(chunk)), params))
    return refused


def _duplicates(
    conn: sqlite3.Connection, log: MessageLog, keys: list[tuple[int, str]]
) -> dict[tuple[int, str], ChatMessage]:
    """The stored messages with these (sender, cli_mid) keys, among those the log's key filter may hold: the
    tail's from memory, the others from the index tables."""
    log.load(conn)
    keys = log.key_filter.maybe(keys)  # every key stored (in the tail too) is among these: new ones mostly not
    if not keys:
        return {}
    found = log.tail.keyed_many(keys)
    keys = [key for key in keys if key not in found]
    if len(keys) == 1:
        m = log.indexed_by_cli_mid(conn, *keys[0])  # (the filter and the tail were asked above)
        return {**found, keys[0]: m} if m else found
    for chunk in padded_chunks(keys):
        params: list[object] = [x for key in chunk for x in key]
        for row in conn.execute(sql_duplicates(len(chunk)), params):
            m = chat_row(row)
            found[(m.sender, m.cli_mid)] = m
    return found


class SqliteMessageStore:
    def __init__(self, engine: SqliteEngine, clock_ms: Callable[[], int], refusers: Refusers) -> None:
        self._engine = engine
        self._clock_ms = clock_ms
        self._refusers = refusers
        self._state = WriterState()
        self._unmoved: list[int] = []  # chat_moved rows to drop (_drop_moved)
        engine.on_rollback.append(self._state.forget)

    @property
    def log(self) -> MessageLog:
        """The message log this store writes (the conversation store reads it too)."""
        return self._state.log

    async def store_chats(self, chats: Sequence[NewChat]) -> list[StoredChat]:
        check_new_chats(chats)
        if not chats:
            return []
        batch = list(chats)
        clock_ms = self._clock_ms
        state, refusers = self._state, self._refusers

        def op(conn: sqlite3.Connection) -> list[StoredChat]:
            now = clock_ms()
            keys = list(dict.fromkeys([(c.sender, c.cli_mid) for c in batch if c.cli_mid]))
            earlier = _duplicates(conn, state.log, keys) if keys else {}
            refused = _refused(conn, refusers, batch)
            out: list[StoredChat] = []
            new: list[ChatMessage] = []
            next_seq, pending = state.next_seq, state.pending
            for c in batch:
                key = (c.sender, c.cli_mid)
                first = earlier.get(key) if c.cli_mid else None
                if first is not None:
                    out.append(StoredChat(first, True))
                    continue
                sender, receiver = c.sender, c.receiver
                if (sender, receiver) in refused:
                    out.append(StoredChat(ChatMessage(*_fields(c), now, 0, None), False, True))
                    continue
                s_seq = next_seq(conn, sender)
                r_seq = s_seq if receiver == sender else next_seq(conn, receiver)
                tracked = pending.get(receiver)  # the receiver's pending positions, if tracked: one more
                if type(tracked) is list:
                    tracked.append(r_seq)
                elif tracked is not None:
                    pending[receiver] = [r_seq]
                m = ChatMessage(
                    c.mid, c.cli_mid, sender, receiver, c.type, c.content, c.send_at, now, 0, None, s_seq, r_seq
                )
                new.append(m)
                if c.cli_mid:
                    earlier[key] = m  # a repeat later in this batch is a duplicate of this one
                out.append(StoredChat(m, False))
            if new:
                rows = state.log.append(conn, new)
                try:
                    conn.executemany(SQL_INSERT, rows)
                except sqlite3.IntegrityError as e:
                    raise StorageError(_collision(conn, new, e)) from e
                state.stored(new)
                conversations = state.new_conversations(new)
                if conversations:
                    conn.executemany(SQL_CONVERSATION_NEW, conversations)
            return out

        stored = await self._engine.write(op)
        if self._state.log.due():
            self._index()
        return stored

    def _index(self, *, now: bool = False) -> None:
        """Start an epoch of the log when one is due, or ``now`` (between transactions: every row of the tail is
        committed); the background worker writes it."""
        epoch = self._state.log.start(now=now)
        if epoch is not None:
            self._write(epoch)

    def _write(self, epoch: Epoch) -> None:
        log = self._state.log
        if log.epoch is epoch:  # else a rollback dropped it meanwhile (the rows are read again from the file)
            self._engine.background(log.job(epoch), lambda result: self._written(epoch, result))

    def _written(self, epoch: Epoch, result: object) -> None:
        """Between transactions: the worker's answer. What a dropped epoch wrote is harmless (entries of
        committed rows, written again by the next one)."""
        log = self._state.log
        if log.epoch is not epoch:
            return
        if isinstance(result, BaseException):
            # Its messages stay in the tail, read from there; the same failure soon fails the store's writes too
            # (a full disk, a lost file).
            logger.warning("writing the log's index entries failed (tried again in %g s): %s", INDEX_RETRY_S, result)
            asyncio.get_running_loop().call_later(INDEX_RETRY_S, self._write, epoch)
            return
        dropped = log.indexed_epoch(epoch)
        if dropped:
            self._unmoved += dropped
            self._engine.with_next(self, self._drop_moved)
        self._index()

    def _drop_moved(self, conn: sqlite3.Connection) -> None:
        """Recalls whose entries an epoch rewrote: their old positions are not needed any more (were this lost
        in a rollback, the next epoch would rewrite them again)."""
        unmoved, self._unmoved = self._unmoved, []
        conn.executemany(SQL_MOVED_DROP, [(pos,) for pos in unmoved])

    async def chat(self, mid: int) -> ChatMessage | None:
        if not is_id(mid):
            return None

        def op(conn: sqlite3.Connection) -> ChatMessage | None:
            row = conn.execute(SQL_BY_MID, (mid,)).fetchone()
            return chat_row(row) if row else None

        return await self._engine.read(op)

    async def chat_by_cli_mid(self, sender: int, cli_mid: str) -> ChatMessage | None:
        if not cli_mid or not is_id(sender):
            return None
        check_text(cli_mid, "cli_mid")

        log = self._state.log

        def op(conn: sqlite3.Connection) -> ChatMessage | None:
            return _duplicates(conn, log, [(sender, cli_mid)]).get((sender, cli_mid))

        return await self._engine.read(op)

    async def inbox(self, uid: int, *, after_seq: int = 0, limit: int = 200) -> list[ChatMessage]:
        check_int(uid, "uid")
        check_int(after_seq, "after_seq")
        limit = max(1, min(limit, MAX_INBOX_PAGE))

        writer = self._state

        def op(conn: sqlite3.Connection) -> list[ChatMessage]:
            state = writer.peek(conn, uid)
            after = max(after_seq, state.cursor)
            return state.page(writer.log.incoming(conn, uid, after, limit + len(state.acked)), limit)

        return await self._engine.read(op)

    async def ack_inbox(self, uid: int, mids: Sequence[int]) -> list[ChatMessage]:
        (acked,) = await self.ack_inboxes([(uid, mids)])
        return acked

    async def ack_inboxes(self, requests: Sequence[tuple[int, Sequence[int]]]) -> list[list[ChatMessage]]:
        """Acknowledged at once in the writer's memory (what every later read of this node sees); the cursors
        reach the file in a transaction DEFERRED_S later. A crash before that only means those messages are
        delivered once more (receivers recognise a mid they have seen)."""
        wanted = ack_requests(requests)
        if not any(mids for _, mids in wanted):
            return [[] for _ in wanted]
        all_mids = sorted({mid for _, mids in wanted for mid in mids})
        state = self._state

        def op(conn: sqlite3.Connection) -> list[list[ChatMessage]]:
            found = state.messages(conn, all_mids)
            answers: list[list[ChatMessage]] = []
            for uid, mids in wanted:
                cursor = state.cursors.get(uid)  # state.cursor's usual case inline
                if cursor is None:
                    cursor = state.cursor(conn, uid)
                acked = state.acknowledge(uid, mids, found, cursor)
                if acked:
                    state.unsaved[uid] = cursor
                answers.append(acked)
            return answers

        answers = await self._engine.read(op)
        if state.unsaved:
            self._engine.defer(self, self._save_cursors)
        return answers

    def _save_cursors(self, conn: sqlite3.Connection) -> None:
        state = self._state
        unsaved, state.unsaved = state.unsaved, {}
        conn.executemany(SQL_CURSOR_SAVE, [state.advance(conn, uid, c) for uid, c in unsaved.items()])

    async def clear_inbox(self, uid: int, up_to_mid: int | None = None) -> int:
        check_int(uid, "uid")
        if up_to_mid is not None:
            check_int(up_to_mid, "up_to_mid")
        state = self._state

        def op(conn: sqlite3.Connection) -> int:
            cursor = state.cursor(conn, uid)
            limit = INT64_MAX if up_to_mid is None else up_to_mid
            seqs = state.log.incoming_up_to_mid(conn, uid, cursor.cursor, limit)
            cleared = sum(cursor.ack(seq) for seq in seqs)
            if cleared:
                state.pending.pop(uid, None)  # the walk below asks the database
                conn.execute(SQL_CURSOR_SAVE, state.advance(conn, uid, cursor))
            state.forget_receiver(uid)
            return cleared

        return await self._engine.write(op)

    async def recall(self, mid: int, by_uid: int, *, not_before_ms: int) -> ChatMessage:
        check_int(by_uid, "by_uid")
        check_int(not_before_ms, "not_before_ms")
        if not is_id(mid):
            raise NotFound(f"message {mid} not found")
        state = self._state

        def op(conn: sqlite3.Connection) -> ChatMessage:
            row = conn.execute(SQL_BY_MID, (mid,)).fetchone()
            m = check_recall(chat_row(row) if row else None, mid, by_uid, not_before_ms)
            if m.status == STATUS_RECALLED:
                return m
            s_seq = state.next_seq(conn, m.sender)
            r_seq = s_seq if m.receiver == m.sender else state.next_seq(conn, m.receiver)
            moved = recalled(m, by_uid, s_seq, r_seq)
            state.log.move(conn, m, moved)
            cursor = state.cursor(conn, m.receiver)
            state.pending.pop(m.receiver, None)  # the message moved: the walk below asks the database
            if not cursor.is_pending(m.receiver_seq):  # acknowledged before: the recall notice is too
                cursor.ack(r_seq)
                conn.execute(SQL_CURSOR_SAVE, state.advance(conn, m.receiver, cursor))
            state.forget_receiver(m.receiver)
            state.recent.pop(mid, None)
            return moved

        return await self._engine.write(op)

    async def history(self, uid: int, peer: int, *, before_mid: int = 0, limit: int = 20) -> list[ChatMessage]:
        check_int(uid, "uid")
        check_int(peer, "peer")
        check_int(before_mid, "before_mid")
        lo, hi = min(uid, peer), max(uid, peer)
        before = before_mid if before_mid > 0 else INT64_MAX
        limit = max(1, min(limit, MAX_HISTORY_PAGE))
        log = self._state.log

        def op(conn: sqlite3.Connection) -> list[ChatMessage]:
            return log.history(conn, lo, hi, before, limit)

        return await self._engine.read(op)

    async def last_mid(self) -> int:
        return await self._engine.read(lambda conn: int(conn.execute(SQL_LAST_MID).fetchone()[0] or 0))


def _collision(conn: sqlite3.Connection, new: list[ChatMessage], error: sqlite3.IntegrityError) -> str:
    """Which message of a failed insert has a mid that is used: the first whose stored row is not itself (the
    rows before it went in)."""
    for m in new:
        stored = conn.execute("SELECT sender, cli_mid, created_at FROM chat_messages WHERE mid = ?", (m.mid,))
        if stored.fetchone() not in (None, (m.sender, m.cli_mid, m.created_at)):
            return f"message id {m.mid} is already used (do two nodes share a node_id?)"
    return f"storage failure: {error}"


def _fields(c: NewChat) -> tuple[int, str, int, int, int, str, int]:
    return c.mid, c.cli_mid, c.sender, c.receiver, c.type, c.content, c.send_at
