"""The SQLite backend of :class:`glide.store.contacts.ContactStore`, and schema v4 (contacts, privacy,
conversations, timeline)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence

from glide.errors import BadRequest, NotAllowed, NotFound, UserNotFound
from glide.store.checks import check_id, check_int, check_text
from glide.store.contacts import (
    MAX_COMMENT,
    MAX_CONTACTS,
    MAX_PENDING_REQUESTS,
    MAX_RELATIONS,
    MAX_REMARK,
    RELATION_BLACK,
    RELATION_WHITE,
    RELATIONS,
    REQUEST_ACCEPTED,
    REQUEST_PENDING,
    REQUEST_REJECTED,
    AlreadyContacts,
    Contact,
    ContactRequest,
    Relation,
    RequestOutcome,
)
from glide.store.sqlite.engine import SqliteEngine

CONTACT_COLUMNS = "owner, peer, remark, last_mid, created_at, updated_at"
REQUEST_COLUMNS = "requester, target, remark, comment, status, created_at, updated_at"

# The receiver's relation to the sender and its whitelist-only flag, in one statement (two PK lookups).
SQL_REFUSAL = (
    "SELECT (SELECT type FROM relations WHERE owner = ?1 AND other = ?2), "
    "(SELECT whitelist_only FROM privacy WHERE uid = ?1)"
)
SQL_CONTACTS = f"SELECT {CONTACT_COLUMNS} FROM contacts WHERE owner = ? ORDER BY created_at, peer LIMIT ?"
SQL_CONTACT = f"SELECT {CONTACT_COLUMNS} FROM contacts WHERE owner = ? AND peer = ?"
SQL_PENDING_TO = (
    f"SELECT {REQUEST_COLUMNS} FROM contact_requests WHERE target = ? AND status = 0 "
    "ORDER BY updated_at DESC, requester DESC LIMIT ?"
)
SQL_PENDING_FROM = (
    f"SELECT {REQUEST_COLUMNS} FROM contact_requests WHERE requester = ? AND status = 0 "
    "ORDER BY updated_at DESC, target DESC LIMIT ?"
)
SQL_RELATIONS = (
    "SELECT owner, other, type, created_at FROM relations WHERE owner = ? AND type = ? "
    "ORDER BY created_at, other LIMIT ?"
)


def v4_contacts(conn: sqlite3.Connection) -> None:
    """Schema v4: contacts, contact requests, privacy lists, conversations and timelines (backfilled from
    the stored messages: every existing conversation starts read)."""
    conn.execute(
        """CREATE TABLE contacts (
            owner INTEGER NOT NULL,
            peer INTEGER NOT NULL,
            remark TEXT NOT NULL,
            last_mid INTEGER NOT NULL DEFAULT 0,
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL,
            PRIMARY KEY (owner, peer)
        ) WITHOUT ROWID"""
    )
    conn.execute(
        """CREATE TABLE contact_requests (
            requester INTEGER NOT NULL,
            target INTEGER NOT NULL,
            remark TEXT NOT NULL,
            comment TEXT NOT NULL,
            status INTEGER NOT NULL,
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL,
            PRIMARY KEY (requester, target)
        ) WITHOUT ROWID"""
    )
    conn.execute("CREATE INDEX contact_requests_to ON contact_requests (target, status, updated_at)")
    conn.execute("CREATE INDEX contact_requests_from ON contact_requests (requester, status, updated_at)")
    conn.execute(
        """CREATE TABLE relations (
            owner INTEGER NOT NULL,
            other INTEGER NOT NULL,
            type INTEGER NOT NULL,
            created_at INTEGER NOT NULL,
            PRIMARY KEY (owner, other)
        ) WITHOUT ROWID"""
    )
    conn.execute("CREATE INDEX relations_list ON relations (owner, type, created_at)")
    conn.execute("CREATE TABLE privacy (uid INTEGER PRIMARY KEY, whitelist_only INTEGER NOT NULL)")
    conn.execute(
        """CREATE TABLE conversations (
            owner INTEGER NOT NULL,
            peer INTEGER NOT NULL,
            last_mid INTEGER NOT NULL,
            read_mid INTEGER NOT NULL,
            unread INTEGER NOT NULL,
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL,
            PRIMARY KEY (owner, peer)
        ) WITHOUT ROWID"""
    )
    conn.execute("CREATE INDEX conversations_recent ON conversations (owner, updated_at, peer)")
    conn.execute(
        """CREATE TABLE timeline (
            uid INTEGER NOT NULL,
            seq INTEGER NOT NULL,
            mid INTEGER NOT NULL,
            PRIMARY KEY (uid, seq)
        ) WITHOUT ROWID"""
    )
    conn.execute(
        "INSERT INTO conversations (owner, peer, last_mid, read_mid, unread, created_at, updated_at) "
        "SELECT owner, peer, max(mid), max(mid), 0, min(created_at), max(created_at) FROM ("
        " SELECT sender AS owner, receiver AS peer, mid, created_at FROM chat_messages"
        " UNION ALL SELECT receiver, sender, mid, created_at FROM chat_messages WHERE receiver <> sender"
        ") GROUP BY owner, peer"
    )
    conn.execute(
        "INSERT INTO timeline (uid, seq, mid) "
        "SELECT uid, row_number() OVER (PARTITION BY uid ORDER BY mid), mid FROM ("
        " SELECT sender AS uid, mid FROM chat_messages UNION SELECT receiver, mid FROM chat_messages)"
    )


# Everyone who may refuse someone: a blacklist entry, or whitelist-only on (read whole once, when the store opens).
SQL_REFUSERS = (
    f"SELECT owner FROM relations WHERE type = {RELATION_BLACK} UNION SELECT uid FROM privacy WHERE whitelist_only"
)


class Refusers:
    """The users who may refuse a sender: those with a blacklist entry or whitelist-only on. A receiver outside it
    refuses nobody, so the message path asks the database (:func:`refuses`) only about receivers in it: most users
    never block anyone, and that query was the largest single line of a one-message transaction.

    Read when the store opens (:meth:`loaded`), then grown by every write that may make a user refuse, in its
    transaction (a rollback leaves that user in for nothing: only a query more). It never shrinks while open (a
    user who empties their blacklist stays: again only a query more), so it always holds every refuser; the
    database file is this process's alone (DatabaseLock), so no other writer can add one unseen."""

    def __init__(self) -> None:
        self.uids: set[int] | None = None

    def add(self, uid: int) -> None:
        """``uid`` may now refuse someone (before it is loaded, the load reads the row this write adds)."""
        if self.uids is not None:
            self.uids.add(uid)

    def loaded(self, conn: sqlite3.Connection) -> set[int]:
        """Every user who may refuse someone (read now if not yet)."""
        if self.uids is None:
            self.uids = {row[0] for row in conn.execute(SQL_REFUSERS)}
        return self.uids


