"""The 1:1 message log on SQLite: rows appended at once, their index entries written later in sorted bulk, by
another thread into another file.

``chat_messages`` is append-only in write order (``pos``, allocated by the writer: the only writer of the
file); its only index is the unique ``mid``, which grows with it. What reads look messages up by lives in
four index tables — by (sender, cli_mid), by (receiver, receiver_seq), by (sender, sender_seq), by the
conversation's pair and mid — in the *index database* (glide.store.sqlite.background), which only the
background worker writes. Maintaining those in place would cost a dirty page per message per index per
commit (their keys are scattered over every user); instead the writer keeps the rows written since the last
indexing in memory (the *tail*, with a view per user and per pair) and, once the tail is big or old enough,
the worker writes the index entries of that *epoch* in one transaction of its own, each index's sorted by key
(entries of one user land together, so a page takes many at once), while the loop goes on committing
messages: no entry passes through Python, nothing of it holds the event loop, and neither thread waits for
the other's lock (each writes its own file).

Reads combine both: the index tables for positions up to ``indexed`` (the last epoch the worker finished)
and the tail's views above it (glide.store.sqlite.message_tail). ``indexed`` is saved with the epoch's
entries; after a crash the rows above it are read back into the tail and indexed again. A recall gives a
message new positions in its users' logs: until an epoch has rewritten its entries, its old and new positions
are masked in what the index tables answer and the tail answers for them (``chat_moved`` keeps the old
positions across a restart).
"""

from __future__ import annotations

import dataclasses
import heapq
import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from glide._native import KeyFilter
from glide.store.base import ChatMessage
from glide.store.sqlite.background import INDEXES
from glide.store.sqlite.message_tail import RECEIVER_SEQ, Moved, Tail

log = logging.getLogger("glide.store")

COLUMNS = (
    "mid, cli_mid, sender, receiver, type, content, send_at, created_at, status, recalled_by, sender_seq, receiver_seq"
)
M_COLUMNS = ", ".join("m." + c.strip() for c in COLUMNS.split(","))
# An epoch dirties about a page per active user per index table however few of its entries are theirs, so a bigger
# epoch writes fewer pages per message; with the worker writing it, its size costs the loop nothing but the tail's
# memory, ~590 bytes per message (~39 MiB at this size, twice that while an epoch is written). Full case1, 4 runs
# alternating with epochs of 32,768 / 2 s: 65.2 against 69.4 µs per message (medians), p99 23.8 against 28.8 ms.
EPOCH_ROWS = 65536  # a tail this long is indexed...
EPOCH_AGE_S = 4.0  # ...and so is an older one

