"""Group store building blocks on PostgreSQL: the queries, row decoding, and the steps every group
operation is made of (run on a connection inside one writer operation, or on a pooled reader)."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from glide.errors import NotFound, StorageError, UserNotFound
from glide.store.groups import (
    KIND_NOTICE,
    ROLE_ADMIN,
    ROLE_OWNER,
    Group,
    GroupChange,
    GroupMember,
    GroupMessage,
    GroupNotFound,
    notice_content,
)
from glide.store.postgres.codec import dec, enc
from glide.store.postgres.connection import Conn, WriteConn
from glide.store.postgres.conversations import refused_pairs
from glide.store.postgres.routines import PLANNED_ONCE, routine

GROUP_COLUMNS = (
    "gid, name, avatar, owner, muted, dissolved, created_at, last_seq, last_mid, last_msg_at, "
    "join_policy, history_from_join"
)
MEMBER_COLUMNS = "gid, uid, role, muted, joined_at, read_seq, joined_seq"
GMSG_COLUMNS = "mid, gid, seq, kind, cli_mid, sender, type, content, send_at, created_at, status, recalled_by"

# Every query of the group message path, named so tests can check each one is served by an index.
SQL_GROUP = f"SELECT {GROUP_COLUMNS} FROM groups WHERE gid = $1"
SQL_GROUP_LOCK = f"SELECT {GROUP_COLUMNS} FROM groups WHERE gid = $1 FOR UPDATE"
SQL_GROUPS = f"SELECT {GROUP_COLUMNS} FROM groups WHERE gid = ANY($1::bigint[])"
SQL_MEMBER = f"SELECT {MEMBER_COLUMNS} FROM group_members WHERE gid = $1 AND uid = $2"
SQL_MEMBERS_OF = f"SELECT {MEMBER_COLUMNS} FROM group_members WHERE gid = $1 AND uid = ANY($2::bigint[])"
SQL_MEMBERS = f"SELECT {MEMBER_COLUMNS} FROM group_members WHERE gid = $1 ORDER BY role, joined_at, uid LIMIT $2"
SQL_MEMBER_UIDS = "SELECT uid FROM group_members WHERE gid = $1 ORDER BY uid"
SQL_MEMBER_COUNT = "SELECT count(*) FROM group_members WHERE gid = $1"
SQL_MEMBERSHIPS = f"SELECT {MEMBER_COLUMNS} FROM group_members WHERE uid = $1 AND gid = ANY($2::bigint[])"
SQL_NEXT_SEQ = (
    "UPDATE groups SET last_seq = last_seq + 1, last_mid = $1, last_msg_at = $2 WHERE gid = $3 RETURNING last_seq"
)
SQL_GMSG_INSERT = (
    f"INSERT INTO group_messages ({GMSG_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0, NULL)"
)
SQL_GMSG_BY_MID = f"SELECT {GMSG_COLUMNS} FROM group_messages WHERE mid = $1 AND gid = $2"
SQL_READ_UP = "UPDATE group_members SET read_seq = $1 WHERE gid = $2 AND uid = $3 AND read_seq < $1"
SQL_READ_ALL = "UPDATE group_members SET read_seq = $1 WHERE gid = $2 AND uid = ANY($3::bigint[])"
SQL_HISTORY = (
    f"SELECT {GMSG_COLUMNS} FROM group_messages WHERE gid = $1 AND seq < $2 AND seq >= $3 ORDER BY seq DESC LIMIT $4"
)
SQL_RANGE = (
    f"SELECT {GMSG_COLUMNS} FROM group_messages WHERE gid = $1 AND seq >= $2 AND seq <= $3 ORDER BY seq LIMIT $4"
)
SQL_USER_GROUPS = "SELECT gid FROM group_members WHERE uid = $1 ORDER BY gid"
SQL_STATES_ALL = (
    "SELECT g.gid, g.last_seq, g.last_mid, g.last_msg_at, m.read_seq "
    "FROM group_members m JOIN groups g ON g.gid = m.gid WHERE m.uid = $1 ORDER BY m.gid"
)
SQL_LAST_MID = "SELECT max(mid) FROM group_messages"
# A batch of sends (glide.store.group_sends): its groups locked (in gid order), the messages stored before
# under its (gid, sender, cli_mid) keys and its senders' memberships, then its rows appended with each
# group's new head and each sender's read position in one statement, and the members of its groups. Each
# runs in a routine planned once per connection (key by key whatever the batch's size): planned at each call,
# these statements cost the server more for a lone message than the single-row ones they replace.
SQL_GROUPS_LOCK = f"SELECT {GROUP_COLUMNS} FROM groups WHERE gid = ANY($1::bigint[]) ORDER BY gid FOR UPDATE"
# (Key by key, LATERAL ... LIMIT 1, and the updates bounded by their keys' lists: a join may read a whole index,
# which a plan made on small tables and kept chooses; see SQL_STORE_CHATS.)
SQL_GMSGS_BY_KEYS = (
    "SELECT m.* FROM unnest($1::bigint[], $2::bigint[], $3::text[]) AS k(gid, sender, cli_mid) CROSS JOIN LATERAL "
    f"(SELECT {GMSG_COLUMNS} FROM group_messages WHERE gid = k.gid AND sender = k.sender AND cli_mid = k.cli_mid "
    "AND cli_mid <> '' LIMIT 1) m"
)
SQL_MEMBERS_PAIRS = (
    "SELECT m.* FROM unnest($1::bigint[], $2::bigint[]) AS k(gid, uid) CROSS JOIN LATERAL "
    f"(SELECT {MEMBER_COLUMNS} FROM group_members WHERE gid = k.gid AND uid = k.uid LIMIT 1) m"
)
SQL_GMSGS_APPEND = f"""WITH heads AS (
    UPDATE groups g SET last_seq = h.seq, last_mid = h.mid, last_msg_at = $10
    FROM unnest($11::bigint[], $12::bigint[], $13::bigint[]) AS h(gid, seq, mid)
    WHERE g.gid = h.gid AND g.gid = ANY($11::bigint[])
), reads AS (
    UPDATE group_members m SET read_seq = r.seq
    FROM unnest($14::bigint[], $15::bigint[], $16::bigint[]) AS r(gid, uid, seq)
    WHERE m.gid = r.gid AND m.uid = r.uid AND m.read_seq < r.seq AND m.gid = ANY($14::bigint[])
    AND m.uid = ANY($15::bigint[])
), ins AS (
    INSERT INTO group_messages ({GMSG_COLUMNS})
    SELECT mid, gid, seq, $9, cli_mid, sender, type, content, send_at, $10, 0, NULL
    FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::text[], $5::bigint[], $6::bigint[], $7::text[],
        $8::bigint[]) AS t(mid, gid, seq, cli_mid, sender, type, content, send_at)
    RETURNING 1
)
SELECT count(*) FROM ins"""
SQL_MEMBER_UIDS_OF = (  # (OFFSET 0: a group's members read by its key, never merged into a scan of all of them)
    "SELECT k.gid, m.uid FROM unnest($1::bigint[]) AS k(gid) CROSS JOIN LATERAL "
    "(SELECT uid FROM group_members WHERE gid = k.gid ORDER BY uid OFFSET 0) m ORDER BY k.gid, m.uid"
)
_GROUP_TYPES = (
    "gid bigint, name text, avatar text, owner bigint, muted boolean, dissolved boolean, created_at bigint, "
    "last_seq bigint, last_mid bigint, last_msg_at bigint, join_policy integer, history_from_join boolean"
)
_GMSG_TYPES = (
    "mid bigint, gid bigint, seq bigint, kind integer, cli_mid text, sender bigint, type integer, content text, "
    "send_at bigint, created_at bigint, status integer, recalled_by bigint"
)
_MEMBER_TYPES = (
    "gid bigint, uid bigint, role integer, muted boolean, joined_at bigint, read_seq bigint, joined_seq bigint"
)
GROUPS_LOCK_ROUTINE = routine(
    "glide_groups_lock", "bigint[]", f"TABLE ({_GROUP_TYPES})", (SQL_GROUPS_LOCK,), settings=PLANNED_ONCE
)
GMSGS_BY_KEYS_ROUTINE = routine(
    "glide_gmsgs_by_keys",
    "bigint[], bigint[], text[]",
    f"TABLE ({_GMSG_TYPES})",
    (SQL_GMSGS_BY_KEYS,),
    settings=PLANNED_ONCE,
)
MEMBERS_PAIRS_ROUTINE = routine(
    "glide_members_pairs", "bigint[], bigint[]", f"TABLE ({_MEMBER_TYPES})", (SQL_MEMBERS_PAIRS,), settings=PLANNED_ONCE
)
GMSGS_APPEND_ROUTINE = routine(
    "glide_gmsgs_append",
    "bigint[], bigint[], bigint[], text[], bigint[], bigint[], text[], bigint[], integer, bigint, "
    "bigint[], bigint[], bigint[], bigint[], bigint[], bigint[]",
    "TABLE (appended bigint)",
    (SQL_GMSGS_APPEND,),
    settings=PLANNED_ONCE,
)
MEMBER_UIDS_OF_ROUTINE = routine(
    "glide_member_uids_of", "bigint[]", "TABLE (gid bigint, uid bigint)", (SQL_MEMBER_UIDS_OF,), settings=PLANNED_ONCE
)
GROUP_SENDS_ROUTINES = [
    GROUPS_LOCK_ROUTINE,
    GMSGS_BY_KEYS_ROUTINE,
    MEMBERS_PAIRS_ROUTINE,
    GMSGS_APPEND_ROUTINE,
    MEMBER_UIDS_OF_ROUTINE,
]


def group_from(r: asyncpg.Record) -> Group:
    return Group(r[0], dec(r[1]), dec(r[2]), r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11])


def member_from(r: asyncpg.Record) -> GroupMember:
    return GroupMember(r[0], r[1], r[2], r[3], r[4], r[5], r[6])


def gmsg_from(r: asyncpg.Record) -> GroupMessage:
    return GroupMessage(r[0], r[1], r[2], r[3], dec(r[4]), r[5], r[6], dec(r[7]), r[8], r[9], r[10], r[11])


async def load_group(conn: Conn, gid: int, *, lock: bool = False) -> Group:
    row = await conn.fetchrow(SQL_GROUP_LOCK if lock else SQL_GROUP, gid)
    if row is None:
        raise GroupNotFound(f"group {gid} does not exist")
    return group_from(row)


async def load_member(conn: Conn, gid: int, uid: int) -> GroupMember | None:
    row = await conn.fetchrow(SQL_MEMBER, gid, uid)
    return member_from(row) if row else None


async def load_members(conn: Conn, gid: int, uids: Sequence[int]) -> dict[int, GroupMember]:
    return {m.uid: m for m in map(member_from, await conn.fetch(SQL_MEMBERS_OF, gid, list(uids)))}


async def require_members(conn: Conn, group: Group, uids: Sequence[int]) -> list[GroupMember]:
    found = await load_members(conn, group.gid, uids)
    missing = [u for u in uids if u not in found]
    if missing:
        raise NotFound(f"not members of group {group.gid}: {missing[:20]}")
    return [found[u] for u in uids]


async def require_users(conn: Conn, uids: Sequence[int]) -> None:
    existing = {r[0] for r in await conn.fetch("SELECT uid FROM users WHERE uid = ANY($1::bigint[])", list(uids))}
    for uid in uids:
        if uid not in existing:
            raise UserNotFound(f"user {uid} does not exist")


async def member_uids(conn: Conn, gid: int) -> tuple[int, ...]:
    return tuple(r[0] for r in await conn.fetch(SQL_MEMBER_UIDS, gid))


async def member_count(conn: Conn, gid: int) -> int:
    return int(await conn.fetchval(SQL_MEMBER_COUNT, gid))


async def add_members(conn: WriteConn, gid: int, uids: Sequence[int], role: int, now: int) -> None:
    """Insert the memberships; a former member muted when it left is muted again."""
    ordered = sorted(uids)
    await conn.execute(
        f"INSERT INTO group_members ({MEMBER_COLUMNS}) "
        "SELECT $1, t.uid, $2, coalesce(d.muted, false), $3, 0, 0 FROM unnest($4::bigint[]) AS t(uid) "
        "LEFT JOIN group_departed d ON d.gid = $1 AND d.uid = t.uid ORDER BY t.uid",
        gid,
        role,
        now,
        ordered,
    )
    await conn.execute("DELETE FROM group_departed WHERE gid = $1 AND uid = ANY($2::bigint[])", gid, ordered)
    await conn.execute("DELETE FROM group_join_requests WHERE gid = $1 AND uid = ANY($2::bigint[])", gid, ordered)


async def start_history(conn: WriteConn, gid: int, uids: Sequence[int], seq: int) -> None:
    """The new members' history (and read position) starts at ``seq``, the notice that added them."""
    await conn.execute(
        "UPDATE group_members SET joined_seq = $1, read_seq = greatest(read_seq, $1) "
        "WHERE gid = $2 AND uid = ANY($3::bigint[])",
        seq,
        gid,
        list(uids),
    )