def refuses(conn: sqlite3.Connection, sender: int, receiver: int) -> bool:
    """Whether ``receiver`` refuses messages from ``sender`` (the rule of glide.store.contacts)."""
    if sender == receiver:
        return False
    relation, whitelist_only = conn.execute(SQL_REFUSAL, (receiver, sender)).fetchone()
    return relation == RELATION_BLACK or (bool(whitelist_only) and relation != RELATION_WHITE)


def _contact(row: tuple[object, ...]) -> Contact:
    return Contact(*row)  # type: ignore[arg-type]


def _request(row: tuple[object, ...]) -> ContactRequest:
    return ContactRequest(*row)  # type: ignore[arg-type]


def _user_exists(conn: sqlite3.Connection, uid: int) -> bool:
    return conn.execute("SELECT 1 FROM users WHERE uid = ?", (uid,)).fetchone() is not None


def _contact_count(conn: sqlite3.Connection, uid: int) -> int:
    return int(conn.execute("SELECT count(*) FROM contacts WHERE owner = ?", (uid,)).fetchone()[0])


def _make_contacts(
    conn: sqlite3.Connection, a: int, b: int, remark_a: str, remark_b: str, now: int
) -> tuple[Contact, Contact]:
    """Both rows of a new contact (a's first), after the MAX_CONTACTS check."""
    for uid in (a, b):
        if _contact_count(conn, uid) >= MAX_CONTACTS:
            raise NotAllowed(f"user {uid} has the maximum number of contacts ({MAX_CONTACTS})")
    rows = ((a, b, remark_a), (b, a, remark_b))
    conn.executemany(
        f"INSERT INTO contacts ({CONTACT_COLUMNS}) VALUES (?, ?, ?, 0, ?, ?) "
        "ON CONFLICT (owner, peer) DO UPDATE SET remark = excluded.remark, updated_at = excluded.updated_at",
        [(o, p, r, now, now) for o, p, r in rows],
    )
    return Contact(a, b, remark_a, 0, now, now), Contact(b, a, remark_b, 0, now, now)