# Every query, named so tests can check each one is served by an index. The index tables are read up to the
# indexed position only: entries of an epoch being written are also in the tail.
SQL_INSERT = f"INSERT INTO chat_messages (pos, {COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, NULL, ?, ?)"
SQL_BY_MID = f"SELECT {COLUMNS} FROM chat_messages WHERE mid = ?"
SQL_POS_BY_MID = "SELECT pos FROM chat_messages WHERE mid = ?"
SQL_BY_CLI_MID = (
    f"SELECT {M_COLUMNS} FROM chat_by_cli_mid k JOIN chat_messages m ON m.pos = k.pos "
    "WHERE k.sender = ? AND k.cli_mid = ?"
)
SQL_TAIL = f"SELECT pos, {COLUMNS} FROM chat_messages WHERE pos > ? ORDER BY pos"
SQL_INDEXED = "SELECT pos, mid FROM chat_indexed WHERE id = 1"
SQL_KEYS = f"SELECT sender, cli_mid FROM {INDEXES}.chat_by_cli_mid"
SQL_MID_AT = "SELECT mid FROM main.chat_messages WHERE pos = ?"
SQL_LAST_POS = "SELECT coalesce(max(pos), 0) FROM main.chat_messages"
SQL_MOVE = "UPDATE chat_messages SET status = ?, recalled_by = ?, sender_seq = ?, receiver_seq = ? WHERE pos = ?"
SQL_MOVED_SAVE = "INSERT OR IGNORE INTO chat_moved (pos, sender_seq, receiver_seq) VALUES (?, ?, ?)"
SQL_MOVED_LOAD = (
    f"SELECT v.sender_seq, v.receiver_seq, m.pos, {M_COLUMNS} FROM chat_moved v JOIN chat_messages m ON m.pos = v.pos"
)
SQL_MOVED_DROP = "DELETE FROM chat_moved WHERE pos = ?"
SQL_HEAD = (
    "SELECT max(coalesce((SELECT max(seq) FROM chat_by_sender WHERE sender = ?1), 0), "
    "coalesce((SELECT max(seq) FROM chat_by_receiver WHERE receiver = ?1), 0))"
)
# ?1 uid, ?2 after this position of its log, ?3 indexed position, ?4 limit
SQL_INCOMING = (
    f"SELECT r.seq, {M_COLUMNS} FROM chat_by_receiver r JOIN chat_messages m ON m.pos = r.pos "
    "WHERE r.receiver = ?1 AND r.seq > ?2 AND r.pos <= ?3 ORDER BY r.seq LIMIT ?4"
)
SQL_INCOMING_SEQS = (
    "SELECT seq FROM chat_by_receiver WHERE receiver = ?1 AND seq > ?2 AND pos <= ?3 ORDER BY seq LIMIT ?4"
)
# ?1 uid, ?2 after this position, ?3 indexed position, ?4 mid at most
SQL_INCOMING_UP_TO_MID = (
    "SELECT r.seq FROM chat_by_receiver r JOIN chat_messages m ON m.pos = r.pos "
    "WHERE r.receiver = ?1 AND r.seq > ?2 AND r.pos <= ?3 AND m.mid <= ?4"
)
# ?1 uid, ?2 after this position, ?3 indexed position, ?4 limit: the owner's log, both directions
SQL_LOG = (
    f"SELECT * FROM (SELECT s.seq, {M_COLUMNS} FROM chat_by_sender s JOIN chat_messages m ON m.pos = s.pos "
    "WHERE s.sender = ?1 AND s.seq > ?2 AND s.pos <= ?3 ORDER BY s.seq LIMIT ?4) "
    f"UNION ALL SELECT * FROM (SELECT r.seq, {M_COLUMNS} FROM chat_by_receiver r JOIN chat_messages m "
    "ON m.pos = r.pos WHERE r.receiver = ?1 AND r.seq > ?2 AND r.pos <= ?3 AND m.sender <> ?1 "
    "ORDER BY r.seq LIMIT ?4) ORDER BY 1 LIMIT ?4"
)
# ?1 peer_lo, ?2 peer_hi, ?3 indexed position, ?4 mid below, ?5 limit: newest first
SQL_HISTORY = (
    f"SELECT {M_COLUMNS} FROM chat_by_pair p JOIN chat_messages m ON m.pos = p.pos "
    "WHERE p.peer_lo = ?1 AND p.peer_hi = ?2 AND p.mid < ?4 AND p.pos <= ?3 ORDER BY p.mid DESC LIMIT ?5"
)
# ?1 peer_lo, ?2 peer_hi, ?3 indexed position, ?4 read mid, ?5 the peer: newest mid, the peer's unread count
SQL_PAIR_STATE = (
    "SELECT coalesce((SELECT max(mid) FROM chat_by_pair WHERE peer_lo = ?1 AND peer_hi = ?2 AND pos <= ?3), 0), "
    "(SELECT count(*) FROM chat_by_pair WHERE peer_lo = ?1 AND peer_hi = ?2 AND mid > ?4 AND pos <= ?3 "
    "AND sender = ?5)"
)

