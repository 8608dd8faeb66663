"""The SQLite implementation of :class:`glide.store.groups.GroupStore`.

Every change runs as one writer operation (its own savepoint inside the engine's group transaction): the
rule check, the change, the seq bump of ``groups.last_seq`` and the notice row commit together or not at all,
so a refused or failed operation never consumes a seq. ``UNIQUE (gid, seq)`` makes a repeated seq impossible.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence

from glide.errors import BadRequest, NotFound, StorageError
from glide.group import rules
from glide.ids import wall_ms
from glide.store.checks import INT64_MAX, check_id, check_int, check_text, is_id
from glide.store.group_checks import STATUS_RECALLED, check_gid, check_settings, read_state
from glide.store.group_sends import GroupSends, SendResult, checked, filled, plan_sends, send_keys
from glide.store.groups import (
    JOIN_INVITE,
    JOIN_OPEN,
    MAX_GROUP_AVATAR,
    MAX_GROUP_MEMBERS,
    MAX_GROUP_NAME,
    MAX_GROUP_PAGE,
    NOTICE_MEMBERS_ADDED,
    NOTICE_RECALLED,
    ROLE_MEMBER,
    ROLE_OWNER,
    Group,
    GroupChange,
    GroupMember,
    GroupMessage,
    GroupReadState,
    NewGroupMessage,
)
from glide.store.sqlite.engine import SqliteEngine
from glide.store.sqlite.groups_manage import SqliteGroupManagement
from glide.store.sqlite.groups_sql import (
    GROUP_COLUMNS,
    MEMBER_COLUMNS,
    SQL_GMSG_BY_CLI_MID,
    SQL_GMSG_BY_MID,
    SQL_GMSG_INSERT,
    SQL_GROUP,
    SQL_HEAD_SET,
    SQL_HISTORY,
    SQL_LAST_MID,
    SQL_RANGE,
    SQL_READ_UP,
    SQL_STATES_ALL,
    SQL_USER_GROUPS,
    add_members,
    add_notice,
    change_of,
    chunks,
    group_row,
    insert_values,
    load_group,
    load_member,
    marks,
    member_row,
    member_uids_of,
    message_row,
    refusing,
    require_users,
)


class SqliteGroupStore(SqliteGroupManagement, GroupSends):
    """Groups, memberships and the per-group seq stream in the shared SQLite file."""

    def __init__(self, engine: SqliteEngine, clock_ms: Callable[[], int] = wall_ms) -> None:
        self._engine = engine
        self._clock_ms = clock_ms

    # membership and settings

    async def create_group(
        self,
        *,
        owner: int,
        name: str,
        avatar: str,
        members: Sequence[int],
        mid: int,
        join_policy: int = JOIN_INVITE,
        history_from_join: bool = True,
    ) -> GroupChange:
        check_id(owner, "owner")
        check_settings(join_policy, history_from_join)
        check_id(mid, "mid")
        name = check_text(name, "name", MAX_GROUP_NAME)
        if not name.strip():
            raise BadRequest("name: must not be empty")
        avatar = check_text(avatar, "avatar", MAX_GROUP_AVATAR)
        if isinstance(members, (str, bytes)) or not isinstance(members, Sequence):
            raise BadRequest("members: expected a list of user ids")
        uids = list(dict.fromkeys([owner, *(check_id(u, f"members[{i}]") for i, u in enumerate(members))]))
        if len(uids) > MAX_GROUP_MEMBERS:
            raise BadRequest(f"members: a group has at most {MAX_GROUP_MEMBERS} members")
        clock_ms = self._clock_ms

        def op(conn: sqlite3.Connection) -> GroupChange:
            now = clock_ms()
            require_users(conn, uids)
            rules.check_refusals(owner, refusing(conn, owner, uids[1:]))
            cur = conn.execute(
                f"INSERT INTO groups ({GROUP_COLUMNS}) VALUES (NULL, ?, ?, ?, 0, 0, ?, 0, 0, 0, ?, ?)",
                (name, avatar, owner, now, join_policy, int(history_from_join)),
            )
            gid = cur.lastrowid
            assert gid is not None
            add_members(conn, gid, [owner], ROLE_OWNER, now)
            add_members(conn, gid, uids[1:], ROLE_MEMBER, now)
            notice = add_notice(conn, gid, owner, NOTICE_MEMBERS_ADDED, uids, mid, now)
            # The new members saw their own addition: the group starts read, and their history with it.
            conn.execute(
                "UPDATE group_members SET read_seq = ?, joined_seq = ? WHERE gid = ?", (notice.seq, notice.seq, gid)
            )
            return change_of(conn, gid, notice)

        return await self._engine.write(op)

    # reads of groups and members

    async def group(self, gid: int) -> Group | None:
        if not is_id(gid):
            return None

        def op(conn: sqlite3.Connection) -> Group | None:
            row = conn.execute(SQL_GROUP, (gid,)).fetchone()
            return group_row(row) if row else None

        return await self._engine.read(op)

    async def groups(self, gids: Sequence[int]) -> list[Group]:
        wanted = list(dict.fromkeys(g for g in gids if is_id(g)))
        if not wanted:
            return []

        def op(conn: sqlite3.Connection) -> list[Group]:
            found: dict[int, Group] = {}
            for chunk in chunks(wanted):
                sql = f"SELECT {GROUP_COLUMNS} FROM groups WHERE gid IN ({marks(len(chunk))})"
                for row in conn.execute(sql, tuple(chunk)):
                    g = group_row(row)
                    found[g.gid] = g
            return [found[g] for g in wanted if g in found]

        return await self._engine.read(op)

    async def member(self, gid: int, uid: int) -> GroupMember | None:
        if not (is_id(gid) and is_id(uid)):
            return None
        return await self._engine.read(lambda conn: load_member(conn, gid, uid))

    async def members(self, gid: int) -> list[GroupMember]:
        if not is_id(gid):
            return []
        sql = f"SELECT {MEMBER_COLUMNS} FROM group_members WHERE gid = ? ORDER BY role, joined_at, uid LIMIT ?"
        return await self._engine.read(
            lambda conn: [member_row(r) for r in conn.execute(sql, (gid, MAX_GROUP_MEMBERS))]
        )

    async def member_uids(self, gid: int) -> list[int]:
        if not is_id(gid):
            return []
        return await self._engine.read(lambda conn: list(member_uids_of(conn, gid)))

    async def user_groups(self, uid: int) -> list[int]:
        if not is_id(uid):
            return []
        return await self._engine.read(lambda conn: [r[0] for r in conn.execute(SQL_USER_GROUPS, (uid,))])

    # the message stream

    async def store_group_messages(self, messages: Sequence[NewGroupMessage]) -> list[SendResult]:
        results, batch = checked(messages)
        if not batch:
            return filled(results, [])
        clock_ms = self._clock_ms

        def op(conn: sqlite3.Connection) -> list[SendResult]:
            earlier = {}
            for key in send_keys(batch):
                row = conn.execute(SQL_GMSG_BY_CLI_MID, key).fetchone()
                if row is not None:
                    earlier[key] = message_row(row)
            groups = {}
            for gid in dict.fromkeys(m.gid for m in batch):
                row = conn.execute(SQL_GROUP, (gid,)).fetchone()
                if row is not None:
                    groups[gid] = group_row(row)
            members = {}
            for gid, uid in dict.fromkeys((m.gid, m.sender) for m in batch if m.gid in groups):
                member = load_member(conn, gid, uid)
                if member is not None:
                    members[(gid, uid)] = member
            plan = plan_sends(batch, groups, members, earlier, clock_ms())
            if plan.rows:
                try:
                    conn.executemany(SQL_GMSG_INSERT, [insert_values(r) for r in plan.rows])
                except sqlite3.IntegrityError as e:
                    raise StorageError(f"a message id is already used (do two nodes share a node_id?): {e}") from e
                conn.executemany(SQL_HEAD_SET, [(r.seq, r.mid, r.created_at, gid) for gid, r in plan.heads.items()])
                conn.executemany(SQL_READ_UP, [(seq, gid, uid, seq) for (gid, uid), seq in plan.read_up.items()])
            return plan.with_recipients({gid: member_uids_of(conn, gid) for gid in plan.gids()})

        return filled(results, await self._engine.write(op))

    async def ensure_channel(self, gid: int, name: str) -> Group:
        gid = check_gid(gid)
        name = check_text(name, "name", MAX_GROUP_NAME)
        clock_ms = self._clock_ms

        def op(conn: sqlite3.Connection) -> Group:
            conn.execute(
                f"INSERT INTO groups ({GROUP_COLUMNS}) VALUES (?, ?, '', 0, 0, 0, ?, 0, 0, 0, ?, 0) "
                "ON CONFLICT (gid) DO NOTHING",
                (gid, name, clock_ms(), JOIN_OPEN),
            )
            return load_group(conn, gid)

        return await self._engine.write(op)

    async def enroll(self, gid: int, uids: Sequence[int]) -> int:
        gid = check_gid(gid)
        wanted = [check_id(u, f"uids[{i}]") for i, u in enumerate(uids)]
        clock_ms = self._clock_ms

        def op(conn: sqlite3.Connection) -> int:
            last_seq = load_group(conn, gid).last_seq
            now = clock_ms()
            before = conn.total_changes
            conn.executemany(
                f"INSERT INTO group_members ({MEMBER_COLUMNS}) VALUES (?, ?, ?, 0, ?, ?, 0) ON CONFLICT DO NOTHING",
                [(gid, uid, ROLE_MEMBER, now, last_seq) for uid in wanted],
            )
            return conn.total_changes - before

        return await self._engine.write(op) if wanted else 0

    async def group_message(self, gid: int, mid: int) -> GroupMessage | None:
        if not (is_id(gid) and is_id(mid)):
            return None

        def op(conn: sqlite3.Connection) -> GroupMessage | None:
            row = conn.execute(SQL_GMSG_BY_MID, (mid, gid)).fetchone()
            return message_row(row) if row else None

        return await self._engine.read(op)

    async def recall(self, gid: int, mid: int, by: int, *, notice_mid: int, not_before_ms: int) -> GroupChange:
        gid = check_gid(gid)
        check_id(by, "by")
        check_id(notice_mid, "notice_mid")
        check_int(not_before_ms, "not_before_ms")
        if not is_id(mid):
            raise NotFound(f"message {mid!r:.30} not found in group {gid}")
        clock_ms = self._clock_ms

        def op(conn: sqlite3.Connection) -> GroupChange:
            now = clock_ms()
            group = load_group(conn, gid)
            row = conn.execute(SQL_GMSG_BY_MID, (mid, gid)).fetchone()
            if row is None:
                raise NotFound(f"message {mid} not found in group {gid}")
            target = message_row(row)
            rules.check_recall(group, load_member(conn, gid, by), target, not_before_ms=not_before_ms)
            if target.status == STATUS_RECALLED:
                return change_of(conn, gid, None)
            conn.execute("UPDATE group_messages SET status = ?, recalled_by = ? WHERE mid = ?", (1, by, mid))
            notice = add_notice(
                conn, gid, by, NOTICE_RECALLED, [target.sender], notice_mid, now, mid=mid, seq=target.seq
            )
            return change_of(conn, gid, notice)

        return await self._engine.write(op)

    async def history(self, gid: int, uid: int, *, before_seq: int = 0, limit: int = 20) -> list[GroupMessage]:
        gid = check_gid(gid)
        check_id(uid, "uid")
        check_int(before_seq, "before_seq")
        before = before_seq if before_seq > 0 else INT64_MAX
        limit = max(1, min(check_int(limit, "limit"), MAX_GROUP_PAGE))

        def op(conn: sqlite3.Connection) -> list[GroupMessage]:
            group = load_group(conn, gid)
            start = rules.history_start(group, rules.check_member(group, load_member(conn, gid, uid)))
            return [message_row(r) for r in conn.execute(SQL_HISTORY, (gid, before, start, limit))]

        return await self._engine.read(op)

    async def seq_range(
        self, gid: int, uid: int, *, from_seq: int, to_seq: int, limit: int = MAX_GROUP_PAGE
    ) -> list[GroupMessage]:
        gid = check_gid(gid)
        check_id(uid, "uid")
        check_int(from_seq, "from_seq", 1)
        check_int(to_seq, "to_seq", 1)
        if to_seq < from_seq:
            raise BadRequest(f"to_seq: must not be below from_seq ({to_seq} < {from_seq})")
        limit = max(1, min(check_int(limit, "limit"), MAX_GROUP_PAGE))

        def op(conn: sqlite3.Connection) -> list[GroupMessage]:
            group = load_group(conn, gid)
            start = rules.history_start(group, rules.check_member(group, load_member(conn, gid, uid)))
            return [message_row(r) for r in conn.execute(SQL_RANGE, (gid, max(from_seq, start), to_seq, limit))]

        return await self._engine.read(op)

    # read state

    async def mark_read(self, gid: int, uid: int, seq: int) -> GroupReadState:
        gid = check_gid(gid)
        check_id(uid, "uid")
        check_int(seq, "seq", 0)

        def op(conn: sqlite3.Connection) -> GroupReadState:
            group = load_group(conn, gid)
            member = rules.check_member(group, load_member(conn, gid, uid))
            read = max(member.read_seq, min(seq, group.last_seq))
            if read != member.read_seq:
                conn.execute(SQL_READ_UP, (read, gid, uid, read))
            return read_state(gid, group.last_seq, group.last_mid, group.last_msg_at, read)

        return await self._engine.write(op)

    async def read_states(self, uid: int, gids: Sequence[int] | None = None) -> list[GroupReadState]:
        check_id(uid, "uid")
        wanted = None if gids is None else list(dict.fromkeys(check_gid(g) for g in gids))

        def op(conn: sqlite3.Connection) -> list[GroupReadState]:
            if wanted is None:
                return [read_state(*row) for row in conn.execute(SQL_STATES_ALL, (uid,))]
            out: list[GroupReadState] = []
            for gid in wanted:
                group = load_group(conn, gid)
                member = rules.check_member(group, load_member(conn, gid, uid))
                out.append(read_state(gid, group.last_seq, group.last_mid, group.last_msg_at, member.read_seq))
            return out

        return await self._engine.read(op)

    async def last_mid(self) -> int:
        return await self._engine.read(lambda conn: int(conn.execute(SQL_LAST_MID).fetchone()[0] or 0))
