"""Groups, memberships and the per-group seq stream on PostgreSQL (glide.store.groups.GroupStore).

Every change is one writer operation (a savepoint in the engine's group transaction) that first locks the
group's row (``SELECT … FOR UPDATE``): changes and sends to one group are serialized across every node
sharing the database, so the rule checks see the membership the change applies to, and the seq bump
(``UPDATE groups SET last_seq = last_seq + 1 … RETURNING``) hands out contiguous seqs in commit order.
A refused or failed operation rolls back to its savepoint and consumes no seq.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import asyncpg

from glide.errors import BadRequest, StorageError
from glide.group import rules
from glide.store.checks import INT64_MAX, check_id, check_int, check_text, is_id
from glide.store.group_checks import check_gid, check_settings, read_state
from glide.store.group_sends import GroupSends, SendResult, checked, filled, plan_sends, send_keys
from glide.store.groups import (
    JOIN_INVITE,
    JOIN_OPEN,
    KIND_MESSAGE,
    MAX_GROUP_AVATAR,
    MAX_GROUP_MEMBERS,
    MAX_GROUP_NAME,
    MAX_GROUP_PAGE,
    NOTICE_MEMBERS_ADDED,
    ROLE_MEMBER,
    ROLE_OWNER,
    Group,
    GroupChange,
    GroupMember,
    GroupMessage,
    GroupNotFound,
    GroupReadState,
    NewGroupMessage,
)
from glide.store.postgres.codec import enc
from glide.store.postgres.connection import Conn, WriteConn
from glide.store.postgres.engine import PgEngine
from glide.store.postgres.group_ops import (
    GMSGS_APPEND_ROUTINE,
    GMSGS_BY_KEYS_ROUTINE,
    GROUP_COLUMNS,
    GROUPS_LOCK_ROUTINE,
    MEMBER_COLUMNS,
    MEMBER_UIDS_OF_ROUTINE,
    MEMBERS_PAIRS_ROUTINE,
    SQL_GMSG_BY_MID,
    SQL_GROUP,
    SQL_GROUPS,
    SQL_HISTORY,
    SQL_LAST_MID,
    SQL_MEMBER_UIDS,
    SQL_MEMBERS,
    SQL_MEMBERSHIPS,
    SQL_RANGE,
    SQL_READ_UP,
    SQL_STATES_ALL,
    SQL_USER_GROUPS,
    add_members,
    change,
    gmsg_from,
    group_from,
    load_group,
    load_member,
    member_from,
    notice,
    refusing,
    require_users,
)
from glide.store.postgres.groups_manage import GroupManagement
from glide.store.postgres.rows import affected


class PgGroupStore(GroupManagement, GroupSends):
    """Groups on PostgreSQL; the membership and settings changes are in :class:`GroupManagement`."""

    def __init__(self, engine: PgEngine, clock_ms: Callable[[], int]) -> None:
        self._engine = engine
        self._clock_ms = clock_ms

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

        async def op(conn: WriteConn) -> GroupChange:
            now = clock_ms()
            await require_users(conn, uids)
            rules.check_refusals(owner, await refusing(conn, owner, uids[1:]))
            gid = int(
                await conn.fetchval(
                    "INSERT INTO groups (name, avatar, owner, muted, dissolved, created_at, join_policy, "
                    "history_from_join) VALUES ($1, $2, $3, false, false, $4, $5, $6) RETURNING gid",
                    enc(name),
                    enc(avatar),
                    owner,
                    now,
                    join_policy,
                    history_from_join,
                )
            )
            await add_members(conn, gid, [owner], ROLE_OWNER, now)
            await add_members(conn, gid, uids[1:], ROLE_MEMBER, now)
            entry = await notice(conn, gid, owner, NOTICE_MEMBERS_ADDED, uids, mid, now)
            # The new members saw their own addition: the group starts read, and their history with it.
            await conn.execute("UPDATE group_members SET read_seq = $1, joined_seq = $1 WHERE gid = $2", entry.seq, gid)
            return await change(conn, gid, entry)

        return await self._engine.write(op)

    # reads of groups and members

    async def group(self, gid: int) -> Group | None:
        if not is_id(gid):
            return None
        row = await self._engine.fetchrow(SQL_GROUP, gid)
        return group_from(row) if row else None

    async def groups(self, gids: Sequence[int]) -> list[Group]:
        wanted = list(dict.fromkeys(g for g in gids if is_id(g)))
        if not wanted:
            return []
        found = {g.gid: g for g in map(group_from, await self._engine.fetch(SQL_GROUPS, wanted))}
        return [found[g] for g in wanted if g in found]

    async def member(self, gid: int, uid: int) -> GroupMember | None:
        if not (is_id(gid) and is_id(uid)):
            return None
        return await self._engine.read(lambda conn: load_member(conn, gid, uid))

    async def members(self, gid: int) -> list[GroupMember]:
        if not is_id(gid):
            return []
        return [member_from(r) for r in await self._engine.fetch(SQL_MEMBERS, gid, MAX_GROUP_MEMBERS)]

    async def member_uids(self, gid: int) -> list[int]:
        if not is_id(gid):
            return []
        return [r[0] for r in await self._engine.fetch(SQL_MEMBER_UIDS, gid)]

    async def user_groups(self, uid: int) -> list[int]:
        if not is_id(uid):
            return []
        return [r[0] for r in await self._engine.fetch(SQL_USER_GROUPS, uid)]

    # the message stream

    async def ensure_channel(self, gid: int, name: str) -> Group:
        gid = check_gid(gid)
        name = check_text(name, "name", MAX_GROUP_NAME)
        clock_ms = self._clock_ms

        async def op(conn: WriteConn) -> Group:
            await conn.execute(
                f"INSERT INTO groups ({GROUP_COLUMNS}) VALUES ($1, $2, '', 0, false, false, $3, 0, 0, 0, $4, false) "
                "ON CONFLICT (gid) DO NOTHING",
                gid,
                enc(name),
                clock_ms(),
                JOIN_OPEN,
            )
            return await load_group(conn, gid)

        return await self._engine.write(op)

    async def enroll(self, gid: int, uids: Sequence[int]) -> int:
        gid = check_gid(gid)
        wanted = sorted({check_id(u, f"uids[{i}]") for i, u in enumerate(uids)})
        clock_ms = self._clock_ms

        async def op(conn: WriteConn) -> int:
            last_seq = (await load_group(conn, gid)).last_seq
            status = await conn.execute(
                f"INSERT INTO group_members ({MEMBER_COLUMNS}) SELECT $1, uid, $2, false, $3, $4, 0 "
                "FROM unnest($5::bigint[]) AS u(uid) ORDER BY uid ON CONFLICT DO NOTHING",
                gid,
                ROLE_MEMBER,
                clock_ms(),
                last_seq,
                wanted,
            )
            return affected(status)

        return await self._engine.write(op) if wanted else 0

    async def store_group_messages(self, messages: Sequence[NewGroupMessage]) -> list[SendResult]:
        results, batch = checked(messages)
        if not batch:
            return filled(results, [])
        gids = sorted({m.gid for m in batch})
        return filled(results, await self._engine.write_many("group_sends", batch, self._send, keys=gids))

    async def _send(self, conn: WriteConn, batch: list[NewGroupMessage]) -> list[SendResult]:
        """Store ``batch`` (the sends of every combined call) in order: one result per message."""
        # The locks first: a resend racing its original on another node then sees it as a duplicate.
        locked = await conn.fetch(GROUPS_LOCK_ROUTINE.call, sorted({m.gid for m in batch}))
        groups = {g.gid: g for g in map(group_from, locked)}
        keys = send_keys(batch)
        earlier = {}
        if keys:
            columns = zip(*[(gid, sender, enc(cli_mid)) for gid, sender, cli_mid in keys], strict=True)
            found = await conn.fetch(GMSGS_BY_KEYS_ROUTINE.call, *columns)
            earlier = {(m.gid, m.sender, m.cli_mid): m for m in map(gmsg_from, found)}
        pairs = list(dict.fromkeys((m.gid, m.sender) for m in batch if m.gid in groups))
        members = {}
        if pairs:
            found = await conn.fetch(MEMBERS_PAIRS_ROUTINE.call, [g for g, _ in pairs], [u for _, u in pairs])
            members = {(m.gid, m.uid): m for m in map(member_from, found)}
        now = self._clock_ms()
        plan = plan_sends(batch, groups, members, earlier, now)
        if plan.rows:
            rows, heads, reads = plan.rows, list(plan.heads.values()), list(plan.read_up.items())
            try:
                await conn.execute(
                    GMSGS_APPEND_ROUTINE.call,
                    [r.mid for r in rows],
                    [r.gid for r in rows],
                    [r.seq for r in rows],
                    [enc(r.cli_mid) for r in rows],
                    [r.sender for r in rows],
                    [r.type for r in rows],
                    [enc(r.content) for r in rows],
                    [r.send_at for r in rows],
                    KIND_MESSAGE,
                    now,
                    [h.gid for h in heads],
                    [h.seq for h in heads],
                    [h.mid for h in heads],
                    [g for (g, _), _ in reads],
                    [u for (_, u), _ in reads],
                    [seq for _, seq in reads],
                )
            except asyncpg.UniqueViolationError as e:
                raise StorageError(f"a message id is already used (do two nodes share a node_id?): {e}") from None
        members_of: dict[int, list[int]] = {}
        if plan.gids():
            for gid, uid in await conn.fetch(MEMBER_UIDS_OF_ROUTINE.call, plan.gids()):
                members_of.setdefault(gid, []).append(uid)
        return plan.with_recipients({gid: tuple(uids) for gid, uids in members_of.items()})

    async def group_message(self, gid: int, mid: int) -> GroupMessage | None:
        if not (is_id(gid) and is_id(mid)):
            return None
        row = await self._engine.fetchrow(SQL_GMSG_BY_MID, mid, gid)
        return gmsg_from(row) if row else None

    async def history(self, gid: int, uid: int, *, before_seq: int = 0, limit: int = 20) -> list[GroupMessage]:
        gid = check_gid(gid)
        check_id(uid, "uid")
        check_int(before_seq, "before_seq")
        before = before_seq if before_seq > 0 else INT64_MAX
        limit = max(1, min(check_int(limit, "limit"), MAX_GROUP_PAGE))

        async def op(conn: Conn) -> list[GroupMessage]:
            group = await load_group(conn, gid)
            start = rules.history_start(group, rules.check_member(group, await load_member(conn, gid, uid)))
            return [gmsg_from(r) for r in await conn.fetch(SQL_HISTORY, gid, before, start, limit)]

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

        async def op(conn: Conn) -> list[GroupMessage]:
            group = await load_group(conn, gid)
            start = rules.history_start(group, rules.check_member(group, await load_member(conn, gid, uid)))
            return [gmsg_from(r) for r in await conn.fetch(SQL_RANGE, gid, max(from_seq, start), to_seq, limit)]

        return await self._engine.read(op)

    # read state

    async def mark_read(self, gid: int, uid: int, seq: int) -> GroupReadState:
        gid = check_gid(gid)
        check_id(uid, "uid")
        check_int(seq, "seq", 0)

        async def op(conn: WriteConn) -> GroupReadState:
            group = await load_group(conn, gid)
            member = rules.check_member(group, await load_member(conn, gid, uid))
            read = max(member.read_seq, min(seq, group.last_seq))
            if read != member.read_seq:
                await conn.execute(SQL_READ_UP, read, gid, uid)
            return read_state(gid, group.last_seq, group.last_mid, group.last_msg_at, read)

        return await self._engine.write(op)

    async def read_states(self, uid: int, gids: Sequence[int] | None = None) -> list[GroupReadState]:
        check_id(uid, "uid")
        wanted = None if gids is None else list(dict.fromkeys(check_gid(g) for g in gids))

        async def op(conn: Conn) -> list[GroupReadState]:
            if wanted is None:
                return [read_state(*row) for row in await conn.fetch(SQL_STATES_ALL, uid)]
            groups = {g.gid: g for g in map(group_from, await conn.fetch(SQL_GROUPS, wanted))}
            members = {m.gid: m for m in map(member_from, await conn.fetch(SQL_MEMBERSHIPS, uid, wanted))}
            out: list[GroupReadState] = []
            for gid in wanted:
                group = groups.get(gid)
                if group is None:
                    raise GroupNotFound(f"group {gid} does not exist")
                member = rules.check_member(group, members.get(gid))
                out.append(read_state(gid, group.last_seq, group.last_mid, group.last_msg_at, member.read_seq))
            return out

        return await self._engine.read(op)

    async def last_mid(self) -> int:
        return int(await self._engine.fetchval(SQL_LAST_MID) or 0)