# The index database's tables and what the worker writes there (its `main` is the database: it reads the rows).
INDEX_TABLES = (
    f"CREATE TABLE IF NOT EXISTS {INDEXES}.chat_by_cli_mid (sender INTEGER NOT NULL, cli_mid TEXT NOT NULL, "
    "pos INTEGER NOT NULL, PRIMARY KEY (sender, cli_mid)) WITHOUT ROWID",
    f"CREATE TABLE IF NOT EXISTS {INDEXES}.chat_by_receiver (receiver INTEGER NOT NULL, seq INTEGER NOT NULL, "
    "pos INTEGER NOT NULL, PRIMARY KEY (receiver, seq)) WITHOUT ROWID",
    f"CREATE TABLE IF NOT EXISTS {INDEXES}.chat_by_sender (sender INTEGER NOT NULL, seq INTEGER NOT NULL, "
    "pos INTEGER NOT NULL, PRIMARY KEY (sender, seq)) WITHOUT ROWID",
    f"CREATE TABLE IF NOT EXISTS {INDEXES}.chat_by_pair (peer_lo INTEGER NOT NULL, peer_hi INTEGER NOT NULL, "
    "mid INTEGER NOT NULL, sender INTEGER NOT NULL, pos INTEGER NOT NULL, PRIMARY KEY (peer_lo, peer_hi, mid)) "
    "WITHOUT ROWID",
    # the last position indexed, and the mid of its row: an index database that does not match is rebuilt
    f"CREATE TABLE IF NOT EXISTS {INDEXES}.chat_indexed (id INTEGER PRIMARY KEY CHECK (id = 1), "
    "pos INTEGER NOT NULL, mid INTEGER NOT NULL)",
    f"INSERT OR IGNORE INTO {INDEXES}.chat_indexed (id, pos, mid) VALUES (1, 0, 0)",
)
SQL_INDEXED_SAVE = (
    f"UPDATE {INDEXES}.chat_indexed SET pos = ?1, mid = coalesce(({SQL_MID_AT.replace('?', '?1')}), 0) WHERE id = 1"
)
SQL_UNINDEX_SENDER = f"DELETE FROM {INDEXES}.chat_by_sender WHERE sender = ? AND seq = ? AND pos = ?"
SQL_UNINDEX_RECEIVER = f"DELETE FROM {INDEXES}.chat_by_receiver WHERE receiver = ? AND seq = ? AND pos = ?"
SQL_REINDEX_SENDER = (
    f"INSERT OR REPLACE INTO {INDEXES}.chat_by_sender (sender, seq, pos) "
    "SELECT sender, sender_seq, pos FROM main.chat_messages WHERE pos = ?"
)
SQL_REINDEX_RECEIVER = (
    f"INSERT OR REPLACE INTO {INDEXES}.chat_by_receiver (receiver, seq, pos) "
    "SELECT receiver, receiver_seq, pos FROM main.chat_messages WHERE pos = ?"
)


@dataclass(frozen=True)
class EpochIndex:
    """How an epoch writes one index table: its entries from the log's rows, sorted by key, in one statement."""

    table: str
    clear: str
    fill: str  # ?1 < pos <= ?2: the epoch's rows


def _epoch_index(table: str, columns: str, source: str, key: str, where: str = "") -> EpochIndex:
    return EpochIndex(
        table=table,
        clear=f"DELETE FROM {INDEXES}.{table}",
        fill=f"INSERT OR REPLACE INTO {INDEXES}.{table} ({columns}) SELECT {source} FROM main.chat_messages "
        f"WHERE pos > ?1 AND pos <= ?2{where} ORDER BY {key}",
    )


EPOCH_CLI_MID = _epoch_index(
    "chat_by_cli_mid", "sender, cli_mid, pos", "sender, cli_mid, pos", "1, 2", " AND cli_mid <> ''"
)
EPOCH_RECEIVER = _epoch_index("chat_by_receiver", "receiver, seq, pos", "receiver, receiver_seq, pos", "1, 2")
EPOCH_SENDER = _epoch_index("chat_by_sender", "sender, seq, pos", "sender, sender_seq, pos", "1, 2")
EPOCH_PAIR = _epoch_index(
    "chat_by_pair",
    "peer_lo, peer_hi, mid, sender, pos",
    "min(sender, receiver), max(sender, receiver), mid, sender, pos",
    "1, 2, 3",
)
EPOCH_INDEXES = (EPOCH_CLI_MID, EPOCH_RECEIVER, EPOCH_SENDER, EPOCH_PAIR)