async def record_departure(conn: WriteConn, gid: int, members: Sequence[GroupMember], *, banned: bool) -> None:
    """Remember what outlives a membership: a ban (removed) and a mute."""
    kept = sorted((m for m in members if banned or m.muted), key=lambda m: m.uid)
    if not kept:
        return
    await conn.execute(
        "INSERT INTO group_departed (gid, uid, banned, muted) "
        "SELECT $1, t.uid, $2, t.muted FROM unnest($3::bigint[], $4::boolean[]) AS t(uid, muted) "
        "ON CONFLICT (gid, uid) DO UPDATE SET banned = group_departed.banned OR excluded.banned, "
        "muted = excluded.muted",
        gid,
        banned,
        [m.uid for m in kept],
        [m.muted for m in kept],
    )


async def banned_of(conn: Conn, gid: int, uids: Sequence[int]) -> list[int]:
    rows = await conn.fetch(
        "SELECT uid FROM group_departed WHERE gid = $1 AND banned AND uid = ANY($2::bigint[])", gid, list(uids)
    )
    found = {r[0] for r in rows}
    return [u for u in uids if u in found]


async def refusing(conn: Conn, by: int, uids: Sequence[int]) -> list[int]:
    """The users among ``uids`` who refuse ``by`` (blacklist / whitelist-only)."""
    refused = {r for _, r in await refused_pairs(conn, [(by, u) for u in uids])}
    return [u for u in uids if u in refused]


