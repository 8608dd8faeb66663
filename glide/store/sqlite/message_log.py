"""The 1:1 message log on SQLite: rows appended at once, their index entries written later in sorted bulk.

``chat_messages`` is append-only in write order (``pos``, allocated by the writer: the only writer of the
file); its only index is the unique ``mid``, which grows with it. What reads look messages up by lives in
four index tables — by (sender, cli_mid), by (receiver, receiver_seq), by (sender, sender_seq), by the
conversation's pair and mid. Maintaining those in place costs a dirty page per message per index per
commit (their keys are scattered over every user); instead the writer keeps the rows written since the
last indexing in memory (the *tail*, with a view per user and per pair) and, once the tail is big or old
enough, writes the index entries of that *epoch* sorted by key: the background worker (its own thread and
connection, glide.store.sqlite.background) sorts every index's entries into a table of its scratch database
in one go, then the loop's transactions copy a slice of them each, one index after the other. Entries of one
user land together, so a page takes many entries at once; the sort (tens of milliseconds for an epoch) never
holds the event loop; no transaction does much of it; and no entry passes through Python.

Reads combine both: the index tables for positions up to ``indexed`` (the last completed epoch) and the
tail's views above it. ``indexed`` is saved with the epoch's last slice; after a crash the rows above it are
read back into the tail and indexed again.
"""

from __future__ import annotations

import asyncio
import heapq
import sqlite3
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from glide.store.base import ChatMessage
from glide.store.sqlite.background import SCRATCH

COLUMNS = (
    "mid, cli_mid, sender, receiver, type, content, send_at, created_at, status, recalled_by, sender_seq, receiver_seq"
)
M_COLUMNS = ", ".join("m." + c.strip() for c in COLUMNS.split(","))
# An epoch dirties about a page per active user per index table however few of its entries are theirs, so a bigger
# epoch writes fewer pages per message (full case1: 59.6 WAL frames per commit, 81 % of them the index tables',
# with 8,192 rows; 18.5 and 59 % with this many). The tail costs ~590 bytes of memory per message (~19 MiB at this
# size, twice that while an epoch is indexed); the worker sorts an index's entries in one statement (~10 ms here).
EPOCH_ROWS = 32768  # a tail this long is indexed...
EPOCH_AGE_S = 2.0  # ...and so is an older one
RELEASE_SLICE = 4096  # entries of an indexed generation freed per loop iteration (~1 ms)
SLICE = 256  # index entries per transaction while an epoch is written (~1 ms on a busy server)

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
SQL_INDEX_RECEIVER = "INSERT OR REPLACE INTO chat_by_receiver (receiver, seq, pos) VALUES (?, ?, ?)"
SQL_INDEX_SENDER = "INSERT OR REPLACE INTO chat_by_sender (sender, seq, pos) VALUES (?, ?, ?)"
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


@dataclass(frozen=True)
class EpochIndex:
    """How an epoch writes one index table: the background worker (glide.store.sqlite.background) copies its
    entries from the log's rows into a table of the scratch database, sorted (row ids from 1, in key order),
    off the event loop; the loop's transactions then copy a range of row ids each into the index table. No
    Python per entry, and no statement holds the loop long."""

    table: str
    create: str
    clear: str
    fill: str  # ?1 < pos <= ?2: the epoch's rows
    copy: str  # ?1 < rowid <= ?2: one slice


