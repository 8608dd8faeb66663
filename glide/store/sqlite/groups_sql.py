"""SQLite building blocks of the group store: the queries, input checks, row mapping, and the steps every
change is made of (load, check, append to the seq stream), each run on a connection inside one operation."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence

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
from glide.store.sqlite.contacts import refuses

CHUNK = 500  # bound parameters per IN (...) list

GROUP_COLUMNS = (
    "gid, name, avatar, owner, muted, dissolved, created_at, last_seq, last_mid, last_msg_at, "
    "join_policy, history_from_join"
)
MEMBER_COLUMNS = "gid, uid, role, muted, joined_at, read_seq, joined_seq"
GMSG_COLUMNS = "mid, gid, seq, kind, cli_mid, sender, type, content, send_at, created_at, status, recalled_by"

# Every query of the group message path, named so tests can check each one is served by an index.
SQL_GROUP = f"SELECT {GROUP_COLUMNS} FROM groups WHERE gid = ?"
SQL_MEMBER = f"SELECT {MEMBER_COLUMNS} FROM group_members WHERE gid = ? AND uid = ?"
SQL_MEMBER_UIDS = "SELECT uid FROM group_members WHERE gid = ? ORDER BY uid"
SQL_NEXT_SEQ = (
    "UPDATE groups SET last_seq = last_seq + 1, last_mid = ?, last_msg_at = ? WHERE gid = ? RETURNING last_seq"
)
# A group's head after a batch appended to it (its seqs were taken from the row read in the same transaction).
SQL_HEAD_SET = "UPDATE groups SET last_seq = ?, last_mid = ?, last_msg_at = ? WHERE gid = ?"
SQL_GMSG_INSERT = f"INSERT INTO group_messages ({GMSG_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, NULL)"
SQL_GMSG_BY_CLI_MID = (
    f"SELECT {GMSG_COLUMNS} FROM group_messages WHERE gid = ? AND sender = ? AND cli_mid = ? AND cli_mid <> ''"
)
SQL_GMSG_BY_MID = f"SELECT {GMSG_COLUMNS} FROM group_messages WHERE mid = ? AND gid = ?"
SQL_READ_UP = "UPDATE group_members SET read_seq = ? WHERE gid = ? AND uid = ? AND read_seq < ?"
SQL_HISTORY = (
    f"SELECT {GMSG_COLUMNS} FROM group_messages WHERE gid = ? AND seq < ? AND seq >= ? ORDER BY seq DESC LIMIT ?"
)
SQL_RANGE = f"SELECT {GMSG_COLUMNS} FROM group_messages WHERE gid = ? AND seq >= ? AND seq <= ? ORDER BY seq LIMIT ?"
SQL_USER_GROUPS = "SELECT gid FROM group_members WHERE uid = ? ORDER BY gid"
SQL_STATES_ALL = (
    "SELECT g.gid, g.last_seq, g.last_mid, g.last_msg_at, m.read_seq "
    "FROM group_members m JOIN groups g ON g.gid = m.gid WHERE m.uid = ? ORDER BY m.gid"
)
SQL_LAST_MID = "SELECT max(mid) FROM group_messages"


def chunks(items: Sequence[int]) -> Iterator[Sequence[int]]:
    for i in range(0, len(items), CHUNK):
        yield items[i : i + CHUNK]


def marks(n: int) -> str:
    return ", ".join("?" * n)


def group_row(row: tuple[object, ...]) -> Group:
    gid, name, avatar, owner, muted, dissolved, created_at, last_seq, last_mid, last_msg_at, policy, from_join = row
    return Group(
        gid,  # type: ignore[arg-type]
        name,  # type: ignore[arg-type]
        avatar,  # type: ignore[arg-type]
        owner,  # type: ignore[arg-type]
        bool(muted),
        bool(dissolved),
        created_at,  # type: ignore[arg-type]
        last_seq,  # type: ignore[arg-type]
        last_mid,  # type: ignore[arg-type]
        last_msg_at,  # type: ignore[arg-type]
        policy,  # type: ignore[arg-type]
        bool(from_join),
    )


def member_row(row: tuple[object, ...]) -> GroupMember:
    gid, uid, role, muted, joined_at, read_seq, joined_seq = row
    return GroupMember(gid, uid, role, bool(muted), joined_at, read_seq, joined_seq)  # type: ignore[arg-type]


def message_row(row: tuple[object, ...]) -> GroupMessage:
    return GroupMessage(*row)  # type: ignore[arg-type]


# operations on a connection (run inside one writer operation, or on the reader)


def load_group(conn: sqlite3.Connection, gid: int) -> Group:
    row = conn.execute(SQL_GROUP, (gid,)).fetchone()
    if row is None:
        raise GroupNotFound(f"group {gid} does not exist")
    return group_row(row)


def load_member(conn: sqlite3.Connection, gid: int, uid: int) -> GroupMember | None:
    row = conn.execute(SQL_MEMBER, (gid, uid)).fetchone()
    return member_row(row) if row else None


def load_members(conn: sqlite3.Connection, gid: int, uids: Sequence[int]) -> dict[int, GroupMember]:
    found: dict[int, GroupMember] = {}
    for chunk in chunks(uids):
        sql = f"SELECT {MEMBER_COLUMNS} FROM group_members WHERE gid = ? AND uid IN ({marks(len(chunk))})"
        for row in conn.execute(sql, (gid, *chunk)):
            m = member_row(row)
            found[m.uid] = m
    return found


def require_members(conn: sqlite3.Connection, group: Group, uids: Sequence[int]) -> list[GroupMember]:
    found = load_members(conn, group.gid, uids)
    missing = [u for u in uids if u not in found]
    if missing:
        raise NotFound(f"not members of group {group.gid}: {missing[:20]}")
    return [found[u] for u in uids]


def require_users(conn: sqlite3.Connection, uids: Sequence[int]) -> None:
    existing: set[int] = set()
    for chunk in chunks(uids):
        existing.update(r[0] for r in conn.execute(f"SELECT uid FROM users WHERE uid IN ({marks(len(chunk))})", chunk))
    for uid in uids:
        if uid not in existing:
            raise UserNotFound(f"user {uid} does not exist")


def member_uids_of(conn: sqlite3.Connection, gid: int) -> tuple[int, ...]:
    return tuple(r[0] for r in conn.execute(SQL_MEMBER_UIDS, (gid,)))


def member_count(conn: sqlite3.Connection, gid: int) -> int:
    return int(conn.execute("SELECT count(*) FROM group_members WHERE gid = ?", (gid,)).fetchone()[0])


def add_members(conn: sqlite3.Connection, gid: int, uids: Sequence[int], role: int, now: int) -> None:
    """Insert the memberships; a former member muted when it left is muted again."""
    conn.executemany(
        f"INSERT INTO group_members ({MEMBER_COLUMNS}) VALUES (?, ?, ?, 0, ?, 0, 0)",
        [(gid, uid, role, now) for uid in uids],
    )
    for chunk in chunks(uids):
        inside = marks(len(chunk))
        conn.execute(
            f"UPDATE group_members SET muted = 1 WHERE gid = ? AND uid IN (SELECT uid FROM group_departed "
            f"WHERE gid = ? AND muted = 1 AND uid IN ({inside}))",
            (gid, gid, *chunk),
        )
        conn.execute(f"DELETE FROM group_departed WHERE gid = ? AND uid IN ({inside})", (gid, *chunk))
        conn.execute(f"DELETE FROM group_join_requests WHERE gid = ? AND uid IN ({inside})", (gid, *chunk))


def start_history(conn: sqlite3.Connection, gid: int, uids: Sequence[int], seq: int) -> None:
    """The new members' history (and read position) starts at ``seq``, the notice that added them."""
    for chunk in chunks(uids):
        conn.execute(
            f"UPDATE group_members SET joined_seq = ?, read_seq = max(read_seq, ?) "
            f"WHERE gid = ? AND uid IN ({marks(len(chunk))})",
            (seq, seq, gid, *chunk),
        )


