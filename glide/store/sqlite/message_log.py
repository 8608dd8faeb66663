"""The 1:1 message log on SQLite: rows appended at once, their index entries written later in sorted bulk.

``chat_messages`` is append-only in write order (``pos``, allocated by the writer: the only writer of the
file); its only index is the unique ``mid``, which grows with it. What reads look messages up by lives in
four index tables — by (sender, cli_mid), by (receiver, receiver_seq), by (sender, sender_seq), by the
conversation's pair and mid. Maintaining those in place costs a dirty page per message per index per
commit (their keys are scattered over every user); instead the writer keeps the rows written since the
last indexing in memory (the *tail*, with a view per user and per pair) and, once the tail is big or old
enough, writes the index entries of that *epoch* sorted by key, a slice per index per transaction: entries
of one user land together, so a page takes many entries at once, and no transaction does much of it.

Reads combine both: the index tables for positions up to ``indexed`` (the last completed epoch) and the
tail's views above it. ``indexed`` is saved with the epoch's last slice; after a crash the rows above it are
read back into the tail and indexed again.
"""

from __future__ import annotations

import heapq
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from glide.store.base import ChatMessage

COLUMNS = (
    "mid, cli_mid, sender, receiver, type, content, send_at, created_at, status, recalled_by, sender_seq, receiver_seq"
)
M_COLUMNS = ", ".join("m." + c.strip() for c in COLUMNS.split(","))
EPOCH_ROWS = 8192  # a tail this long is indexed...
EPOCH_AGE_S = 2.0  # ...and so is an older one
SLICE = 256  # index entries per index per transaction while an epoch is written

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
SQL_INDEXED = "SELECT pos FROM chat_indexed WHERE id = 1"
SQL_INDEXED_SAVE = "UPDATE chat_indexed SET pos = ? WHERE id = 1"
SQL_INDEX_CLI_MID = "INSERT OR REPLACE INTO chat_by_cli_mid (sender, cli_mid, pos) VALUES (?, ?, ?)"
SQL_INDEX_RECEIVER = "INSERT OR REPLACE INTO chat_by_receiver (receiver, seq, pos) VALUES (?, ?, ?)"
SQL_INDEX_SENDER = "INSERT OR REPLACE INTO chat_by_sender (sender, seq, pos) VALUES (?, ?, ?)"
SQL_INDEX_PAIR = "INSERT OR REPLACE INTO chat_by_pair (peer_lo, peer_hi, mid, sender, pos) VALUES (?, ?, ?, ?, ?)"
SQL_UNINDEX_RECEIVER = "DELETE FROM chat_by_receiver WHERE receiver = ? AND seq = ?"
SQL_UNINDEX_SENDER = "DELETE FROM chat_by_sender WHERE sender = ? AND seq = ?"
SQL_MOVE = "UPDATE chat_messages SET status = ?, recalled_by = ?, sender_seq = ?, receiver_seq = ? WHERE pos = ?"
SQL_HEAD = (
    "SELECT max(coalesce((SELECT max(seq) FROM chat_by_sender WHERE sender = ?1), 0), "
    "coalesce((SELECT max(seq) FROM chat_by_receiver WHERE receiver = ?1), 0))"
)
# ?1 uid, ?2 after this position of its log, ?3 indexed position, ?4 limit
SQL_INCOMING = (
    f"SELECT {M_COLUMNS} FROM chat_by_receiver r JOIN chat_messages m ON m.pos = r.pos "
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


def chat_row(row: tuple[object, ...]) -> ChatMessage:
    return ChatMessage(*row)  # type: ignore[arg-type]


def _row(pos: int, m: ChatMessage) -> tuple[object, ...]:
    """The values of SQL_INSERT."""
    seqs = (m.sender_seq, m.receiver_seq)
    return (pos, m.mid, m.cli_mid, m.sender, m.receiver, m.type, m.content, m.send_at, m.created_at, *seqs)


def _pair(m: ChatMessage) -> tuple[int, int]:
    return (m.sender, m.receiver) if m.sender <= m.receiver else (m.receiver, m.sender)


@dataclass
class Epoch:
    """The index entries of the tail up to ``last``, sorted by key, written a slice per transaction."""

    last: int
    cli_mids: list[tuple[int, str, int]]
    receivers: list[tuple[int, int, int]]
    senders: list[tuple[int, int, int]]
    pairs: list[tuple[int, int, int, int, int]]
    done: int = 0  # entries of each list written so far

    def finished(self) -> bool:
        return self.done >= max(len(self.cli_mids), len(self.receivers), len(self.senders), len(self.pairs))


class Tail:
    """The messages above the indexed position, with the views reads need: by key, by receiver and by sender
    (ascending log position), by pair (ascending mid)."""

    __slots__ = ("by_key", "by_pair", "by_receiver", "by_sender", "rows")

    def __init__(self) -> None:
        self.rows: dict[int, ChatMessage] = {}  # position -> message, in position order
        self.by_key: dict[tuple[int, str], ChatMessage] = {}
        self.by_receiver: dict[int, list[ChatMessage]] = {}
        self.by_sender: dict[int, list[ChatMessage]] = {}
        self.by_pair: dict[tuple[int, int], list[ChatMessage]] = {}

    def add(self, pos: int, m: ChatMessage) -> None:
        self.rows[pos] = m
        if m.cli_mid:
            self.by_key[(m.sender, m.cli_mid)] = m
        self.by_receiver.setdefault(m.receiver, []).append(m)
        self.by_sender.setdefault(m.sender, []).append(m)
        self.by_pair.setdefault(_pair(m), []).append(m)

    def rebuild(self, rows: Iterable[tuple[int, ChatMessage]]) -> None:
        """From rows in position order (the views are then sorted: a recall may have moved some)."""
        self.__init__()  # type: ignore[misc]
        for pos, m in rows:
            self.add(pos, m)
        for received in self.by_receiver.values():
            received.sort(key=_r_seq)
        for sent in self.by_sender.values():
            sent.sort(key=_s_seq)
        for messages in self.by_pair.values():
            messages.sort(key=_mid)

    def head(self, uid: int) -> int:
        """``uid``'s newest position in the tail (0: none)."""
        received = self.by_receiver.get(uid)
        sent = self.by_sender.get(uid)
        return max(received[-1].receiver_seq if received else 0, sent[-1].sender_seq if sent else 0)


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
        self.recalled: set[int] = set()  # positions of the running epoch a recall has re-indexed itself

    def forget(self) -> None:
        self.loaded = False
        self.tail = Tail()
        self.epoch = None
        self.recalled.clear()

    def load(self, conn: sqlite3.Connection) -> None:
        if self.loaded:
            return
        self.indexed = int(conn.execute(SQL_INDEXED).fetchone()[0])
        self.tail.rebuild((int(r[0]), chat_row(r[1:])) for r in conn.execute(SQL_TAIL, (self.indexed,)))
        self.next_pos = max(self.tail.rows, default=self.indexed) + 1
        self.tail_since = time.monotonic()
        self.loaded = True

    def append(self, conn: sqlite3.Connection, messages: list[ChatMessage]) -> list[tuple[object, ...]]:
        """Positions for new messages: their rows (for SQL_INSERT); they join the tail."""
        self.load(conn)
        if not self.tail.rows:
            self.tail_since = time.monotonic()
        rows: list[tuple[object, ...]] = []
        pos = self.next_pos
        add = self.tail.add
        for m in messages:
            add(pos, m)
            rows.append(_row(pos, m))
            pos += 1
        self.next_pos = pos
        return rows

    # reads: the index up to `indexed`, the tail above it

    def by_cli_mid(self, conn: sqlite3.Connection, sender: int, cli_mid: str) -> ChatMessage | None:
        self.load(conn)
        m = self.tail.by_key.get((sender, cli_mid))
        if m is None:
            row = conn.execute(SQL_BY_CLI_MID, (sender, cli_mid)).fetchone()
            m = chat_row(row) if row else None
        return m

    def head(self, conn: sqlite3.Connection, uid: int) -> int:
        self.load(conn)
        return max(int(conn.execute(SQL_HEAD, (uid,)).fetchone()[0]), self.tail.head(uid))

    def incoming(self, conn: sqlite3.Connection, uid: int, after: int, limit: int) -> list[ChatMessage]:
        """``uid``'s incoming messages above position ``after``, in log order, at most ``limit``."""
        self.load(conn)
        indexed = [chat_row(r) for r in conn.execute(SQL_INCOMING, (uid, after, self.indexed, limit))]
        tail = [m for m in self.tail.by_receiver.get(uid, ()) if m.receiver_seq > after]
        return (indexed + tail)[:limit] if not indexed or not tail else _merged(indexed, tail, limit, _r_seq)

    def incoming_seqs(self, conn: sqlite3.Connection, uid: int, after: int, limit: int) -> list[int]:
        self.load(conn)
        seqs = [r[0] for r in conn.execute(SQL_INCOMING_SEQS, (uid, after, self.indexed, limit))]
        seqs += [m.receiver_seq for m in self.tail.by_receiver.get(uid, ()) if m.receiver_seq > after]
        seqs.sort()
        return seqs[:limit]

    def incoming_up_to_mid(self, conn: sqlite3.Connection, uid: int, after: int, mid: int) -> list[int]:
        self.load(conn)
        seqs = [r[0] for r in conn.execute(SQL_INCOMING_UP_TO_MID, (uid, after, self.indexed, mid))]
        tail = self.tail.by_receiver.get(uid, ())
        return seqs + [m.receiver_seq for m in tail if m.receiver_seq > after and m.mid <= mid]

    def log(self, conn: sqlite3.Connection, uid: int, after: int, limit: int) -> list[tuple[int, ChatMessage]]:
        """``uid``'s log above position ``after`` (both directions), ascending, at most ``limit``."""
        self.load(conn)
        entries = [(int(r[0]), chat_row(r[1:])) for r in conn.execute(SQL_LOG, (uid, after, self.indexed, limit))]
        sent = [(m.sender_seq, m) for m in self.tail.by_sender.get(uid, ()) if m.sender_seq > after]
        received = [
            (m.receiver_seq, m)
            for m in self.tail.by_receiver.get(uid, ())
            if m.receiver_seq > after and m.sender != uid
        ]
        return list(heapq.merge(entries, sent, received, key=lambda e: e[0]))[:limit]

    def history(self, conn: sqlite3.Connection, lo: int, hi: int, before: int, limit: int) -> list[ChatMessage]:
        """The pair's messages with mid below ``before``, newest first, at most ``limit``."""
        self.load(conn)
        indexed = [chat_row(r) for r in conn.execute(SQL_HISTORY, (lo, hi, self.indexed, before, limit))]
        tail = [m for m in reversed(self.tail.by_pair.get((lo, hi), ())) if m.mid < before]
        return _merged(indexed, tail, limit, lambda m: -m.mid)

    def pair_state(self, conn: sqlite3.Connection, owner: int, peer: int, read_mid: int) -> tuple[int, int]:
        """The conversation's newest mid, and how many of the peer's messages are newer than ``read_mid``."""
        self.load(conn)
        lo, hi = (owner, peer) if owner <= peer else (peer, owner)
        last, unread = conn.execute(SQL_PAIR_STATE, (lo, hi, self.indexed, read_mid, peer)).fetchone()
        tail = self.tail.by_pair.get((lo, hi), ())
        if tail:
            last = max(last, tail[-1].mid)
            unread += sum(1 for m in tail if m.sender == peer and m.mid > read_mid)
        return int(last), int(unread) if peer != owner else 0

    # indexing

    def due(self) -> bool:
        """Whether the tail should be indexed now (or an epoch is under way)."""
        if self.epoch is not None:
            return True
        rows = self.tail.rows
        return bool(rows) and (len(rows) >= EPOCH_ROWS or time.monotonic() - self.tail_since >= EPOCH_AGE_S)

    def index_slice(self, conn: sqlite3.Connection, *, now: bool = False) -> bool:
        """Write the next slice of the epoch (starting one if due, or ``now`` if there is a tail); True while
        more remains."""
        self.load(conn)
        epoch = self.epoch
        if epoch is None:
            if not (self.due() or (now and self.tail.rows)):
                return False
            epoch = self.epoch = self._start()
            self.recalled.clear()
        lo, hi = epoch.done, epoch.done + SLICE
        skip = self.recalled
        for sql, entries in (
            (SQL_INDEX_CLI_MID, epoch.cli_mids),
            (SQL_INDEX_RECEIVER, epoch.receivers),
            (SQL_INDEX_SENDER, epoch.senders),
            (SQL_INDEX_PAIR, epoch.pairs),
        ):
            part = entries[lo:hi]
            if part:
                conn.executemany(sql, [e for e in part if e[-1] not in skip] if skip else part)
        epoch.done = hi
        if not epoch.finished():
            return True
        conn.execute(SQL_INDEXED_SAVE, (epoch.last,))
        self.indexed = epoch.last
        self.tail.rebuild((pos, m) for pos, m in self.tail.rows.items() if pos > epoch.last)
        self.tail_since = time.monotonic()
        self.epoch = None
        self.recalled.clear()
        return self.due() or (now and bool(self.tail.rows))

    def _start(self) -> Epoch:
        messages = list(self.tail.rows.items())
        return Epoch(
            last=messages[-1][0],
            cli_mids=sorted((m.sender, m.cli_mid, pos) for pos, m in messages if m.cli_mid),
            receivers=sorted((m.receiver, m.receiver_seq, pos) for pos, m in messages),
            senders=sorted((m.sender, m.sender_seq, pos) for pos, m in messages),
            pairs=sorted((*_pair(m), m.mid, m.sender, pos) for pos, m in messages),
        )

    def move(self, conn: sqlite3.Connection, old: ChatMessage, new: ChatMessage) -> None:
        """A recall: the row gets its new status and positions, and its log entries follow at once."""
        self.load(conn)
        pos = int(conn.execute(SQL_POS_BY_MID, (old.mid,)).fetchone()[0])
        conn.execute(SQL_MOVE, (new.status, new.recalled_by, new.sender_seq, new.receiver_seq, pos))
        if pos in self.tail.rows:
            rows = dict(self.tail.rows)
            rows[pos] = new
            self.tail.rebuild(rows.items())
            if self.epoch is None or pos > self.epoch.last:
                return  # the epoch that indexes it will see its new positions
            self.recalled.add(pos)  # the running epoch has its old ones: this one is indexed here instead
            conn.execute(SQL_INDEX_PAIR, (*_pair(new), new.mid, new.sender, pos))
            if new.cli_mid:
                conn.execute(SQL_INDEX_CLI_MID, (new.sender, new.cli_mid, pos))
        conn.execute(SQL_UNINDEX_SENDER, (old.sender, old.sender_seq))
        conn.execute(SQL_UNINDEX_RECEIVER, (old.receiver, old.receiver_seq))
        conn.execute(SQL_INDEX_SENDER, (new.sender, new.sender_seq, pos))
        conn.execute(SQL_INDEX_RECEIVER, (new.receiver, new.receiver_seq, pos))


def _r_seq(m: ChatMessage) -> int:
    return m.receiver_seq


def _s_seq(m: ChatMessage) -> int:
    return m.sender_seq


def _mid(m: ChatMessage) -> int:
    return m.mid


def _merged(
    a: list[ChatMessage], b: list[ChatMessage], limit: int, key: Callable[[ChatMessage], int]
) -> list[ChatMessage]:
    """Two lists sorted by ``key``, merged, at most ``limit``."""
    return list(heapq.merge(a, b, key=key))[:limit]
