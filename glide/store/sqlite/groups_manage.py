"""Membership and settings changes of the SQLite group store (a mixin of :class:`SqliteGroupStore`): each is
one writer operation that checks the rules, changes the rows and appends its notice to the seq stream."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence

from glide.errors import BadRequest, NotAllowed, NotFound
from glide.group import rules
from glide.store.checks import check_id
from glide.store.group_checks import check_gid, check_settings, check_uids
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
    NOTICE_ROLE_CHANGED,
    NOTICE_SETTINGS_CHANGED,
    ROLE_ADMIN,
    ROLE_MEMBER,
    ROLE_OWNER,
    GroupChange,
    JoinRequest,
    MemberExists,
)
from glide.store.sqlite.engine import SqliteEngine
from glide.store.sqlite.groups_sql import (
    add_members,
    add_notice,
    banned_of,
    change_of,
    load_group,
    load_member,
    load_members,
    managers_of,
    marks,
    member_count,
    record_departure,
    refusing,
    require_members,
    require_users,
    start_history,
)


class SqliteGroupManagement:
    """join, invite, remove, leave, dissolve, roles, mutes, transfer."""

    _engine: SqliteEngine
    _clock_ms: Callable[[], int]

    async def join(self, gid: int, uid: int, *, mid: int) -> GroupChange:
        gid = check_gid(gid)
        check_id(uid, "uid")
        check_id(mid, "mid")
        clock_ms = self._clock_ms

        def op(conn: sqlite3.Connection) -> GroupChange:
            now = clock_ms()
            group = load_group(conn, gid)
            rules.check_open(group)
            if load_member(conn, gid, uid) is not None:
                raise MemberExists(f"you are already a member of group {gid}")
            require_users(conn, [uid])
            rules.check_join(group, banned=bool(banned_of(conn, gid, [uid])))
            if member_count(conn, gid) >= MAX_GROUP_MEMBERS:
                raise NotAllowed(f"group {gid} is full ({MAX_GROUP_MEMBERS} members)")
            if not rules.joins_at_once(group):
                conn.execute(
                    "INSERT INTO group_join_requests (gid, uid, created_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (gid, uid) DO UPDATE SET created_at = excluded.created_at",
                    (gid, uid, now),
                )
                return GroupChange(group, None, managers_of(conn, gid), pending=True)
            add_members(conn, gid, [uid], ROLE_MEMBER, now)
            notice = add_notice(conn, gid, uid, NOTICE_MEMBERS_ADDED, [uid], mid, now)
            start_history(conn, gid, [uid], notice.seq)
            return change_of(conn, gid, notice)

        return await self._engine.write(op)

    async def join_requests(self, gid: int, by: int) -> list[JoinRequest]:
        gid = check_gid(gid)
        check_id(by, "by")

        def op(conn: sqlite3.Connection) -> list[JoinRequest]:
            rules.check_manage(load_group(conn, gid), load_member(conn, gid, by))
            rows = conn.execute(
                "SELECT gid, uid, created_at FROM group_join_requests WHERE gid = ? ORDER BY created_at, uid LIMIT ?",
                (gid, MAX_GROUP_MEMBERS),
            )
            return [JoinRequest(*r) for r in rows]

        return await self._engine.read(op)

    async def decide_join(self, gid: int, by: int, uid: int, accept: bool, *, mid: int) -> GroupChange:
        gid = check_gid(gid)
        check_id(by, "by")
        check_id(uid, "uid")
        check_id(mid, "mid")
        if not isinstance(accept, bool):
            raise BadRequest("accept: expected true or false")
        clock_ms = self._clock_ms

        def op(conn: sqlite3.Connection) -> GroupChange:
            now = clock_ms()
            group = load_group(conn, gid)
            rules.check_manage(group, load_member(conn, gid, by))
            cur = conn.execute("DELETE FROM group_join_requests WHERE gid = ? AND uid = ?", (gid, uid))
            if cur.rowcount == 0:
                raise NotFound(f"user {uid} has not asked to join group {gid}")
            if not accept:
                return GroupChange(group, None, (uid,))
            if load_member(conn, gid, uid) is not None:
                return change_of(conn, gid, None)
            if member_count(conn, gid) >= MAX_GROUP_MEMBERS:
                raise NotAllowed(f"group {gid} is full ({MAX_GROUP_MEMBERS} members)")
            add_members(conn, gid, [uid], ROLE_MEMBER, now)
            notice = add_notice(conn, gid, by, NOTICE_MEMBERS_ADDED, [uid], mid, now)
            start_history(conn, gid, [uid], notice.seq)
            return change_of(conn, gid, notice)

        return await self._engine.write(op)

    async def unban(self, gid: int, by: int, uids: Sequence[int]) -> list[int]:
        gid = check_gid(gid)
        check_id(by, "by")
        wanted = check_uids(uids)

        def op(conn: sqlite3.Connection) -> list[int]:
            rules.check_manage(load_group(conn, gid), load_member(conn, gid, by))
            lifted = banned_of(conn, gid, wanted)
            for uid in lifted:
                conn.execute("UPDATE group_departed SET banned = 0 WHERE gid = ? AND uid = ?", (gid, uid))
            conn.execute("DELETE FROM group_departed WHERE gid = ? AND banned = 0 AND muted = 0", (gid,))
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

        def op(conn: sqlite3.Connection) -> GroupChange:
            now = clock_ms()
            group = load_group(conn, gid)
            rules.check_owner(group, load_member(conn, gid, by), "change its settings")
            extra = rules.changed_settings(group, join_policy, history_from_join)
            if extra is None:
                return change_of(conn, gid, None)
            conn.execute(
                "UPDATE groups SET join_policy = ?, history_from_join = ? WHERE gid = ?",
                (extra["join_policy"], extra["history_from_join"], gid),
            )
            notice = add_notice(conn, gid, by, NOTICE_SETTINGS_CHANGED, [], mid, now, **extra)
            return change_of(conn, gid, notice)

        return await self._engine.write(op)

    async def invite(self, gid: int, by: int, uids: Sequence[int], *, mid: int) -> GroupChange:
        gid = check_gid(gid)
        check_id(by, "by")
        check_id(mid, "mid")
        wanted = check_uids(uids)
        clock_ms = self._clock_ms

        def op(conn: sqlite3.Connection) -> GroupChange:
            now = clock_ms()
            group = load_group(conn, gid)
            rules.check_manage(group, load_member(conn, gid, by))
            present = load_members(conn, gid, wanted)
            new = [u for u in wanted if u not in present]
            if not new:
                raise MemberExists(f"already members of group {gid}: {wanted[:20]}")
            require_users(conn, new)
            rules.check_adding(group, by, banned_of(conn, gid, new), refusing(conn, by, new))
            if member_count(conn, gid) + len(new) > MAX_GROUP_MEMBERS:
                raise NotAllowed(f"group {gid} would exceed {MAX_GROUP_MEMBERS} members")
            add_members(conn, gid, new, ROLE_MEMBER, now)
            notice = add_notice(conn, gid, by, NOTICE_MEMBERS_ADDED, new, mid, now)
            start_history(conn, gid, new, notice.seq)
            return change_of(conn, gid, notice)

        return await self._engine.write(op)

    async def remove(self, gid: int, by: int, uids: Sequence[int], *, mid: int) -> GroupChange:
        gid = check_gid(gid)
        check_id(by, "by")
        check_id(mid, "mid")
        wanted = check_uids(uids)
        clock_ms = self._clock_ms

        def op(conn: sqlite3.Connection) -> GroupChange:
            now = clock_ms()
            group = load_group(conn, gid)
            actor = load_member(conn, gid, by)
            rules.check_manage(group, actor)
            targets = require_members(conn, group, wanted)
            for target in targets:
                rules.check_remove(group, actor, target)
            record_departure(conn, gid, targets, banned=True)
            conn.execute(f"DELETE FROM group_members WHERE gid = ? AND uid IN ({marks(len(wanted))})", (gid, *wanted))
            notice = add_notice(conn, gid, by, NOTICE_MEMBERS_REMOVED, wanted, mid, now)
            return change_of(conn, gid, notice, wanted)

        return await self._engine.write(op)

    async def leave(self, gid: int, uid: int, *, mid: int) -> GroupChange:
        gid = check_gid(gid)
        check_id(uid, "uid")
        check_id(mid, "mid")
        clock_ms = self._clock_ms

        def op(conn: sqlite3.Connection) -> GroupChange:
            now = clock_ms()
            group = load_group(conn, gid)
            member = load_member(conn, gid, uid)
            rules.check_leave(group, member)
            assert member is not None
            record_departure(conn, gid, [member], banned=False)
            conn.execute("DELETE FROM group_members WHERE gid = ? AND uid = ?", (gid, uid))
            notice = add_notice(conn, gid, uid, NOTICE_MEMBER_LEFT, [uid], mid, now)
            return change_of(conn, gid, notice, [uid])

        return await self._engine.write(op)

    async def dissolve(self, gid: int, by: int, *, mid: int) -> GroupChange:
        gid = check_gid(gid)
        check_id(by, "by")
        check_id(mid, "mid")
        clock_ms = self._clock_ms

        def op(conn: sqlite3.Connection) -> GroupChange:
            now = clock_ms()
            group = load_group(conn, gid)
            rules.check_owner(group, load_member(conn, gid, by), "dissolve it")
            notice = add_notice(conn, gid, by, NOTICE_DISSOLVED, [], mid, now)
            conn.execute("UPDATE groups SET dissolved = 1 WHERE gid = ?", (gid,))
            return change_of(conn, gid, notice)

        return await self._engine.write(op)

    async def set_role(self, gid: int, by: int, uid: int, role: int, *, mid: int) -> GroupChange:
        gid = check_gid(gid)
        check_id(by, "by")
        check_id(uid, "uid")
        check_id(mid, "mid")
        if role not in (ROLE_ADMIN, ROLE_MEMBER) or isinstance(role, bool):
            raise BadRequest(f"role: expected {ROLE_ADMIN} (admin) or {ROLE_MEMBER} (member), got {role!r:.20}")
        clock_ms = self._clock_ms

        def op(conn: sqlite3.Connection) -> GroupChange:
            now = clock_ms()
            group = load_group(conn, gid)
            actor = load_member(conn, gid, by)
            rules.check_owner(group, actor, "change roles")
            (target,) = require_members(conn, group, [uid])
            rules.check_set_role(group, actor, target)
            if target.role == role:
                return change_of(conn, gid, None)
            conn.execute("UPDATE group_members SET role = ? WHERE gid = ? AND uid = ?", (role, gid, uid))
            notice = add_notice(conn, gid, by, NOTICE_ROLE_CHANGED, [uid], mid, now, role=role)
            return change_of(conn, gid, notice)

        return await self._engine.write(op)

    async def mute_members(self, gid: int, by: int, uids: Sequence[int], muted: bool, *, mid: int) -> GroupChange:
        gid = check_gid(gid)
        check_id(by, "by")
        check_id(mid, "mid")
        wanted = check_uids(uids)
        if not isinstance(muted, bool):
            raise BadRequest("muted: expected true or false")
        clock_ms = self._clock_ms

        def op(conn: sqlite3.Connection) -> GroupChange:
            now = clock_ms()
            group = load_group(conn, gid)
            actor = load_member(conn, gid, by)
            rules.check_manage(group, actor)
            targets = require_members(conn, group, wanted)
            for target in targets:
                rules.check_mute(group, actor, target)
            changed = [t.uid for t in targets if t.muted != muted]
            if not changed:
                return change_of(conn, gid, None)
            conn.execute(
                f"UPDATE group_members SET muted = ? WHERE gid = ? AND uid IN ({marks(len(changed))})",
                (int(muted), gid, *changed),
            )
            kind = NOTICE_MEMBERS_MUTED if muted else NOTICE_MEMBERS_UNMUTED
            return change_of(conn, gid, add_notice(conn, gid, by, kind, changed, mid, now))

        return await self._engine.write(op)

    async def mute_group(self, gid: int, by: int, muted: bool, *, mid: int) -> GroupChange:
        gid = check_gid(gid)
        check_id(by, "by")
        check_id(mid, "mid")
        if not isinstance(muted, bool):
            raise BadRequest("muted: expected true or false")
        clock_ms = self._clock_ms

        def op(conn: sqlite3.Connection) -> GroupChange:
            now = clock_ms()
            group = load_group(conn, gid)
            rules.check_manage(group, load_member(conn, gid, by))
            if group.muted == muted:
                return change_of(conn, gid, None)
            conn.execute("UPDATE groups SET muted = ? WHERE gid = ?", (int(muted), gid))
            kind = NOTICE_GROUP_MUTED if muted else NOTICE_GROUP_UNMUTED
            return change_of(conn, gid, add_notice(conn, gid, by, kind, [], mid, now))

        return await self._engine.write(op)

    async def transfer(self, gid: int, by: int, to: int, *, mid: int) -> GroupChange:
        gid = check_gid(gid)
        check_id(by, "by")
        check_id(to, "to")
        check_id(mid, "mid")
        clock_ms = self._clock_ms

        def op(conn: sqlite3.Connection) -> GroupChange:
            now = clock_ms()
            group = load_group(conn, gid)
            rules.check_transfer(group, load_member(conn, gid, by), load_member(conn, gid, to), to)
            conn.execute("UPDATE group_members SET role = ? WHERE gid = ? AND uid = ?", (ROLE_ADMIN, gid, by))
            conn.execute(
                "UPDATE group_members SET role = ?, muted = 0 WHERE gid = ? AND uid = ?", (ROLE_OWNER, gid, to)
            )
            conn.execute("UPDATE groups SET owner = ? WHERE gid = ?", (to, gid))
            notice = add_notice(conn, gid, by, NOTICE_OWNER_TRANSFERRED, [to], mid, now, **{"from": by})
            return change_of(conn, gid, notice)

        return await self._engine.write(op)