def record_departure(conn: sqlite3.Connection, gid: int, members: Sequence[GroupMember], *, banned: bool) -> None:
    """Remember what outlives a membership: a ban (removed) and a mute."""
    conn.executemany(
        "INSERT INTO group_departed (gid, uid, banned, muted) VALUES (?, ?, ?, ?) ON CONFLICT (gid, uid) "
        "DO UPDATE SET banned = max(banned, excluded.banned), muted = excluded.muted",
        [(gid, m.uid, int(banned), int(m.muted)) for m in members if banned or m.muted],
    )


def banned_of(conn: sqlite3.Connection, gid: int, uids: Sequence[int]) -> list[int]:
    found: set[int] = set()
    for chunk in chunks(uids):
        sql = f"SELECT uid FROM group_departed WHERE gid = ? AND banned = 1 AND uid IN ({marks(len(chunk))})"
        found.update(r[0] for r in conn.execute(sql, (gid, *chunk)))
    return [u for u in uids if u in found]


def refusing(conn: sqlite3.Connection, by: int, uids: Sequence[int]) -> list[int]:
    """The users among ``uids`` who refuse ``by`` (blacklist / whitelist-only)."""
    return [u for u in uids if refuses(conn, by, u)]


def managers_of(conn: sqlite3.Connection, gid: int) -> tuple[int, ...]:
    rows = conn.execute(
        "SELECT uid FROM group_members WHERE gid = ? AND role IN (?, ?) ORDER BY uid", (gid, ROLE_OWNER, ROLE_ADMIN)
    )
    return tuple(r[0] for r in rows)


def insert_values(m: GroupMessage) -> tuple[object, ...]:
    """SQL_GMSG_INSERT's parameters for ``m``."""
    return (m.mid, m.gid, m.seq, m.kind, m.cli_mid, m.sender, m.type, m.content, m.send_at, m.created_at)


def append(
    conn: sqlite3.Connection,
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
    seq = int(conn.execute(SQL_NEXT_SEQ, (mid, now, gid)).fetchone()[0])
    try:
        conn.execute(SQL_GMSG_INSERT, (mid, gid, seq, kind, cli_mid, sender, type_, content, send_at, now))
    except sqlite3.IntegrityError as e:
        raise StorageError(f"message id {mid} is already used (do two nodes share a node_id?)") from e
    # Acting in a group means having seen it up to here.
    conn.execute(SQL_READ_UP, (seq, gid, sender, seq))
    return GroupMessage(mid, gid, seq, kind, cli_mid, sender, type_, content, send_at, now, 0, None)


def add_notice(
    conn: sqlite3.Connection,
    gid: int,
    by: int,
    notice_type: int,
    uids: Sequence[int],
    mid: int,
    now: int,
    /,
    **extra: int,
) -> GroupMessage:
    content = notice_content(gid, notice_type, uids, by, **extra)
    return append(
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


def change_of(
    conn: sqlite3.Connection, gid: int, notice: GroupMessage | None, extra_recipients: Sequence[int] = ()
) -> GroupChange:
    recipients = tuple(sorted({*member_uids_of(conn, gid), *extra_recipients}))
    return GroupChange(load_group(conn, gid), notice, recipients)
