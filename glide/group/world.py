"""The world channel, as GlideIM has it: one channel everybody is in (``the_world_channel``).

Every user who logs in becomes a member (once, without a notice or a seq: being in it is not news), and
every online session hears who comes and goes — a ``message.group`` from ``system`` with ``type`` 100
(joined) or 101 (left) and the user's id as ``content``, not stored and without a seq (presence, not
history). What users write to it is an ordinary group message: stored, with the channel's contiguous seq,
its history readable by its members; it goes to every online session. GlideIM's web client builds its first
conversation from these frames. ``world_channel = false`` turns the whole channel off.
"""

from __future__ import annotations

from glide._native import Outgoing
from glide.context import Context
from glide.gateway.conn import Conn
from glide.group.wire import WORLD_CHANNEL
from glide.ids import wall_ms
from glide.store.groups import WORLD_GID

JOINED = 100
LEFT = 101
SYSTEM = "system"
KNOWN_LIMIT = 1_000_000  # members this node remembers having enrolled


class WorldChannel:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.enabled = ctx.config.world_channel
        self._enrolled: set[int] = set()

    async def start(self) -> None:
        if self.enabled:
            await self.ctx.store.groups.ensure_channel(WORLD_GID, WORLD_CHANNEL)

    async def logged_in(self, conn: Conn) -> None:
        """Make the user a member (the first time), then tell everyone online, the user included."""
        if not self.enabled or conn.closed:
            return
        uid = conn.uid
        if uid not in self._enrolled:
            await self.ctx.store.groups.enroll(WORLD_GID, [uid])
            if len(self._enrolled) >= KNOWN_LIMIT:
                self._enrolled.clear()
            self._enrolled.add(uid)
        self.ctx.hub.broadcast(presence(JOINED, uid))

    async def logged_out(self, conn: Conn) -> None:
        """The user's last session ended (on every node): tell everyone online."""
        if self.enabled and not self.ctx.hub.is_online(conn.uid) and not await self.ctx.hub.online((conn.uid,)):
            self.ctx.hub.broadcast(presence(LEFT, conn.uid))


def presence(kind: int, uid: int) -> Outgoing:
    data = {"from": SYSTEM, "to": WORLD_CHANNEL, "type": kind, "content": str(uid), "sendAt": wall_ms()}
    return Outgoing("message.group", data, sender=SYSTEM, to=WORLD_CHANNEL)
