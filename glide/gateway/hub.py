"""Where each (uid, device) session is connected, and handing a delivery there.

This is the one place that answers "is uid online, and where". ``LocalHub`` knows this process's sessions;
``glide.cluster.ClusterHub`` extends it with the sessions of the other nodes (a Redis route table) and
carries deliveries there. Business code calls only the methods below, the same on both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from glide._native import Outgoing
from glide.gateway.conn import Conn, hold

KICKED_OUT = 4001  # application close code: another login took this (uid, device)


SendMany = Callable[[list[Conn], Outgoing], None]


def _each(entry: Conn | dict[str, Conn]) -> Iterable[Conn]:
    """The connections of one uid's entry in the session table."""
    return entry.values() if isinstance(entry, dict) else (entry,)


def send_each(conns: list[Conn], out: Outgoing) -> None:
    for conn in conns:
        conn.send(out)


class LocalHub:
    """Sessions of this process, keyed by uid then device. A uid with one session (the usual case) maps to its
    connection itself; with several, to a dict by device: an idle server keeps no dict per user."""

    __slots__ = ("_count", "_send_many", "_sessions", "_single_node")

    def __init__(self, send_many: SendMany = send_each) -> None:
        """``send_many``: how the driver sends one frame to many of its connections (a fan-out)."""
        self._sessions: dict[int, Conn | dict[str, Conn]] = {}
        self._count = 0  # sessions in the table (app/info reads it at every login: no walk over the table)
        self._send_many = send_many
        # Nothing to forward (no other node): ``deliver`` sends to a lone live session itself (below).
        self._single_node = type(self).forward is LocalHub.forward

    # sessions

    def bind(self, conn: Conn, *, single_device: bool = False) -> list[Conn]:
        """Register ``conn`` as the session ``(conn.uid, conn.device)``; returns the sessions it replaces."""
        entry = self._sessions.get(conn.uid)
        if entry is None:
            self._sessions[conn.uid] = conn
            self._count += 1
            return []
        devices = entry if isinstance(entry, dict) else {entry.device: entry}
        before = len(devices)
        if single_device:
            replaced = [c for c in devices.values() if c is not conn]
            devices = {}
        else:
            old = devices.get(conn.device)
            replaced = [old] if old is not None and old is not conn else []
        devices[conn.device] = conn
        self._sessions[conn.uid] = devices if len(devices) > 1 else conn
        self._count += len(devices) - before
        return replaced

    async def announce(self, conn: Conn, *, single_device: bool = False, kickout: Outgoing | None = None) -> None:
        """Make the bound session reachable from every node before its inbox replay starts, and send
        ``kickout`` to the sessions it replaces on other nodes (glide.cluster); one node has nothing to do."""

    def unbind(self, conn: Conn) -> bool:
        """Forget ``conn`` if it is still the registered session of its (uid, device)."""
        entry = self._sessions.get(conn.uid)
        if entry is conn:
            del self._sessions[conn.uid]
            self._count -= 1
            return True
        if not isinstance(entry, dict) or entry.get(conn.device) is not conn:
            return False
        del entry[conn.device]
        self._count -= 1
        if len(entry) == 1:
            self._sessions[conn.uid] = next(iter(entry.values()))
        return True

    def devices(self, uid: int) -> Iterable[Conn]:
        entry = self._sessions.get(uid)
        return () if entry is None else tuple(_each(entry))

    def session(self, uid: int, device: str) -> Conn | None:
        entry = self._sessions.get(uid)
        if isinstance(entry, dict):
            return entry.get(device)
        return entry if entry is not None and entry.device == device else None

    def close_session(self, uid: int, device: str | None, code: int, reason: str) -> bool:
        """Close the socket of session ``(uid, device)`` (``device`` None: every session of ``uid``) wherever it
        is; whether one was on this node."""
        conns = list(self.devices(uid)) if device is None else [c for c in [self.session(uid, device)] if c is not None]
        for conn in conns:
            conn.close(code, reason)
        return bool(conns)

    def is_online(self, uid: int) -> bool:
        """Whether ``uid`` has a session on this node."""
        return uid in self._sessions

    async def online(self, uids: Iterable[int]) -> set[int]:
        """Which of ``uids`` have a session anywhere."""
        return {uid for uid in uids if uid in self._sessions}

    def online_count(self) -> int:
        """Sessions on this node."""
        return self._count

    def all(self) -> list[Conn]:
        return [c for e in self._sessions.values() for c in _each(e)]

    # deliveries

    def deliver(
        self,
        uid: int,
        out: Outgoing,
        *,
        mid: int = 0,
        exclude: Conn | None = None,
        if_nobody: Callable[[], None] | None = None,
    ) -> int:
        """Send ``out`` to every device of ``uid`` (except ``exclude``); returns how many on this node got it.

        ``mid``: the frame is about 1:1 message ``mid``: a device still replaying its inbox holds it until the
        replay ends (and the replay skips that mid). ``if_nobody`` runs when no device anywhere is online."""
        entry = self.live(uid)
        if entry is not None and entry is not exclude:
            entry.send(out)
            return 1
        sent = self.deliver_here(uid, out, mid=mid, exclude=exclude)
        self.forward(uid, out, mid, if_nobody if sent == 0 else None)
        return sent

    def live(self, uid: int) -> Conn | None:
        """``uid``'s one session, when a push to ``uid`` is just a send on it (what ``deliver`` then does): this
        node is the only one, the session is the user's only one and is not replaying its inbox. ``deliver``'s
        first step, and the message path's way past its arguments for every new message's push; None: use
        ``deliver``."""
        entry = self._sessions.get(uid)
        if (
            self._single_node
            and entry is not None
            and not isinstance(entry, dict)
            and not entry.closed
            and not entry.syncing
        ):
            return entry
        return None

    def forward(self, uid: int, out: Outgoing, mid: int, if_nobody: Callable[[], None] | None) -> None:
        """Hand ``out`` to ``uid``'s sessions on other nodes (a cluster's); here there are none."""
        if if_nobody is not None:
            if_nobody()

    def deliver_here(self, uid: int, out: Outgoing, *, mid: int = 0, exclude: Conn | None = None) -> int:
        entry = self._sessions.get(uid)
        if entry is None:
            return 0
        sent = 0
        for conn in _each(entry):
            if conn is exclude or conn.closed:
                continue
            if mid:
                if conn.syncing:
                    hold(conn, mid, out)
                    sent += 1
                    continue
                if conn.seen is not None:
                    conn.seen.add(mid, out)
            conn.send(out)
            sent += 1
        return sent

    def deliver_many(self, uids: Iterable[int], out: Outgoing, *, exclude: Conn | None = None) -> int:
        """Fan ``out`` to every device of every uid; the frame is encoded once per wire variant."""
        targets = list(uids)
        sent = self.deliver_many_here(targets, out, exclude=exclude)
        self.forward_many(targets, out)
        return sent

    def forward_many(self, uids: list[int], out: Outgoing) -> None:
        """Hand ``out`` to the sessions of ``uids`` on other nodes."""

    def deliver_many_here(self, uids: Iterable[int], out: Outgoing, *, exclude: Conn | None = None) -> int:
        """Every session of ``uids`` here (but ``exclude``) gets ``out``, in one call to the driver."""
        sessions = self._sessions
        conns = [
            conn
            for uid in uids
            if (entry := sessions.get(uid)) is not None
            for conn in _each(entry)
            if conn is not exclude and not conn.closed
        ]
        if conns:
            self._send_many(conns, out)
        return len(conns)

    def broadcast(self, out: Outgoing, *, exclude: Conn | None = None) -> int:
        """Send ``out`` to every session (except ``exclude``); returns how many on this node got it."""
        sent = self.broadcast_here(out, exclude=exclude)
        self.forward_all(out)
        return sent

    def forward_all(self, out: Outgoing) -> None:
        """Hand ``out`` to every session on other nodes."""

    def broadcast_here(self, out: Outgoing, *, exclude: Conn | None = None) -> int:
        conns = [conn for conn in self.all() if conn is not exclude and not conn.closed]
        if conns:
            self._send_many(conns, out)
        return len(conns)

    # lifecycle (the cluster's connections to Redis)

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass
