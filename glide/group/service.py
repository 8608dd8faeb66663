"""Group operations shared by the socket actions and the API routes: store the change, then tell the members.

Each operation awaits the store (which checks the rules and commits the change with its notice), then fans
the notice out synchronously — no await in between — so pushes leave in commit order, i.e. seq order.
"""

from __future__ import annotations

from collections.abc import Sequence

from glide._native import Outgoing
from glide.config import recall_not_before_ms
from glide.errors import GlideError
from glide.gateway.hub import LocalHub
from glide.group.wire import JOIN_REQUEST, pushes_for
from glide.ids import MidGenerator, wall_ms
from glide.store.groups import JOIN_INVITE, WORLD_GID, GroupChange, GroupStore, NewGroupMessage, StoredGroupMessage


class GroupService:
    """Stateless: cheap to build per request from the node's store, hub and id generator."""

    __slots__ = ("groups", "hub", "ids", "recall_window_s")

    def __init__(self, groups: GroupStore, hub: LocalHub, ids: MidGenerator, recall_window_s: float) -> None:
        self.groups = groups
        self.hub = hub
        self.ids = ids
        self.recall_window_s = recall_window_s

    def publish(self, change: GroupChange) -> GroupChange:
        """Push the change's notice to every online device of its recipients (frames shared by all)."""
        if change.notice is not None:
            for out in pushes_for(change.notice):
                self.hub.deliver_many(change.recipients, out)
        return change

    def fan_out(self, stored: StoredGroupMessage) -> int:
        """Push a newly stored chat message to every online device of every member (of the world channel:
        every online device); a duplicate was delivered the first time and goes nowhere. Returns how many
        devices got it."""
        if stored.duplicate:
            return 0
        [out] = pushes_for(stored.message)
        if stored.message.gid == WORLD_GID:
            return self.hub.broadcast(out)
        return self.hub.deliver_many(stored.recipients, out)

    async def send_many(self, messages: Sequence[NewGroupMessage]) -> list[StoredGroupMessage | GlideError]:
        """Store only, in one transaction (one result per message, in order); the caller acknowledges each,
        then calls :meth:`fan_out`."""
        return await self.groups.store_group_messages(messages)

    async def create(
        self,
        owner: int,
        name: str,
        avatar: str,
        members: Sequence[int],
        *,
        join_policy: int = JOIN_INVITE,
        history_from_join: bool = True,
    ) -> GroupChange:
        change = await self.groups.create_group(
            owner=owner,
            name=name,
            avatar=avatar,
            members=members,
            mid=self.ids.next(),
            join_policy=join_policy,
            history_from_join=history_from_join,
        )
        return self.publish(change)

    async def join(self, gid: int, uid: int) -> GroupChange:
        """Join at once (open group) or ask (approval: the owner and admins are told)."""
        change = await self.groups.join(gid, uid, mid=self.ids.next())
        if change.pending:
            self.hub.deliver_many(change.recipients, Outgoing(JOIN_REQUEST, {"gid": gid, "uid": uid}))
        return self.publish(change)

    async def decide_join(self, gid: int, by: int, uid: int, accept: bool) -> GroupChange:
        """Accepted: ``uid`` is a member and gets the notice like everyone. Rejected: ``uid`` is told."""
        change = await self.groups.decide_join(gid, by, uid, accept, mid=self.ids.next())
        if not accept:
            self.hub.deliver(uid, Outgoing(JOIN_REQUEST, {"gid": gid, "uid": uid, "accepted": False, "by": by}))
        return self.publish(change)

    async def set_settings(
        self, gid: int, by: int, *, join_policy: int | None, history_from_join: bool | None
    ) -> GroupChange:
        change = await self.groups.set_settings(
            gid, by, join_policy=join_policy, history_from_join=history_from_join, mid=self.ids.next()
        )
        return self.publish(change)

    async def invite(self, gid: int, by: int, uids: Sequence[int]) -> GroupChange:
        return self.publish(await self.groups.invite(gid, by, uids, mid=self.ids.next()))

    async def remove(self, gid: int, by: int, uids: Sequence[int]) -> GroupChange:
        return self.publish(await self.groups.remove(gid, by, uids, mid=self.ids.next()))

    async def leave(self, gid: int, uid: int) -> GroupChange:
        return self.publish(await self.groups.leave(gid, uid, mid=self.ids.next()))

    async def dissolve(self, gid: int, by: int) -> GroupChange:
        return self.publish(await self.groups.dissolve(gid, by, mid=self.ids.next()))

    async def set_role(self, gid: int, by: int, uid: int, role: int) -> GroupChange:
        return self.publish(await self.groups.set_role(gid, by, uid, role, mid=self.ids.next()))

    async def mute_members(self, gid: int, by: int, uids: Sequence[int], muted: bool) -> GroupChange:
        return self.publish(await self.groups.mute_members(gid, by, uids, muted, mid=self.ids.next()))

    async def mute_group(self, gid: int, by: int, muted: bool) -> GroupChange:
        return self.publish(await self.groups.mute_group(gid, by, muted, mid=self.ids.next()))

    async def transfer(self, gid: int, by: int, to: int) -> GroupChange:
        return self.publish(await self.groups.transfer(gid, by, to, mid=self.ids.next()))

    async def recall(self, gid: int, mid: int, by: int) -> GroupChange:
        not_before = recall_not_before_ms(self.recall_window_s, wall_ms())
        change = await self.groups.recall(gid, mid, by, notice_mid=self.ids.next(), not_before_ms=not_before)
        return self.publish(change)
