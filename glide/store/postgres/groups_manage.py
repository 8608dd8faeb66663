"""Membership and settings changes of PostgreSQL groups, and group recall (part of PgGroupStore).

Each operation locks the group's row first (``load_group(…, lock=True)``), then checks the rules of
glide.group.rules against the rows it reads under that lock, then changes and appends its notice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from glide.errors import BadRequest, NotAllowed, NotFound
from glide.group import rules
from glide.store.checks import check_id, check_int, is_id
from glide.store.group_checks import STATUS_RECALLED, check_gid, check_settings, check_uids
from glide.store.groups import (
    MAX_GROUP_MEMBERS,
    NOTICE_DISSOLVED,
    NOTICE_GROUP_MUTED,
    NOTICE_GROUP_UNMUTED,
    NOTICE_MEMBER_LEFT,
    NOTICE_MEMBERS_ADDED,
    NOTICE_MEMBERS_MUTED,
    NOTICE_MEMBERS_REMOVED,
    NOTICE_MEMBERS_UNMUTED,
    NOTICE_OWNER_TRANSFERRED,
    NOTICE_RECALLED,
    NOTICE_ROLE_CHANGED,
    NOTICE_SETTINGS_CHANGED,
    ROLE_ADMIN,
    ROLE_MEMBER,
    ROLE_OWNER,
    GroupChange,
    JoinRequest,
    MemberExists,
)
from glide.store.postgres.connection import Conn, WriteConn
from glide.store.postgres.engine import PgEngine
from glide.store.postgres.group_ops import (
    SQL_GMSG_BY_MID,
    add_members,
    banned_of,
    change,
    gmsg_from,
    load_group,
    load_member,
    load_members,
    managers_of,
    member_count,
    notice,
    record_departure,
    refusing,
    require_members,
    require_users,
    start_history,
)


class GroupManagement:
    _engine: PgEngine
    _clock_ms: Callable[[], int]

    async def join(self, gid: int, uid: int, *, mid: int) -> GroupChange:
        gid = check_gid(gid)
        check_id(uid, "uid")
        check_id(mid, "mid")
        clock_ms = self._clock_ms

        async def op(conn: WriteConn) -> GroupChange:
            now = clock_ms()
            group = await load_group(conn, gid, lock=True)
            rules.check_open(group)
            if await load_member(conn, gid, uid) is not None:
                raise MemberExists(f"you are already a member of group {gid}")
            await require_users(conn, [uid])
            rules.check_join(group, banned=bool(await banned_of(conn, gid, [uid])))
            if await member_count(conn, gid) >= MAX_GROUP_MEMBERS:
                raise NotAllowed(f"group {gid} is full ({MAX_GROUP_MEMBERS} members)")
            if not rules.joins_at_once(group):
                await conn.execute(
                    "INSERT INTO group_join_requests (gid, uid, created_at) VALUES ($1, $2, $3) "
                    "ON CONFLICT (gid, uid) DO UPDATE SET created_at = excluded.created_at",
                    gid,
                    uid,
                    now,
                )
                return GroupChange(group, None, await managers_of(conn, gid), pending=True)
            await add_members(conn, gid, [uid], ROLE_MEMBER, now)
            entry = await notice(conn, gid, uid, NOTICE_MEMBERS_ADDED, [uid], mid, now)
            await start_history(conn, gid, [uid], entry.seq)
            return await change(conn, gid, entry)

        return await self._engine.write(op)

    async def join_requests(self, gid: int, by: int) -> list[JoinRequest]:
        gid = check_gid(gid)
        check_id(by, "by")

        async def op(conn: Conn) -> list[JoinRequest]:
            rules.check_manage(await load_group(conn, gid), await load_member(conn, gid, by))
            rows = await conn.fetch(
                "SELECT gid, uid, created_at FROM group_join_requests WHERE gid = $1 ORDER BY created_at, uid LIMIT $2",
                gid,
                MAX_GROUP_MEMBERS,
            )
            return [JoinRequest(r[0], r[1], r[2]) for r in rows]

        return await self._engine.read(op)

    async def decide_join(self, gid: int, by: int, uid: int, accept: bool, *, mid: int) -> GroupChange:
        gid = check_gid(gid)
        check_id(by, "by")
        check_id(uid, "uid")
        check_id(mid, "mid")
        if not isinstance(accept, bool):
            raise BadRequest("accept: expected true or false")
        clock_ms = self._clock_ms

        async def op(conn: WriteConn) -> GroupChange:
            now = clock_ms()
            group = await load_group(conn, gid, lock=True)
            rules.check_manage(group, await load_member(conn, gid, by))
            status = await conn.execute("DELETE FROM group_join_requests WHERE gid = $1 AND uid = $2", gid, uid)
            if status == "DELETE 0":
                raise NotFound(f"user {uid} has not asked to join group {gid}")
            if not accept:
                return GroupChange(group, None, (uid,))
            if await load_member(conn, gid, uid) is not None:
                return await change(conn, gid, None)
            if await member_count(conn, gid) >= MAX_GROUP_MEMBERS:
                raise NotAllowed(f"group {gid} is full ({MAX_GROUP_MEMBERS} members)")
            await add_members(conn, gid, [uid], ROLE_MEMBER, now)
            entry = await notice(conn, gid, by, NOTICE_MEMBERS_ADDED, [uid], mid, now)
            await start_history(conn, gid, [uid], entry.seq)
            return await change(conn, gid, entry)

        return await self._engine.write(op)

    async def unban(self, gid: int, by: int, uids: Sequence[int]) -> list[int]:
        gid = check_gid(gid)
        check_id(by, "by")
        wanted = check_uids(uids)

        async def op(conn: WriteConn) -> list[int]:
            rules.check_manage(await load_group(conn, gid, lock=True), await load_member(conn, gid, by))
            lifted = await banned_of(conn, gid, wanted)
            await conn.execute(
                "UPDATE group_departed SET banned = false WHERE gid = $1 AND uid = ANY($2::bigint[])", gid, lifted
            )
            await conn.execute("DELETE FROM group_departed WHERE gid = $1 AND NOT banned AND NOT muted", gid)
            return lifted

        return await self._engine.write(op)

    async def set_settings(
        self, gid: int, by: int, *, join_policy: int | None = None, history_from_join: bool | None = None, mid: int
    ) -> GroupChange:
        gid = check_gid(gid)
        check_id(by, "by")
        check_id(mid, "mid")
        check_settings(join_policy, history_from_join)
        clock_ms = self._clock_ms

        async def op(conn: WriteConn) -> GroupChange:
            now = clock_ms()
            group = await load_group(conn, gid, lock=True)
            rules.check_owner(group, await load_member(conn, gid, by), "change its settings")
            extra = rules.changed_settings(group, join_policy, history_from_join)
            if extra is None:
                return await change(conn, gid, None)
            await conn.execute(
                "UPDATE groups SET join_policy = $1, history_from_join = $2 WHERE gid = $3",
                extra["join_policy"],
                bool(extra["history_from_join"]),
                gid,
            )
            entry = await notice(conn, gid, by, NOTICE_SETTINGS_CHANGED, [], mid, now, **extra)
            return await change(conn, gid, entry)

        return await self._engine.write(op)

    async def invite(self, gid: int, by: int, uids: Sequence[int], *, mid: int) -> GroupChange:
        gid = check_gid(gid)
        check_id(by, "by")
        check_id(mid, "mid")
        wanted = check_uids(uids)
        clock_ms = self._clock_ms

        async def op(conn: WriteConn) -> GroupChange:
            now = clock_ms()
            group = await load_group(conn, gid, lock=True)
            rules.check_manage(group, await load_member(conn, gid, by))
            present = await load_members(conn, gid, wanted)
            new = [u for u in wanted if u not in present]
            if not new:
                raise MemberExists(f"already members of group {gid}: {wanted[:20]}")
            await require_users(conn, new)
            rules.check_adding(group, by, await banned_of(conn, gid, new), await refusing(conn, by, new))
            if await member_count(conn, gid) + len(new) > MAX_GROUP_MEMBERS:
                raise NotAllowed(f"group {gid} would exceed {MAX_GROUP_MEMBERS} members")
            await add_members(conn, gid, new, ROLE_MEMBER, now)
            entry = await notice(conn, gid, by, NOTICE_MEMBERS_ADDED, new, mid, now)
            await start_history(conn, gid, new, entry.seq)
            return await change(conn, gid, entry)

        return await self._engine.write(op)

    async def remove(self, gid: int, by: int, uids: Sequence[int], *, mid: int) -> GroupChange:
        gid = check_gid(gid)
        check_id(by, "by")
        check_id(mid, "mid")
        wanted = check_uids(uids)
        clock_ms = self._clock_ms

        async def op(conn: WriteConn) -> GroupChange:
            now = clock_ms()
            group = await load_group(conn, gid, lock=True)
            actor = await load_member(conn, gid, by)
            rules.check_manage(group, actor)
            targets = await require_members(conn, group, wanted)
            for target in targets:
                rules.check_remove(group, actor, target)
            await record_departure(conn, gid, targets, banned=True)
            await conn.execute("DELETE FROM group_members WHERE gid = $1 AND uid = ANY($2::bigint[])", gid, wanted)
            entry = await notice(conn, gid, by, NOTICE_MEMBERS_REMOVED, wanted, mid, now)
            return await change(conn, gid, entry, wanted)

        return await self._engine.write(op)

    async def leave(self, gid: int, uid: int, *, mid: int) -> GroupChange:
        gid = check_gid(gid)
        check_id(uid, "uid")
        check_id(mid, "mid")
        clock_ms = self._clock_ms

        async def op(conn: WriteConn) -> GroupChange:
            now = clock_ms()
            group = await load_group(conn, gid, lock=True)
            member = await load_member(conn, gid, uid)
            rules.check_leave(group, member)
            assert member is not None
            await record_departure(conn, gid, [member], banned=False)
            await conn.execute("DELETE FROM group_members WHERE gid = $1 AND uid = $2", gid, uid)
            entry = await notice(conn, gid, uid, NOTICE_MEMBER_LEFT, [uid], mid, now)
            return await change(conn, gid, entry, [uid])

        return await self._engine.write(op)

    async def dissolve(self, gid: int, by: int, *, mid: int) -> GroupChange:
        gid = check_gid(gid)
        check_id(by, "by")
        check_id(mid, "mid")
        clock_ms = self._clock_ms

        async def op(conn: WriteConn) -> GroupChange:
            now = clock_ms()
            group = await load_group(conn, gid, lock=True)
            rules.check_owner(group, await load_member(conn, gid, by), "dissolve it")
            entry = await notice(conn, gid, by, NOTICE_DISSOLVED, [], mid, now)
            await conn.execute("UPDATE groups SET dissolved = true WHERE gid = $1", gid)
            return await change(conn, gid, entry)

        return await self._engine.write(op)

    async def set_role(self, gid: int, by: int, uid: int, role: int, *, mid: int) -> GroupChange:
        gid = check_gid(gid)
        check_id(by, "by")
        check_id(uid, "uid")
        check_id(mid, "mid")
        if role not in (ROLE_ADMIN, ROLE_MEMBER) or isinstance(role, bool):
            raise BadRequest(f"role: expected {ROLE_ADMIN} (admin) or {ROLE_MEMBER} (member), got {role!r:.20}")
        clock_ms = self._clock_ms

        async def op(conn: WriteConn) -> GroupChange:
            now = clock_ms()
            group = await load_group(conn, gid, lock=True)
            actor = await load_member(conn, gid, by)
            rules.check_owner(group, actor, "change roles")
            (target,) = await require_members(conn, group, [uid])
            rules.check_set_role(group, actor, target)
            if target.role == role:
                return await change(conn, gid, None)
            await conn.execute("UPDATE group_members SET role = $1 WHERE gid = $2 AND uid = $3", role, gid, uid)
            entry = await notice(conn, gid, by, NOTICE_ROLE_CHANGED, [uid], mid, now, role=role)
            return await change(conn, gid, entry)

        return await self._engine.write(op)

    async def mute_members(self, gid: int, by: int, uids: Sequence[int], muted: bool, *, mid: int) -> GroupChange:
        gid = check_gid(gid)
        check_id(by, "by")
        check_id(mid, "mid")
        wanted = check_uids(uids)
        if not isinstance(muted, bool):
            raise BadRequest("muted: expected true or false")
        clock_ms = self._clock_ms

        async def op(conn: WriteConn) -> GroupChange:
            now = clock_ms()
            group = await load_group(conn, gid, lock=True)
            actor = await load_member(conn, gid, by)
            rules.check_manage(group, actor)
            targets = await require_members(conn, group, wanted)
            for target in targets:
                rules.check_mute(group, actor, target)
            changed = [t.uid for t in targets if t.muted != muted]
            if not changed:
                return await change(conn, gid, None)
            await conn.execute(
                "UPDATE group_members SET muted = $1 WHERE gid = $2 AND uid = ANY($3::bigint[])", muted, gid, changed
            )
            kind = NOTICE_MEMBERS_MUTED if muted else NOTICE_MEMBERS_UNMUTED
            return await change(conn, gid, await notice(conn, gid, by, kind, changed, mid, now))

        return await self._engine.write(op)

    async def mute_group(self, gid: int, by: int, muted: bool, *, mid: int) -> GroupChange:
        gid = check_gid(gid)
        check_id(by, "by")
        check_id(mid, "mid")
        if not isinstance(muted, bool):
            raise BadRequest("muted: expected true or false")
        clock_ms = self._clock_ms

        async def op(conn: WriteConn) -> GroupChange:
            now = clock_ms()
            group = await load_group(conn, gid, lock=True)
            rules.check_manage(group, await load_member(conn, gid, by))
            if group.muted == muted:
                return await change(conn, gid, None)
            await conn.execute("UPDATE groups SET muted = $1 WHERE gid = $2", muted, gid)
            kind = NOTICE_GROUP_MUTED if muted else NOTICE_GROUP_UNMUTED
            return await change(conn, gid, await notice(conn, gid, by, kind, [], mid, now))

        return await self._engine.write(op)

    async def transfer(self, gid: int, by: int, to: int, *, mid: int) -> GroupChange:
        gid = check_gid(gid)
        check_id(by, "by")
        check_id(to, "to")
        check_id(mid, "mid")
        clock_ms = self._clock_ms

        async def op(conn: WriteConn) -> GroupChange:
            now = clock_ms()
            group = await load_group(conn, gid, lock=True)
            rules.check_transfer(group, await load_member(conn, gid, by), await load_member(conn, gid, to), to)
            await conn.execute("UPDATE group_members SET role = $1 WHERE gid = $2 AND uid = $3", ROLE_ADMIN, gid, by)
            await conn.execute(
                "UPDATE group_members SET role = $1, muted = false WHERE gid = $2 AND uid = $3", ROLE_OWNER, gid, to
            )
            await conn.execute("UPDATE groups SET owner = $1 WHERE gid = $2", to, gid)
            entry = await notice(conn, gid, by, NOTICE_OWNER_TRANSFERRED, [to], mid, now, **{"from": by})
            return await change(conn, gid, entry)

        return await self._engine.write(op)

    async def recall(self, gid: int, mid: int, by: int, *, notice_mid: int, not_before_ms: int) -> GroupChange:
        gid = check_gid(gid)
        check_id(by, "by")
        check_id(notice_mid, "notice_mid")
        check_int(not_before_ms, "not_before_ms")
        if not is_id(mid):
            raise NotFound(f"message {mid!r:.30} not found in group {gid}")
        clock_ms = self._clock_ms

        async def op(conn: WriteConn) -> GroupChange:
            now = clock_ms()
            group = await load_group(conn, gid, lock=True)
            row = await conn.fetchrow(SQL_GMSG_BY_MID, mid, gid)
            if row is None:
                raise NotFound(f"message {mid} not found in group {gid}")
            target = gmsg_from(row)
            rules.check_recall(group, await load_member(conn, gid, by), target, not_before_ms=not_before_ms)
            if target.status == STATUS_RECALLED:
                return await change(conn, gid, None)
            await conn.execute(
                "UPDATE group_messages SET status = $1, recalled_by = $2 WHERE mid = $3", STATUS_RECALLED, by, mid
            )
            entry = await notice(
                conn, gid, by, NOTICE_RECALLED, [target.sender], notice_mid, now, mid=mid, seq=target.seq
            )
            return await change(conn, gid, entry)

        return await self._engine.write(op)