async def managers_of(conn: Conn, gid: int) -> tuple[int, ...]:
    rows = await conn.fetch(
        "SELECT uid FROM group_members WHERE gid = $1 AND role = ANY($2::integer[]) ORDER BY uid",
        gid,
        [ROLE_OWNER, ROLE_ADMIN],
    )
    return tuple(r[0] for r in rows)


async def append(
    conn: WriteConn,
    gid: int,
    *,
    mid: int,
    kind: int,
    cli_mid: str,
    sender: int,
    type_: int,
    content: str,
    send_at: int,
    now: int,
) -> GroupMessage:
    """Give the entry the group's next seq and insert it; the caller's savepoint undoes both on failure."""
    seq = int(await conn.fetchval(SQL_NEXT_SEQ, mid, now, gid))
    try:
        await conn.execute(
            SQL_GMSG_INSERT, mid, gid, seq, kind, enc(cli_mid), sender, type_, enc(content), send_at, now
        )
    except asyncpg.UniqueViolationError as e:
        raise StorageError(f"message id {mid} is already used (do two nodes share a node_id?)") from e
    # Acting in a group means having seen it up to here.
    await conn.execute(SQL_READ_UP, seq, gid, sender)
    return GroupMessage(mid, gid, seq, kind, cli_mid, sender, type_, content, send_at, now, 0, None)


async def notice(
    conn: WriteConn, gid: int, by: int, notice_type: int, uids: Sequence[int], mid: int, now: int, /, **extra: int
) -> GroupMessage:
    content = notice_content(gid, notice_type, uids, by, **extra)
    return await append(
        conn,
        gid,
        mid=mid,
        kind=KIND_NOTICE,
        cli_mid="",
        sender=by,
        type_=notice_type,
        content=content,
        send_at=now,
        now=now,
    )


async def change(
    conn: WriteConn, gid: int, entry: GroupMessage | None, extra_recipients: Sequence[int] = ()
) -> GroupChange:
    recipients = tuple(sorted({*await member_uids(conn, gid), *extra_recipients}))
    return GroupChange(await load_group(conn, gid), entry, recipients)