def index_epoch(first: int, last: int, moved: dict[int, Moved]) -> Callable[[sqlite3.Connection], None]:
    """The background job of an epoch, one transaction of the index database: every index's entries of the rows
    above ``first`` up to ``last``, and for the ``moved`` messages (positions up to ``first``) the entries of
    their old positions removed and those of their rows' written."""
    old = [(pos, was) for pos, (was, _) in moved.items()]

    def job(conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN")  # deferred: it takes the index database's write lock, not the database's
        for index in EPOCH_INDEXES:
            conn.execute(index.fill, (first, last))
        if old:
            conn.executemany(SQL_UNINDEX_SENDER, [(m.sender, m.sender_seq, pos) for pos, m in old])
            conn.executemany(SQL_UNINDEX_RECEIVER, [(m.receiver, m.receiver_seq, pos) for pos, m in old])
            conn.executemany(SQL_REINDEX_SENDER, [(pos,) for pos, _ in old])
            conn.executemany(SQL_REINDEX_RECEIVER, [(pos,) for pos, _ in old])
        conn.execute(SQL_INDEXED_SAVE, (last,))
        conn.execute("COMMIT")

    return job


def open_indexes(conn: sqlite3.Connection) -> None:
    """When the store opens (nothing else runs): the index database's tables, checked against the database.
    One that does not match it (a new file, one left by another database or by a database restored from an
    older copy) is rebuilt from the rows, and a long unindexed tail (a database migrated from a version that
    kept its index tables inside it) is indexed now rather than read into memory."""
    for ddl in INDEX_TABLES:
        conn.execute(ddl)
    pos, mid = conn.execute(SQL_INDEXED).fetchone()
    last = int(conn.execute(SQL_LAST_POS).fetchone()[0])
    at = conn.execute(SQL_MID_AT, (pos,)).fetchone()
    if pos and (at is None or at[0] != mid):
        log.warning("the message log's index database does not match the database: rebuilt from its rows")
        conn.execute("BEGIN")
        for index in EPOCH_INDEXES:
            conn.execute(index.clear)
        conn.execute(SQL_INDEXED_SAVE, (0,))
        conn.execute("COMMIT")
        conn.execute("DELETE FROM chat_moved")  # every entry is written from the rows as they are now
        pos = 0
    if last - pos > EPOCH_ROWS:
        index_epoch(pos, last, {})(conn)
        conn.execute("DELETE FROM chat_moved WHERE pos > ?", (pos,))  # indexed as they are now


def chat_row(row: tuple[object, ...]) -> ChatMessage:
    return ChatMessage(*row)  # type: ignore[arg-type]


@dataclass
class Epoch:
    """The index entries of the log up to ``last``, written by the background worker."""

    last: int  # it indexes the rows above the log's `indexed` position up to this one
    moved: dict[int, Moved] = field(default_factory=dict)  # recalled messages whose entries it rewrites
    ahead: list[int] = field(default_factory=list)  # chat_moved rows of its own messages (see MessageLog.load)


class MessageLog:
    """The writer's view of the log: the next position, the tail, the epoch being indexed. Every method runs
    on the engine's connection (the loop's thread); ``forget`` (on rollback) makes it reload from the file."""

    def __init__(self) -> None:
        self.loaded = False
        self.next_pos = 1
        self.indexed = 0
        self.tail = Tail()
        self.tail_since = 0.0
        self.epoch: Epoch | None = None
        self.ahead: list[int] = []  # chat_moved rows above `indexed` when loaded: their epoch drops them
        # Every (sender, cli_mid) the index tables may hold, so that a new key (the usual case) costs no lookup
        # there: those they held at the first load, and every key since loaded into the tail or appended to
        # it (a row the worker indexes later is one of those). Kept when a rollback makes the rest forget: a
        # key of a row rolled back only costs a lookup.
        self.keys: KeyFilter | None = None

    def forget(self) -> None:
        self.loaded = False
        self.tail = Tail()
        self.epoch = None
        self.ahead = []

    def load(self, conn: sqlite3.Connection) -> None:
        if self.loaded:
            return
        self.indexed = int(conn.execute(SQL_INDEXED).fetchone()[0])
        self.load_keys(conn)  # (after `indexed`: what the worker indexes meanwhile is in the tail too)
        self.tail = Tail((int(r[0]), chat_row(r[1:])) for r in conn.execute(SQL_TAIL, (self.indexed,)))
        self.key_filter.add(self.tail.live.by_key)
        self.ahead = []
        for row in conn.execute(SQL_MOVED_LOAD):
            pos, now = int(row[2]), chat_row(row[3:])
            if pos > self.indexed:  # no epoch wrote its entries yet: the tail has it as it is now
                self.ahead.append(pos)
            else:
                self.tail.add_moved(pos, dataclasses.replace(now, sender_seq=row[0], receiver_seq=row[1]), now)
        self.next_pos = max(self.tail.live.rows, default=self.indexed) + 1
        self.tail_since = time.monotonic()
        self.loaded = True

    def load_keys(self, conn: sqlite3.Connection) -> None:
        """Read the index tables' keys into :attr:`keys`, unless done: when the store opens (~0.4 s a million
        messages), so that no write waits for it."""
        if self.keys is None:
            keys = KeyFilter()
            keys.add(conn.execute(SQL_KEYS))
            self.keys = keys

    def append(self, conn: sqlite3.Connection, messages: list[ChatMessage]) -> list[tuple[object, ...]]:
        """Positions for new messages: their rows (for SQL_INSERT); they join the tail."""
        self.load(conn)
        if not self.tail.live.rows:
            self.tail_since = time.monotonic()
        first = self.next_pos
        positions = range(first, first + len(messages))
        self.key_filter.add(self.tail.live.add(zip(positions, messages, strict=True)))
        self.next_pos = positions.stop
        return [  # the values of SQL_INSERT
            (pos, m.mid, m.cli_mid, m.sender, m.receiver, m.type, m.content, m.send_at, m.created_at,
             m.sender_seq, m.receiver_seq)
            for pos, m in zip(positions, messages, strict=True)
        ]  # fmt: skip

    # reads: the index up to `indexed`, the tail above it

    @property
    def key_filter(self) -> KeyFilter:
        """:attr:`keys`, once loaded."""
        assert self.keys is not None, "the log is loaded first"
        return self.keys

    def by_cli_mid(self, conn: sqlite3.Connection, sender: int, cli_mid: str) -> ChatMessage | None:
        self.load(conn)
        if not self.key_filter.maybe([(sender, cli_mid)]):  # it holds every key stored, the tail's too
            return None
        m = self.tail.keyed((sender, cli_mid))
        return m if m is not None else self.indexed_by_cli_mid(conn, sender, cli_mid)

    def indexed_by_cli_mid(self, conn: sqlite3.Connection, sender: int, cli_mid: str) -> ChatMessage | None:
        """The message with this key in the index tables (the tail and the key filter asked already)."""
        row = conn.execute(SQL_BY_CLI_MID, (sender, cli_mid)).fetchone()
        return chat_row(row) if row else None

    def head(self, conn: sqlite3.Connection, uid: int) -> int:
        self.load(conn)
        return max(int(conn.execute(SQL_HEAD, (uid,)).fetchone()[0]), self.tail.head(uid))

    def incoming(self, conn: sqlite3.Connection, uid: int, after: int, limit: int) -> list[ChatMessage]:
        """``uid``'s incoming messages above position ``after``, in log order, at most ``limit``."""
        self.load(conn)
        masked = self.tail.masked(uid)
        params = (uid, after, self.indexed, limit + len(masked))
        indexed = [chat_row(r[1:]) for r in conn.execute(SQL_INCOMING, params) if r[0] not in masked]
        tail = [m for m in self.tail.received(uid) if m.receiver_seq > after]
        return (indexed + tail)[:limit] if not indexed or not tail else _merged(indexed, tail, limit, RECEIVER_SEQ)

    def incoming_seqs(self, conn: sqlite3.Connection, uid: int, after: int, limit: int) -> list[int]:
        self.load(conn)
        masked = self.tail.masked(uid)
        params = (uid, after, self.indexed, limit + len(masked))
        seqs = [r[0] for r in conn.execute(SQL_INCOMING_SEQS, params) if r[0] not in masked]
        seqs += [m.receiver_seq for m in self.tail.received(uid) if m.receiver_seq > after]
        seqs.sort()
        return seqs[:limit]

    def incoming_up_to_mid(self, conn: sqlite3.Connection, uid: int, after: int, mid: int) -> list[int]:
        self.load(conn)
        masked = self.tail.masked(uid)
        params = (uid, after, self.indexed, mid)
        seqs = [r[0] for r in conn.execute(SQL_INCOMING_UP_TO_MID, params) if r[0] not in masked]
        tail = self.tail.received(uid)
        return seqs + [m.receiver_seq for m in tail if m.receiver_seq > after and m.mid <= mid]

    def log(self, conn: sqlite3.Connection, uid: int, after: int, limit: int) -> list[tuple[int, ChatMessage]]:
        """``uid``'s log above position ``after`` (both directions), ascending, at most ``limit``."""
        self.load(conn)
        masked = self.tail.masked(uid)
        params = (uid, after, self.indexed, limit + len(masked))
        entries = [(int(r[0]), chat_row(r[1:])) for r in conn.execute(SQL_LOG, params) if r[0] not in masked]
        sent = [(m.sender_seq, m) for m in self.tail.sent(uid) if m.sender_seq > after]
        received = [(m.receiver_seq, m) for m in self.tail.received(uid) if m.receiver_seq > after and m.sender != uid]
        return list(heapq.merge(entries, sent, received, key=lambda e: e[0]))[:limit]

    def history(self, conn: sqlite3.Connection, lo: int, hi: int, before: int, limit: int) -> list[ChatMessage]:
        """The pair's messages with mid below ``before``, newest first, at most ``limit``."""
        self.load(conn)
        indexed = [chat_row(r) for r in conn.execute(SQL_HISTORY, (lo, hi, self.indexed, before, limit))]
        tail = [m for m in reversed(self.tail.paired((lo, hi))) if m.mid < before]
        return _merged(indexed, tail, limit, lambda m: -m.mid)

    def pair_state(self, conn: sqlite3.Connection, owner: int, peer: int, read_mid: int) -> tuple[int, int]:
        """The conversation's newest mid, and how many of the peer's messages are newer than ``read_mid``."""
        self.load(conn)
        lo, hi = (owner, peer) if owner <= peer else (peer, owner)
        last, unread = conn.execute(SQL_PAIR_STATE, (lo, hi, self.indexed, read_mid, peer)).fetchone()
        tail = self.tail.paired((lo, hi))
        if tail:
            last = max(last, tail[-1].mid)
            unread += sum(1 for m in tail if m.sender == peer and m.mid > read_mid)
        return int(last), int(unread) if peer != owner else 0

    # indexing

    def due(self) -> bool:
        """Whether a new epoch is due (none runs, and the tail is big or old enough)."""
        if self.epoch is not None:
            return False
        rows = self.tail.live.rows
        return bool(rows) and (len(rows) >= EPOCH_ROWS or time.monotonic() - self.tail_since >= EPOCH_AGE_S)

    def start(self, *, now: bool = False) -> Epoch | None:
        """A new epoch of the tail when one is due (or ``now``, if there is anything to index), for the worker
        (``job``). Between transactions only: every row of the tail is committed then (and the tail is loaded,
        or a rollback just made it forget: the next write starts it)."""
        if not self.loaded or self.epoch is not None:
            return None
        if not (self.due() or (now and (self.tail.live.rows or self.tail.moved))):
            return None
        self.epoch = Epoch(self.next_pos - 1, self.tail.freeze(), self.ahead)
        self.ahead = []
        return self.epoch

    def job(self, epoch: Epoch) -> Callable[[sqlite3.Connection], None]:
        return index_epoch(self.indexed, epoch.last, epoch.moved)

    def indexed_epoch(self, epoch: Epoch) -> list[int]:
        """The worker wrote ``epoch``: reads take its entries from the index tables from now on. The rows of
        chat_moved it made useless."""
        self.indexed = epoch.last
        self.epoch = None
        return self.tail.indexed(epoch.moved) + epoch.ahead

    def move(self, conn: sqlite3.Connection, old: ChatMessage, new: ChatMessage) -> None:
        """A recall: the row gets its new status and positions; until an epoch rewrites its entries in its
        users' logs the tail answers for them (its entries in the other indexes stay: sender, cli_mid, pair and
        mid do not change)."""
        self.load(conn)
        pos = int(conn.execute(SQL_POS_BY_MID, (old.mid,)).fetchone()[0])
        conn.execute(SQL_MOVE, (new.status, new.recalled_by, new.sender_seq, new.receiver_seq, pos))
        if self.tail.move(pos, old, new):
            conn.execute(SQL_MOVED_SAVE, (pos, old.sender_seq, old.receiver_seq))


def _merged(
    a: list[ChatMessage], b: list[ChatMessage], limit: int, key: Callable[[ChatMessage], int]
) -> list[ChatMessage]:
    """Two lists sorted by ``key``, merged, at most ``limit``."""
    return list(heapq.merge(a, b, key=key))[:limit]
