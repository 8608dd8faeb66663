"""The 1:1 message log on SQLite: rows appended at once, their index entries written later in sorted bulk.

``chat_messages`` is append-only in write order (``pos``, allocated by the writer: the only writer of the
file); its only index is the unique ``mid``, which grows with it. What reads look messages up by lives in
four index tables — by (sender, cli_mid), by (receiver, receiver_seq), by (sender, sender_seq), by the
conversation's pair and mid. Maintaining those in place costs a dirty page per message per index per
commit (their keys are scattered over every user); instead the writer keeps the rows written since the
last indexing in memory (the *tail*) and, once the tail is big or old enough, writes the index entries of
that *epoch* sorted by key, a slice per index per transaction: entries of one user land together, so a page
takes many entries at once, and no transaction does much of it.

Reads see both: the index tables for positions up to ``indexed`` (the last completed epoch) and a scan of
the rows above it (a range of the table's own key, at most an epoch or two). ``indexed`` is saved with the
epoch's last slice; after a crash the rows above it are simply indexed again.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass

from glide.store.base import ChatMessage

COLUMNS = (
    "mid, cli_mid, sender, receiver, type, content, send_at, created_at, status, recalled_by, sender_seq, receiver_seq"
)
M_COLUMNS = ", ".join("m." + c.strip() for c in COLUMNS.split(","))
EPOCH_ROWS = 8192  # a tail this long is indexed...
EPOCH_AGE_S = 2.0  # ...and so is an older one
SLICE = 256  # index entries per index per transaction while an epoch is written

# The tail: rows above the indexed position (a scan of chat_messages' own key range).
_TAIL = "m.pos > ?3"

# Every query, named so tests can check each one is served by an index (?3 is the indexed position).
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
    "coalesce((SELECT max(seq) FROM chat_by_receiver WHERE receiver = ?1), 0), "
    "coalesce((SELECT max(sender_seq) FROM chat_messages m WHERE m.pos > ?2 AND m.sender = ?1), 0), "
    "coalesce((SELECT max(receiver_seq) FROM chat_messages m WHERE m.pos > ?2 AND m.receiver = ?1), 0))"
)
# ?1 uid, ?2 after this position of its log, ?3 indexed position, ?4 limit
SQL_INCOMING = (
    f"SELECT * FROM (SELECT {M_COLUMNS} FROM chat_by_receiver r JOIN chat_messages m ON m.pos = r.pos "
    "WHERE r.receiver = ?1 AND r.seq > ?2 AND r.pos <= ?3 ORDER BY r.seq LIMIT ?4) "
    f"UNION ALL SELECT * FROM (SELECT {M_COLUMNS} FROM chat_messages m WHERE {_TAIL} AND m.receiver = ?1 "
    "AND m.receiver_seq > ?2 ORDER BY m.receiver_seq LIMIT ?4) ORDER BY receiver_seq LIMIT ?4"
)
SQL_INCOMING_SEQS = (
    "SELECT * FROM (SELECT seq FROM chat_by_receiver WHERE receiver = ?1 AND seq > ?2 AND pos <= ?3 "
    f"ORDER BY seq LIMIT ?4) UNION ALL SELECT * FROM (SELECT m.receiver_seq FROM chat_messages m WHERE {_TAIL} "
    "AND m.receiver = ?1 AND m.receiver_seq > ?2 ORDER BY m.receiver_seq LIMIT ?4) ORDER BY 1 LIMIT ?4"
)
# ?1 uid, ?2 after this position, ?3 indexed position, ?4 mid at most
SQL_INCOMING_UP_TO_MID = (
    "SELECT r.seq FROM chat_by_receiver r JOIN chat_messages m ON m.pos = r.pos "
    "WHERE r.receiver = ?1 AND r.seq > ?2 AND r.pos <= ?3 AND m.mid <= ?4 "
    f"UNION ALL SELECT m.receiver_seq FROM chat_messages m WHERE {_TAIL} AND m.receiver = ?1 "
    "AND m.receiver_seq > ?2 AND m.mid <= ?4"
)
# ?1 uid, ?2 after this position, ?3 indexed position, ?4 limit: the owner's log, both directions
SQL_LOG = (
    f"SELECT * FROM (SELECT s.seq, {M_COLUMNS} FROM chat_by_sender s JOIN chat_messages m ON m.pos = s.pos "
    "WHERE s.sender = ?1 AND s.seq > ?2 AND s.pos <= ?3 ORDER BY s.seq LIMIT ?4) "
    f"UNION ALL SELECT * FROM (SELECT r.seq, {M_COLUMNS} FROM chat_by_receiver r JOIN chat_messages m "
    "ON m.pos = r.pos WHERE r.receiver = ?1 AND r.seq > ?2 AND r.pos <= ?3 AND m.sender <> ?1 "
    "ORDER BY r.seq LIMIT ?4) "
    f"UNION ALL SELECT * FROM (SELECT m.sender_seq, {M_COLUMNS} FROM chat_messages m WHERE {_TAIL} "
    "AND m.sender = ?1 AND m.sender_seq > ?2 ORDER BY m.sender_seq LIMIT ?4) "
    f"UNION ALL SELECT * FROM (SELECT m.receiver_seq, {M_COLUMNS} FROM chat_messages m WHERE {_TAIL} "
    "AND m.receiver = ?1 AND m.sender <> ?1 AND m.receiver_seq > ?2 ORDER BY m.receiver_seq LIMIT ?4) "
    "ORDER BY 1 LIMIT ?4"
)
# ?1 peer_lo, ?2 peer_hi, ?3 indexed position, ?4 mid below, ?5 limit: newest first
SQL_HISTORY = (
    f"SELECT * FROM (SELECT {M_COLUMNS} FROM chat_by_pair p JOIN chat_messages m ON m.pos = p.pos "
    "WHERE p.peer_lo = ?1 AND p.peer_hi = ?2 AND p.mid < ?4 AND p.pos <= ?3 ORDER BY p.mid DESC LIMIT ?5) "
    f"UNION ALL SELECT * FROM (SELECT {M_COLUMNS} FROM chat_messages m WHERE {_TAIL} AND m.mid < ?4 "
    "AND ((m.sender = ?1 AND m.receiver = ?2) OR (m.sender = ?2 AND m.receiver = ?1)) "
    "ORDER BY m.mid DESC LIMIT ?5) ORDER BY mid DESC LIMIT ?5"
)
# A conversation's newest mid and its unread count (?1 owner, ?2 peer, ?3 indexed position, ?4 read_mid)
_PAIR = "peer_lo = min(?1, ?2) AND peer_hi = max(?1, ?2)"
_TAIL_PAIR = "((m.sender = ?1 AND m.receiver = ?2) OR (m.sender = ?2 AND m.receiver = ?1))"
SQL_PAIR_STATE = (
    f"SELECT max(coalesce((SELECT max(mid) FROM chat_by_pair WHERE {_PAIR} AND pos <= ?3), 0), "
    f"coalesce((SELECT max(m.mid) FROM chat_messages m WHERE {_TAIL} AND {_TAIL_PAIR}), 0)), "
    f"(SELECT count(*) FROM chat_by_pair WHERE {_PAIR} AND mid > ?4 AND pos <= ?3 AND sender = ?2 AND ?2 <> ?1) "
    f"+ (SELECT count(*) FROM chat_messages m WHERE {_TAIL} AND m.sender = ?2 AND m.receiver = ?1 "
    "AND m.mid > ?4 AND ?2 <> ?1)"
)


def chat_row(row: tuple[object, ...]) -> ChatMessage:
    return ChatMessage(*row)  # type: ignore[arg-type]


def _row(pos: int, m: ChatMessage) -> tuple[object, ...]:
    """The values of SQL_INSERT."""
    seqs = (m.sender_seq, m.receiver_seq)
    return (pos, m.mid, m.cli_mid, m.sender, m.receiver, m.type, m.content, m.send_at, m.created_at, *seqs)


def _pair_entry(m: ChatMessage, pos: int) -> tuple[int, int, int, int, int]:
    lo, hi = (m.sender, m.receiver) if m.sender <= m.receiver else (m.receiver, m.sender)
    return lo, hi, m.mid, m.sender, pos


@dataclass
class Epoch:
    """The index entries of the tail up to ``last``, sorted by key, written a slice per transaction."""

    last: int
    cli_mids: list[tuple[int, str, int]]
    receivers: list[tuple[int, int, int]]
    senders: list[tuple[int, int, int]]
    pairs: list[tuple[int, int, int, int, int]]
    done: int = 0  # entries of each list written so far
    skip: frozenset[int] = frozenset()  # positions a recall re-indexed meanwhile (their entries are stale)

    def finished(self) -> bool:
        return self.done >= max(len(self.cli_mids), len(self.receivers), len(self.senders), len(self.pairs))


class MessageLog:
    """The writer's view of the log: the next position, the tail, the epoch being indexed. Every method runs
    on the engine's connection (the loop's thread); ``forget`` (on rollback) makes it reload from the file."""

    def __init__(self) -> None:
        self.loaded = False
        self.next_pos = 1
        self.indexed = 0
        self.tail: dict[int, ChatMessage] = {}  # position -> message, for positions above `indexed`
        self.tail_keys: dict[tuple[int, str], ChatMessage] = {}  # (sender, cli_mid) of the tail's messages
        self.tail_since = 0.0
        self.epoch: Epoch | None = None
        self.recalled: set[int] = set()  # tail positions re-indexed by a recall while an epoch runs

    def forget(self) -> None:
        self.loaded = False
        self.tail.clear()
        self.tail_keys.clear()
        self.epoch = None
        self.recalled.clear()

    def load(self, conn: sqlite3.Connection) -> None:
        if self.loaded:
            return
        self.indexed = int(conn.execute(SQL_INDEXED).fetchone()[0])
        self.tail = {int(r[0]): chat_row(r[1:]) for r in conn.execute(SQL_TAIL, (self.indexed,))}
        self.tail_keys = {(m.sender, m.cli_mid): m for m in self.tail.values() if m.cli_mid}
        self.next_pos = max(self.tail, default=self.indexed) + 1
        self.tail_since = time.monotonic()
        self.loaded = True

    def append(self, conn: sqlite3.Connection, messages: list[ChatMessage]) -> list[tuple[object, ...]]:
        """Positions for new messages: their rows (for SQL_INSERT); they join the tail."""
        self.load(conn)
        if not self.tail:
            self.tail_since = time.monotonic()
        rows: list[tuple[object, ...]] = []
        pos = self.next_pos
        tail, keys = self.tail, self.tail_keys
        for m in messages:
            tail[pos] = m
            if m.cli_mid:
                keys[(m.sender, m.cli_mid)] = m
            rows.append(_row(pos, m))
            pos += 1
        self.next_pos = pos
        return rows

    def due(self) -> bool:
        """Whether the tail should be indexed now (or an epoch is under way)."""
        if self.epoch is not None:
            return True
        if not self.tail:
            return False
        return len(self.tail) >= EPOCH_ROWS or time.monotonic() - self.tail_since >= EPOCH_AGE_S

    def index_slice(self, conn: sqlite3.Connection, *, now: bool = False) -> bool:
        """Write the next slice of the epoch (starting one if due, or ``now`` if there is a tail); True while
        more remains."""
        self.load(conn)
        epoch = self.epoch
        if epoch is None:
            if not (self.due() or (now and self.tail)):
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
        for pos in [p for p in self.tail if p <= epoch.last]:
            m = self.tail.pop(pos)
            if m.cli_mid:
                self.tail_keys.pop((m.sender, m.cli_mid), None)
        self.tail_since = time.monotonic()
        self.epoch = None
        self.recalled.clear()
        return self.due() or (now and bool(self.tail))

    def _start(self) -> Epoch:
        messages = list(self.tail.items())
        return Epoch(
            last=messages[-1][0],
            cli_mids=sorted((m.sender, m.cli_mid, pos) for pos, m in messages if m.cli_mid),
            receivers=sorted((m.receiver, m.receiver_seq, pos) for pos, m in messages),
            senders=sorted((m.sender, m.sender_seq, pos) for pos, m in messages),
            pairs=sorted(_pair_entry(m, pos) for pos, m in messages),
        )

    def move(self, conn: sqlite3.Connection, old: ChatMessage, new: ChatMessage) -> None:
        """A recall: the row gets its new status and positions, and its log entries follow at once."""
        self.load(conn)
        pos = int(conn.execute(SQL_POS_BY_MID, (old.mid,)).fetchone()[0])
        conn.execute(SQL_MOVE, (new.status, new.recalled_by, new.sender_seq, new.receiver_seq, pos))
        if pos in self.tail:
            self.tail[pos] = new
            if new.cli_mid:
                self.tail_keys[(new.sender, new.cli_mid)] = new
            if self.epoch is None or pos > self.epoch.last:
                return  # the epoch that indexes it will see its new positions
            self.recalled.add(pos)  # the running epoch has its old ones: this one is indexed here instead
            conn.execute(SQL_INDEX_PAIR, _pair_entry(new, pos))
            if new.cli_mid:
                conn.execute(SQL_INDEX_CLI_MID, (new.sender, new.cli_mid, pos))
        conn.execute(SQL_UNINDEX_SENDER, (old.sender, old.sender_seq))
        conn.execute(SQL_UNINDEX_RECEIVER, (old.receiver, old.receiver_seq))
        conn.execute(SQL_INDEX_SENDER, (new.sender, new.sender_seq, pos))
        conn.execute(SQL_INDEX_RECEIVER, (new.receiver, new.receiver_seq, pos))