class SqliteContactStore:
    def __init__(self, engine: SqliteEngine, clock_ms: Callable[[], int], refusers: Refusers) -> None:
        self._engine = engine
        self._clock_ms = clock_ms
        self._refusers = refusers

    async def request_contact(
        self, requester: int, target: int, *, remark: str, comment: str, immediate: bool = False
    ) -> RequestOutcome:
        check_id(requester, "requester")
        check_id(target, "target")
        check_text(remark, "remark", MAX_REMARK)
        check_text(comment, "comment", MAX_COMMENT)
        if requester == target:
            raise BadRequest("uid: you cannot add yourself as a contact", code=2001)
        clock = self._clock_ms

        def op(conn: sqlite3.Connection) -> RequestOutcome:
            now = clock()
            for uid in (requester, target):
                if not _user_exists(conn, uid):
                    raise UserNotFound(f"user {uid} does not exist")
            if conn.execute(SQL_CONTACT, (requester, target)).fetchone():
                raise AlreadyContacts(f"user {target} is already a contact")
            if refuses(conn, requester, target):
                raise NotAllowed(f"user {target} does not accept contact requests from you")
            if _contact_count(conn, requester) >= MAX_CONTACTS:
                raise NotAllowed(f"you have the maximum number of contacts ({MAX_CONTACTS})")
            theirs = conn.execute(
                f"SELECT {REQUEST_COLUMNS} FROM contact_requests WHERE requester = ? AND target = ? AND status = 0",
                (target, requester),
            ).fetchone()
            status = REQUEST_ACCEPTED if theirs or immediate else REQUEST_PENDING
            row = conn.execute(
                f"INSERT INTO contact_requests ({REQUEST_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (requester, target) DO UPDATE SET remark = excluded.remark, "
                "comment = excluded.comment, status = excluded.status, updated_at = excluded.updated_at "
                f"RETURNING {REQUEST_COLUMNS}",
                (requester, target, remark, comment, status, now, now),
            ).fetchone()
            if theirs is None and not immediate:
                return RequestOutcome(_request(row), None)
            # They asked us first (the two requests meet), or no approval is asked for: the contact is made.
            conn.execute(
                "UPDATE contact_requests SET status = ?, updated_at = ? WHERE requester = ? AND target = ?",
                (REQUEST_ACCEPTED, now, target, requester),
            )
            their_remark = _request(theirs).remark if theirs else ""
            pair = _make_contacts(conn, requester, target, remark, their_remark, now)
            return RequestOutcome(_request(row), pair)

        return await self._engine.write(op)

    async def answer_request(self, requester: int, target: int, *, accept: bool, remark: str) -> RequestOutcome:
        check_id(requester, "requester")
        check_id(target, "target")
        check_text(remark, "remark", MAX_REMARK)
        clock = self._clock_ms

        def op(conn: sqlite3.Connection) -> RequestOutcome:
            now = clock()
            row = conn.execute(
                f"SELECT {REQUEST_COLUMNS} FROM contact_requests WHERE requester = ? AND target = ? AND status = 0",
                (requester, target),
            ).fetchone()
            if row is None:
                raise NotFound(f"no pending contact request from user {requester}")
            pending = _request(row)
            pair = _make_contacts(conn, target, requester, remark, pending.remark, now) if accept else None
            status = REQUEST_ACCEPTED if accept else REQUEST_REJECTED
            conn.execute(
                "UPDATE contact_requests SET status = ?, updated_at = ? WHERE requester = ? AND target = ?",
                (status, now, requester, target),
            )
            answered = ContactRequest(
                requester, target, pending.remark, pending.comment, status, pending.created_at, now
            )
            return RequestOutcome(answered, pair)

        return await self._engine.write(op)

    async def pending_requests(self, target: int, *, limit: int = MAX_PENDING_REQUESTS) -> list[ContactRequest]:
        check_id(target, "target")
        n = max(1, min(limit, MAX_PENDING_REQUESTS))
        return await self._engine.read(lambda conn: [_request(r) for r in conn.execute(SQL_PENDING_TO, (target, n))])

    async def sent_requests(self, requester: int, *, limit: int = MAX_PENDING_REQUESTS) -> list[ContactRequest]:
        check_id(requester, "requester")
        n = max(1, min(limit, MAX_PENDING_REQUESTS))
        return await self._engine.read(
            lambda conn: [_request(r) for r in conn.execute(SQL_PENDING_FROM, (requester, n))]
        )

    async def contacts(self, owner: int) -> list[Contact]:
        check_id(owner, "owner")
        return await self._engine.read(
            lambda conn: [_contact(r) for r in conn.execute(SQL_CONTACTS, (owner, MAX_CONTACTS))]
        )

    async def contact(self, owner: int, peer: int) -> Contact | None:
        check_id(owner, "owner")
        check_id(peer, "peer")

        def op(conn: sqlite3.Connection) -> Contact | None:
            row = conn.execute(SQL_CONTACT, (owner, peer)).fetchone()
            return _contact(row) if row else None

        return await self._engine.read(op)

    async def delete_contact(self, owner: int, peer: int) -> bool:
        check_id(owner, "owner")
        check_id(peer, "peer")

        def op(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                "DELETE FROM contacts WHERE (owner = ?1 AND peer = ?2) OR (owner = ?2 AND peer = ?1)", (owner, peer)
            )
            return cur.rowcount > 0

        return await self._engine.write(op)

    async def _update_contact(self, owner: int, peer: int, sql: str, value: object) -> Contact:
        clock = self._clock_ms

        def op(conn: sqlite3.Connection) -> Contact:
            row = conn.execute(sql + f" RETURNING {CONTACT_COLUMNS}", (value, clock(), owner, peer)).fetchone()
            if row is None:
                raise NotFound(f"user {peer} is not a contact")
            return _contact(row)

        return await self._engine.write(op)

    async def set_remark(self, owner: int, peer: int, remark: str) -> Contact:
        check_id(owner, "owner")
        check_id(peer, "peer")
        check_text(remark, "remark", MAX_REMARK)
        sql = "UPDATE contacts SET remark = ?, updated_at = ? WHERE owner = ? AND peer = ?"
        return await self._update_contact(owner, peer, sql, remark)

    async def set_last_mid(self, owner: int, peer: int, mid: int) -> Contact:
        check_id(owner, "owner")
        check_id(peer, "peer")
        check_int(mid, "mid", 0)
        sql = "UPDATE contacts SET last_mid = max(last_mid, ?), updated_at = ? WHERE owner = ? AND peer = ?"
        return await self._update_contact(owner, peer, sql, mid)

    async def add_relations(self, owner: int, kind: int, others: Sequence[int]) -> list[int]:
        check_id(owner, "owner")
        wanted = self._relation_args(owner, kind, others)
        if owner in wanted:
            raise BadRequest("relative_ids: you cannot put yourself on your own list")
        clock, refusers = self._clock_ms, self._refusers

        def op(conn: sqlite3.Connection) -> list[int]:
            now = clock()
            for uid in wanted:
                if not _user_exists(conn, uid):
                    raise UserNotFound(f"user {uid} does not exist")
            if kind == RELATION_BLACK:
                refusers.add(owner)
            changed = []
            for uid in wanted:
                cur = conn.execute(
                    "INSERT INTO relations (owner, other, type, created_at) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (owner, other) DO UPDATE SET type = excluded.type, created_at = excluded.created_at "
                    "WHERE type <> excluded.type",
                    (owner, uid, kind, now),
                )
                if cur.rowcount:
                    changed.append(uid)
            size = conn.execute("SELECT count(*) FROM relations WHERE owner = ? AND type = ?", (owner, kind)).fetchone()
            if int(size[0]) > MAX_RELATIONS:
                raise BadRequest(f"relative_ids: a list holds at most {MAX_RELATIONS} users")
            return changed

        return await self._engine.write(op) if wanted else []

    async def remove_relations(self, owner: int, kind: int, others: Sequence[int]) -> list[int]:
        check_id(owner, "owner")
        wanted = self._relation_args(owner, kind, others)

        def op(conn: sqlite3.Connection) -> list[int]:
            sql = "DELETE FROM relations WHERE owner = ? AND other = ? AND type = ?"
            return [uid for uid in wanted if conn.execute(sql, (owner, uid, kind)).rowcount]

        return await self._engine.write(op) if wanted else []

    @staticmethod
    def _relation_args(owner: int, kind: int, others: Sequence[int]) -> list[int]:
        if kind not in RELATIONS:
            raise BadRequest(f"kind: expected one of {RELATIONS}, got {kind!r:.20}")
        if len(others) > MAX_RELATIONS:
            raise BadRequest(f"relative_ids: at most {MAX_RELATIONS} per request")
        return list(dict.fromkeys(check_id(uid, f"others[{i}]") for i, uid in enumerate(others)))

    async def relations(self, owner: int, kind: int) -> list[Relation]:
        check_id(owner, "owner")
        if kind not in RELATIONS:
            raise BadRequest(f"kind: expected one of {RELATIONS}, got {kind!r:.20}")
        return await self._engine.read(
            lambda conn: [Relation(*r) for r in conn.execute(SQL_RELATIONS, (owner, kind, MAX_RELATIONS))]
        )

    async def set_whitelist_only(self, owner: int, enabled: bool) -> None:
        check_id(owner, "owner")
        on = int(bool(enabled))
        refusers = self._refusers

        def op(conn: sqlite3.Connection) -> None:
            if on:
                refusers.add(owner)
            conn.execute(
                "INSERT INTO privacy (uid, whitelist_only) VALUES (?, ?) "
                "ON CONFLICT (uid) DO UPDATE SET whitelist_only = excluded.whitelist_only",
                (owner, on),
            )

        await self._engine.write(op)

    async def whitelist_only(self, owner: int) -> bool:
        check_id(owner, "owner")

        def op(conn: sqlite3.Connection) -> bool:
            row = conn.execute("SELECT whitelist_only FROM privacy WHERE uid = ?", (owner,)).fetchone()
            return bool(row and row[0])

        return await self._engine.read(op)

    async def refused(self, pairs: Sequence[tuple[int, int]]) -> set[tuple[int, int]]:
        wanted = list(dict.fromkeys((check_id(s, "sender"), check_id(r, "receiver")) for s, r in pairs))
        if not wanted:
            return set()
        return await self._engine.read(lambda conn: {p for p in wanted if refuses(conn, *p)})
