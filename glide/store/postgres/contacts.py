"""Contacts, contact requests and privacy lists on PostgreSQL (glide.store.contacts.ContactStore)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import asyncpg

from glide.errors import BadRequest, NotAllowed, NotFound, UserNotFound
from glide.store.checks import check_id, check_int, check_text
from glide.store.contacts import (
    MAX_COMMENT,
    MAX_CONTACTS,
    MAX_PENDING_REQUESTS,
    MAX_RELATIONS,
    MAX_REMARK,
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
from glide.store.postgres.codec import dec, enc
from glide.store.postgres.connection import Conn, WriteConn
from glide.store.postgres.conversations import refused_pairs
from glide.store.postgres.engine import PgEngine

CONTACT_COLUMNS = "owner, peer, remark, last_mid, created_at, updated_at"
REQUEST_COLUMNS = "requester, target, remark, comment, status, created_at, updated_at"

SQL_CONTACTS = f"SELECT {CONTACT_COLUMNS} FROM contacts WHERE owner = $1 ORDER BY created_at, peer LIMIT $2"
SQL_CONTACT = f"SELECT {CONTACT_COLUMNS} FROM contacts WHERE owner = $1 AND peer = $2"
SQL_PENDING_TO = (
    f"SELECT {REQUEST_COLUMNS} FROM contact_requests WHERE target = $1 AND status = {REQUEST_PENDING} "
    "ORDER BY updated_at DESC, requester DESC LIMIT $2"
)
SQL_PENDING_FROM = (
    f"SELECT {REQUEST_COLUMNS} FROM contact_requests WHERE requester = $1 AND status = {REQUEST_PENDING} "
    "ORDER BY updated_at DESC, target DESC LIMIT $2"
)
SQL_PENDING_ONE = (
    f"SELECT {REQUEST_COLUMNS} FROM contact_requests "
    f"WHERE requester = $1 AND target = $2 AND status = {REQUEST_PENDING} FOR UPDATE"
)
SQL_RELATIONS = (
    "SELECT owner, other, type, created_at FROM relations WHERE owner = $1 AND type = $2 "
    "ORDER BY created_at, other LIMIT $3"
)
SQL_CONTACT_COUNT = "SELECT count(*) FROM contacts WHERE owner = $1"
SQL_SET_STATUS = "UPDATE contact_requests SET status = $1, updated_at = $2 WHERE requester = $3 AND target = $4"
PAIR_LOCK_CLASS = 0x676C69  # advisory lock namespace of contact pairs (two-int form: apart from bigint keys)


def _contact(row: asyncpg.Record) -> Contact:
    return Contact(row[0], row[1], dec(row[2]), row[3], row[4], row[5])


def _request(row: asyncpg.Record) -> ContactRequest:
    return ContactRequest(row[0], row[1], dec(row[2]), dec(row[3]), row[4], row[5], row[6])


async def _lock_pair(conn: WriteConn, a: int, b: int) -> None:
    """Serialize requests and answers between two users across nodes (A asks B while B asks A must meet)."""
    lo, hi = min(a, b), max(a, b)
    key = ((lo * 0x9E3779B1) ^ hi) % (1 << 31)
    await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", PAIR_LOCK_CLASS, key)


async def _user_exists(conn: Conn, uid: int) -> bool:
    return await conn.fetchval("SELECT 1 FROM users WHERE uid = $1", uid) is not None


async def _make_contacts(
    conn: WriteConn, a: int, b: int, remark_a: str, remark_b: str, now: int
) -> tuple[Contact, Contact]:
    """Both rows of a new contact (a's first), after the MAX_CONTACTS check."""
    for uid in (a, b):
        if int(await conn.fetchval(SQL_CONTACT_COUNT, uid)) >= MAX_CONTACTS:
            raise NotAllowed(f"user {uid} has the maximum number of contacts ({MAX_CONTACTS})")
    rows = sorted(((a, b, remark_a), (b, a, remark_b)))  # key order: concurrent inserts lock alike
    await conn.execute(
        f"INSERT INTO contacts AS c ({CONTACT_COLUMNS}) "
        "SELECT o, p, r, 0, $4, $4 FROM unnest($1::bigint[], $2::bigint[], $3::text[]) AS t(o, p, r) "
        "ON CONFLICT (owner, peer) DO UPDATE SET remark = excluded.remark, updated_at = excluded.updated_at",
        [r[0] for r in rows],
        [r[1] for r in rows],
        [enc(r[2]) for r in rows],
        now,
    )
    return Contact(a, b, remark_a, 0, now, now), Contact(b, a, remark_b, 0, now, now)


class PgContactStore:
    def __init__(self, engine: PgEngine, clock_ms: Callable[[], int]) -> None:
        self._engine = engine
        self._clock_ms = clock_ms

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

        async def op(conn: WriteConn) -> RequestOutcome:
            now = clock()
            await _lock_pair(conn, requester, target)
            for uid in (requester, target):
                if not await _user_exists(conn, uid):
                    raise UserNotFound(f"user {uid} does not exist")
            if await conn.fetchrow(SQL_CONTACT, requester, target):
                raise AlreadyContacts(f"user {target} is already a contact")
            if await refused_pairs(conn, [(requester, target)]):
                raise NotAllowed(f"user {target} does not accept contact requests from you")
            if int(await conn.fetchval(SQL_CONTACT_COUNT, requester)) >= MAX_CONTACTS:
                raise NotAllowed(f"you have the maximum number of contacts ({MAX_CONTACTS})")
            theirs = await conn.fetchrow(SQL_PENDING_ONE, target, requester)
            status = REQUEST_ACCEPTED if theirs or immediate else REQUEST_PENDING
            row = await conn.fetchrow(
                f"INSERT INTO contact_requests ({REQUEST_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $6) "
                "ON CONFLICT (requester, target) DO UPDATE SET remark = excluded.remark, "
                "comment = excluded.comment, status = excluded.status, updated_at = excluded.updated_at "
                f"RETURNING {REQUEST_COLUMNS}",
                requester,
                target,
                enc(remark),
                enc(comment),
                status,
                now,
            )
            assert row is not None
            if theirs is None and not immediate:
                return RequestOutcome(_request(row), None)
            # They asked us first (the two requests meet), or no approval is asked for: the contact is made.
            await conn.execute(SQL_SET_STATUS, REQUEST_ACCEPTED, now, target, requester)
            their_remark = _request(theirs).remark if theirs else ""
            pair = await _make_contacts(conn, requester, target, remark, their_remark, now)
            return RequestOutcome(_request(row), pair)

        return await self._engine.write(op)

    async def answer_request(self, requester: int, target: int, *, accept: bool, remark: str) -> RequestOutcome:
        check_id(requester, "requester")
        check_id(target, "target")
        check_text(remark, "remark", MAX_REMARK)
        clock = self._clock_ms

        async def op(conn: WriteConn) -> RequestOutcome:
            now = clock()
            await _lock_pair(conn, requester, target)
            row = await conn.fetchrow(SQL_PENDING_ONE, requester, target)
            if row is None:
                raise NotFound(f"no pending contact request from user {requester}")
            pending = _request(row)
            pair = await _make_contacts(conn, target, requester, remark, pending.remark, now) if accept else None
            status = REQUEST_ACCEPTED if accept else REQUEST_REJECTED
            await conn.execute(SQL_SET_STATUS, status, now, requester, target)
            answered = ContactRequest(
                requester, target, pending.remark, pending.comment, status, pending.created_at, now
            )
            return RequestOutcome(answered, pair)

        return await self._engine.write(op)

    async def pending_requests(self, target: int, *, limit: int = MAX_PENDING_REQUESTS) -> list[ContactRequest]:
        check_id(target, "target")
        n = max(1, min(limit, MAX_PENDING_REQUESTS))
        return [_request(r) for r in await self._engine.fetch(SQL_PENDING_TO, target, n)]

    async def sent_requests(self, requester: int, *, limit: int = MAX_PENDING_REQUESTS) -> list[ContactRequest]:
        check_id(requester, "requester")
        n = max(1, min(limit, MAX_PENDING_REQUESTS))
        return [_request(r) for r in await self._engine.fetch(SQL_PENDING_FROM, requester, n)]

    async def contacts(self, owner: int) -> list[Contact]:
        check_id(owner, "owner")
        return [_contact(r) for r in await self._engine.fetch(SQL_CONTACTS, owner, MAX_CONTACTS)]

    async def contact(self, owner: int, peer: int) -> Contact | None:
        check_id(owner, "owner")
        check_id(peer, "peer")
        row = await self._engine.fetchrow(SQL_CONTACT, owner, peer)
        return _contact(row) if row else None

    async def delete_contact(self, owner: int, peer: int) -> bool:
        check_id(owner, "owner")
        check_id(peer, "peer")

        async def op(conn: WriteConn) -> bool:
            status = await conn.execute(
                "DELETE FROM contacts WHERE (owner = $1 AND peer = $2) OR (owner = $2 AND peer = $1)", owner, peer
            )
            return status != "DELETE 0"

        return await self._engine.write(op)

    async def _update_contact(self, owner: int, peer: int, sql: str, value: object) -> Contact:
        clock = self._clock_ms

        async def op(conn: WriteConn) -> Contact:
            row = await conn.fetchrow(sql + f" RETURNING {CONTACT_COLUMNS}", value, clock(), owner, peer)
            if row is None:
                raise NotFound(f"user {peer} is not a contact")
            return _contact(row)

        return await self._engine.write(op)

    async def set_remark(self, owner: int, peer: int, remark: str) -> Contact:
        check_id(owner, "owner")
        check_id(peer, "peer")
        check_text(remark, "remark", MAX_REMARK)
        sql = "UPDATE contacts SET remark = $1, updated_at = $2 WHERE owner = $3 AND peer = $4"
        return await self._update_contact(owner, peer, sql, enc(remark))

    async def set_last_mid(self, owner: int, peer: int, mid: int) -> Contact:
        check_id(owner, "owner")
        check_id(peer, "peer")
        check_int(mid, "mid", 0)
        sql = "UPDATE contacts SET last_mid = greatest(last_mid, $1), updated_at = $2 WHERE owner = $3 AND peer = $4"
        return await self._update_contact(owner, peer, sql, mid)

    async def add_relations(self, owner: int, kind: int, others: Sequence[int]) -> list[int]:
        check_id(owner, "owner")
        wanted = self._relation_args(owner, kind, others)
        if owner in wanted:
            raise BadRequest("relative_ids: you cannot put yourself on your own list")
        clock = self._clock_ms

        async def op(conn: WriteConn) -> list[int]:
            now = clock()
            existing = {r[0] for r in await conn.fetch("SELECT uid FROM users WHERE uid = ANY($1::bigint[])", wanted)}
            for uid in wanted:
                if uid not in existing:
                    raise UserNotFound(f"user {uid} does not exist")
            rows = await conn.fetch(
                "INSERT INTO relations AS r (owner, other, type, created_at) "
                "SELECT $1, other, $2, $3 FROM unnest($4::bigint[]) AS t(other) ORDER BY other "
                "ON CONFLICT (owner, other) DO UPDATE SET type = excluded.type, created_at = excluded.created_at "
                "WHERE r.type <> excluded.type RETURNING other",
                owner,
                kind,
                now,
                wanted,
            )
            changed = {r[0] for r in rows}
            size = await conn.fetchval("SELECT count(*) FROM relations WHERE owner = $1 AND type = $2", owner, kind)
            if int(size) > MAX_RELATIONS:
                raise BadRequest(f"relative_ids: a list holds at most {MAX_RELATIONS} users")
            return [uid for uid in wanted if uid in changed]

        return await self._engine.write(op) if wanted else []

    async def remove_relations(self, owner: int, kind: int, others: Sequence[int]) -> list[int]:
        check_id(owner, "owner")
        wanted = self._relation_args(owner, kind, others)

        async def op(conn: WriteConn) -> list[int]:
            rows = await conn.fetch(
                "DELETE FROM relations WHERE owner = $1 AND type = $2 AND other = ANY($3::bigint[]) RETURNING other",
                owner,
                kind,
                wanted,
            )
            gone = {r[0] for r in rows}
            return [uid for uid in wanted if uid in gone]

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
        return [Relation(*r) for r in await self._engine.fetch(SQL_RELATIONS, owner, kind, MAX_RELATIONS)]

    async def set_whitelist_only(self, owner: int, enabled: bool) -> None:
        check_id(owner, "owner")
        on = bool(enabled)

        async def op(conn: WriteConn) -> None:
            await conn.execute(
                "INSERT INTO privacy (uid, whitelist_only) VALUES ($1, $2) "
                "ON CONFLICT (uid) DO UPDATE SET whitelist_only = excluded.whitelist_only",
                owner,
                on,
            )

        await self._engine.write(op)

    async def whitelist_only(self, owner: int) -> bool:
        check_id(owner, "owner")
        return bool(await self._engine.fetchval("SELECT whitelist_only FROM privacy WHERE uid = $1", owner))

    async def refused(self, pairs: Sequence[tuple[int, int]]) -> set[tuple[int, int]]:
        wanted = list(dict.fromkeys((check_id(s, "sender"), check_id(r, "receiver")) for s, r in pairs))
        if not wanted:
            return set()
        return await self._engine.read(lambda conn: refused_pairs(conn, wanted))