def _epoch_index(table: str, columns: str, source: str, key: str, where: str = "") -> EpochIndex:
    sorted_ = f"{SCRATCH}.epoch_{table}"
    rows = f"FROM main.chat_messages WHERE pos > ?1 AND pos <= ?2{where} ORDER BY {key}"
    return EpochIndex(
        table=table,
        create=f"CREATE TABLE IF NOT EXISTS {sorted_} ({columns})",
        clear=f"DELETE FROM {sorted_}",
        fill=f"INSERT INTO {sorted_} SELECT {source} {rows}",
        copy=f"INSERT OR REPLACE INTO main.{table} ({columns}) SELECT {columns} FROM {sorted_} "
        "WHERE rowid > ?1 AND rowid <= ?2",
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


def sort_epoch(first: int, last: int) -> Callable[[sqlite3.Connection], list[int]]:
    """The background job of an epoch: every index's entries of the rows above ``first`` up to ``last``
    sorted into the scratch database; how many each has."""

    def job(conn: sqlite3.Connection) -> list[int]:
        conn.execute("BEGIN")
        entries: list[int] = []
        for index in EPOCH_INDEXES:
            conn.execute(index.create)
            conn.execute(index.clear)
            entries.append(conn.execute(index.fill, (first, last)).rowcount)
        conn.execute("COMMIT")
        return entries

    return job


def chat_row(row: tuple[object, ...]) -> ChatMessage:
    return ChatMessage(*row)  # type: ignore[arg-type]


@dataclass
class Epoch:
    """The index entries of the log up to ``last``: sorted by the background worker (``entries``: how many
    each index has, None until then), then written one index after the other, a slice per transaction."""

    last: int  # it indexes the rows above the log's `indexed` position up to this one
    entries: list[int] | None = None
    sorting: bool = False  # the sort was asked for
    index: int = 0  # of EPOCH_INDEXES
    done: int = 0  # of its entries written
    # Recalls of its messages: (position, as it was, as it is). The sort may have read either row, so the
    # entries of the old positions are removed, and those of the new written, once the copies are over.
    moved: list[tuple[int, ChatMessage, ChatMessage]] = field(default_factory=list)

    def ready(self, entries: list[int]) -> None:
        """The sort is over: ``entries`` per index."""
        self.entries = entries
        self.advance(0)

    def advance(self, written: int) -> None:
        """``written`` more entries of the current index are in its table (an empty index is skipped)."""
        entries = self.entries
        assert entries is not None
        self.done += written
        while self.index < len(entries) and self.done >= entries[self.index]:
            self.index, self.done = self.index + 1, 0

    def finished(self) -> bool:
        return self.entries is not None and self.index >= len(self.entries)


class Generation:
    """Messages of the tail with the views reads need: by key, by receiver and by sender (ascending log
    position), by pair (ascending mid)."""

    __slots__ = ("by_key", "by_pair", "by_receiver", "by_sender", "rows")

    def __init__(self, rows: Iterable[tuple[int, ChatMessage]] = ()) -> None:
        """From rows in position order (the views are then sorted: a recall may have moved some)."""
        self.rows: dict[int, ChatMessage] = {}  # position -> message
        self.by_key: dict[tuple[int, str], ChatMessage] = {}
        self.by_receiver: dict[int, list[ChatMessage]] = {}
        self.by_sender: dict[int, list[ChatMessage]] = {}
        self.by_pair: dict[tuple[int, int], list[ChatMessage]] = {}
        for pos, m in rows:
            self.add(pos, m)
        if self.rows:
            for received in self.by_receiver.values():
                received.sort(key=_r_seq)
            for sent in self.by_sender.values():
                sent.sort(key=_s_seq)
            for messages in self.by_pair.values():
                messages.sort(key=_mid)

    def add(self, pos: int, m: ChatMessage) -> None:
        self.rows[pos] = m
        if m.cli_mid:
            self.by_key[(m.sender, m.cli_mid)] = m
        sender, receiver = m.sender, m.receiver
        self.by_receiver.setdefault(receiver, []).append(m)
        self.by_sender.setdefault(sender, []).append(m)
        pair = (sender, receiver) if sender <= receiver else (receiver, sender)
        self.by_pair.setdefault(pair, []).append(m)

    def dismantle(self, entries: int) -> bool:
        """Drop up to ``entries`` of its entries (the views first, the messages last); True while some remain."""
        for view in (self.by_key, self.by_pair, self.by_sender, self.by_receiver, self.rows):
            n = min(entries, len(view))
            popitem = view.popitem
            for _ in range(n):
                popitem()
            if view:
                return True
            entries -= n
        return False

    def head(self, uid: int) -> int:
        """``uid``'s newest position here (0: none)."""
        received = self.by_receiver.get(uid)
        sent = self.by_sender.get(uid)
        return max(received[-1].receiver_seq if received else 0, sent[-1].sender_seq if sent else 0)


class Tail:
    """The messages above the indexed position: those of the epoch being indexed (``frozen``) and those
    appended since (``live``). An epoch freezes the live generation and, once indexed, drops it: neither
    walks the messages. Frozen-then-live is ascending in each user's log; a frozen message that a recall moves
    to the end of its users' logs moves to the live generation so that it stays so (``moved``: dropped from
    there when its epoch is indexed)."""

    __slots__ = ("frozen", "live", "moved")

    def __init__(self, rows: Iterable[tuple[int, ChatMessage]] = ()) -> None:
        self.live = Generation(rows)
        self.frozen = EMPTY
        self.moved: set[int] = set()

    def positions(self) -> list[int]:
        """Every position here, ascending."""
        return sorted([*self.frozen.rows, *self.live.rows])

    def keyed(self, key: tuple[int, str]) -> ChatMessage | None:
        return self.keyed_many((key,)).get(key)

    def keyed_many(self, keys: Iterable[tuple[int, str]]) -> dict[tuple[int, str], ChatMessage]:
        """The messages here with these (sender, cli_mid) keys: one call for a batch's keys."""
        live, frozen = self.live.by_key, self.frozen.by_key
        return {key: m for key in keys if (m := live.get(key) or frozen.get(key)) is not None}

    def received(self, uid: int) -> Sequence[ChatMessage]:
        """``uid``'s incoming messages here, ascending."""
        return _joined(self.frozen.by_receiver.get(uid), self.live.by_receiver.get(uid))

    def sent(self, uid: int) -> Sequence[ChatMessage]:
        return _joined(self.frozen.by_sender.get(uid), self.live.by_sender.get(uid))

    def paired(self, pair: tuple[int, int]) -> Sequence[ChatMessage]:
        """The pair's messages here, by ascending mid (a moved message's mid is older than the frozen ones)."""
        frozen, live = self.frozen.by_pair.get(pair), self.live.by_pair.get(pair)
        return sorted([*frozen, *live], key=_mid) if frozen and live else frozen or live or ()

    def head(self, uid: int) -> int:
        """``uid``'s newest position in the tail (0: none)."""
        return max(self.live.head(uid), self.frozen.head(uid))

    def freeze(self) -> None:
        """An epoch starts: what is here now is what it indexes."""
        self.frozen, self.live = self.live, Generation()

    def indexed(self, last: int) -> None:
        """The frozen messages (positions up to ``last``) are in the index tables now."""
        _release(self.frozen)
        self.frozen = EMPTY
        if self.moved:
            self.live = Generation((pos, m) for pos, m in self.live.rows.items() if pos > last)
            self.moved.clear()

    def move(self, pos: int, m: ChatMessage) -> bool:
        """A recall gave the message at ``pos`` new positions; whether it is here."""
        if pos in self.live.rows:
            self.live = Generation({**self.live.rows, pos: m}.items())
        elif pos in self.frozen.rows:
            self.frozen = Generation((p, f) for p, f in self.frozen.rows.items() if p != pos)
            self.live = Generation([*self.live.rows.items(), (pos, m)])
            self.moved.add(pos)
        else:
            return False
        return True


EMPTY = Generation()  # never added to: a Tail's frozen generation while no epoch runs


def _release(generation: Generation) -> None:
    """Free a generation a slice per loop iteration: an epoch's holds ~5 objects per message, and freeing
    them at once held the loop ~9 ms at the end of every epoch."""
    if generation is EMPTY or not generation.dismantle(RELEASE_SLICE):
        return
    try:
        asyncio.get_running_loop().call_soon(_release, generation)
    except RuntimeError:  # no loop (a script): all at once
        generation.dismantle(sys.maxsize)


def _joined(a: list[ChatMessage] | None, b: list[ChatMessage] | None) -> Sequence[ChatMessage]:
    if a and b:
        return a + b
    return a or b or ()


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

    def forget(self) -> None:
        self.loaded = False
        self.tail = Tail()
        self.epoch = None

    def load(self, conn: sqlite3.Connection) -> None:
        if self.loaded:
            return
        self.indexed = int(conn.execute(SQL_INDEXED).fetchone()[0])
        self.tail = Tail((int(r[0]), chat_row(r[1:])) for r in conn.execute(SQL_TAIL, (self.indexed,)))
        self.next_pos = max(self.tail.live.rows, default=self.indexed) + 1
        self.tail_since = time.monotonic()
        self.loaded = True

    def append(self, conn: sqlite3.Connection, messages: list[ChatMessage]) -> list[tuple[object, ...]]:
        """Positions for new messages: their rows (for SQL_INSERT); they join the tail."""
        self.load(conn)
        if not self.tail.live.rows:
            self.tail_since = time.monotonic()
        rows: list[tuple[object, ...]] = []
        pos = self.next_pos
        add = self.tail.live.add
        for m in messages:
            add(pos, m)
            rows.append(  # the values of SQL_INSERT
                (pos, m.mid, m.cli_mid, m.sender, m.receiver, m.type, m.content, m.send_at, m.created_at,
                 m.sender_seq, m.receiver_seq)
            )  # fmt: skip
            pos += 1
        self.next_pos = pos
        return rows

    # reads: the index up to `indexed`, the tail above it

    def by_cli_mid(self, conn: sqlite3.Connection, sender: int, cli_mid: str) -> ChatMessage | None:
        self.load(conn)
        m = self.tail.keyed((sender, cli_mid))
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
        tail = [m for m in self.tail.received(uid) if m.receiver_seq > after]
        return (indexed + tail)[:limit] if not indexed or not tail else _merged(indexed, tail, limit, _r_seq)

    def incoming_seqs(self, conn: sqlite3.Connection, uid: int, after: int, limit: int) -> list[int]:
        self.load(conn)
        seqs = [r[0] for r in conn.execute(SQL_INCOMING_SEQS, (uid, after, self.indexed, limit))]
        seqs += [m.receiver_seq for m in self.tail.received(uid) if m.receiver_seq > after]
        seqs.sort()
        return seqs[:limit]

    def incoming_up_to_mid(self, conn: sqlite3.Connection, uid: int, after: int, mid: int) -> list[int]:
        self.load(conn)
        seqs = [r[0] for r in conn.execute(SQL_INCOMING_UP_TO_MID, (uid, after, self.indexed, mid))]
        tail = self.tail.received(uid)
        return seqs + [m.receiver_seq for m in tail if m.receiver_seq > after and m.mid <= mid]

    def log(self, conn: sqlite3.Connection, uid: int, after: int, limit: int) -> list[tuple[int, ChatMessage]]:
        """``uid``'s log above position ``after`` (both directions), ascending, at most ``limit``."""
        self.load(conn)
        entries = [(int(r[0]), chat_row(r[1:])) for r in conn.execute(SQL_LOG, (uid, after, self.indexed, limit))]
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
        """Whether a step of indexing can be written now: an epoch's sort is over, or a new one is due."""
        if self.epoch is not None:
            return self.epoch.entries is not None
        rows = self.tail.live.rows
        return bool(rows) and (len(rows) >= EPOCH_ROWS or time.monotonic() - self.tail_since >= EPOCH_AGE_S)

    def index_slice(self, conn: sqlite3.Connection, *, now: bool = False) -> bool:
        """Write the next step of the epoch, or start one if due (or ``now`` if there is a tail); True while
        more can be written. A new epoch needs its sort first (``unsorted``), after this transaction."""
        self.load(conn)
        epoch = self.epoch
        if epoch is None:
            if self.due() or (now and self.tail.live.rows):
                self.epoch = Epoch(self.next_pos - 1)
                self.tail.freeze()
            return False
        if epoch.entries is None:
            return False
        if not epoch.finished():
            conn.execute(EPOCH_INDEXES[epoch.index].copy, (epoch.done, epoch.done + SLICE))
            epoch.advance(SLICE)
            if not epoch.finished():
                return True
        for pos, old, new in epoch.moved:
            _reindex(conn, pos, old, new)
        conn.execute(SQL_INDEXED_SAVE, (epoch.last,))
        self.indexed = epoch.last
        self.tail.indexed(epoch.last)
        self.epoch = None
        return self.due() or (now and bool(self.tail.live.rows))

    def unsorted(self) -> Epoch | None:
        """The epoch whose sort is yet to be asked for (it is, once this returns it)."""
        epoch = self.epoch
        if epoch is None or epoch.entries is not None or epoch.sorting:
            return None
        epoch.sorting = True
        return epoch

    def move(self, conn: sqlite3.Connection, old: ChatMessage, new: ChatMessage) -> None:
        """A recall: the row gets its new status and positions, and its log entries follow (its key in the
        other indexes stays: sender, cli_mid, pair and mid do not change)."""
        self.load(conn)
        pos = int(conn.execute(SQL_POS_BY_MID, (old.mid,)).fetchone()[0])
        conn.execute(SQL_MOVE, (new.status, new.recalled_by, new.sender_seq, new.receiver_seq, pos))
        if self.tail.move(pos, new):
            epoch = self.epoch
            if epoch is not None and pos <= epoch.last:
                epoch.moved.append((pos, old, new))  # its entries are read above `indexed` from the tail till then
            return  # else the epoch that indexes it reads its new positions
        _reindex(conn, pos, old, new)


def _reindex(conn: sqlite3.Connection, pos: int, old: ChatMessage, new: ChatMessage) -> None:
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
