"""Where each (uid, device) session is connected, and handing a delivery there.

This is the one place that answers "is uid online, and where": local now, a Redis route table later
(``../DESIGN.md``, scale-out). Business code calls only ``deliver`` / ``devices`` / ``bind`` / ``unbind``.
"""

from __future__ import annotations

from collections.abc import Iterable

from glide._native import Outgoing
from glide.gateway.conn import Conn


class LocalHub:
    """Sessions of this process, keyed by uid then device."""

    __slots__ = ("_sessions",)

    def __init__(self) -> None:
        self._sessions: dict[int, dict[str, Conn]] = {}

    def bind(self, conn: Conn, *, single_device: bool = False) -> list[Conn]:
        """Register ``conn`` as the session ``(conn.uid, conn.device)``; returns the sessions it replaces."""
        devices = self._sessions.setdefault(conn.uid, {})
        if single_device:
            replaced = [c for c in devices.values() if c is not conn]
            devices.clear()
        else:
            old = devices.get(conn.device)
            replaced = [old] if old is not None and old is not conn else []
        devices[conn.device] = conn
        return replaced

    def unbind(self, conn: Conn) -> bool:
        """Forget ``conn`` if it is still the registered session of its (uid, device)."""
        devices = self._sessions.get(conn.uid)
        if devices is None or devices.get(conn.device) is not conn:
            return False
        del devices[conn.device]
        if not devices:
            del self._sessions[conn.uid]
        return True

    def devices(self, uid: int) -> Iterable[Conn]:
        devices = self._sessions.get(uid)
        return () if devices is None else tuple(devices.values())

    def session(self, uid: int, device: str) -> Conn | None:
        devices = self._sessions.get(uid)
        return None if devices is None else devices.get(device)

    def is_online(self, uid: int) -> bool:
        return uid in self._sessions

    def deliver(self, uid: int, out: Outgoing, *, exclude: Conn | None = None) -> int:
        """Send ``out`` to every device of ``uid`` (except ``exclude``); returns how many got it."""
        devices = self._sessions.get(uid)
        if devices is None:
            return 0
        sent = 0
        for conn in devices.values():
            if conn is not exclude and not conn.closed:
                conn.send(out)
                sent += 1
        return sent

    def deliver_many(self, uids: Iterable[int], out: Outgoing, *, exclude: Conn | None = None) -> int:
        """Fan ``out`` to every device of every uid; the frame is encoded once per wire variant."""
        return sum(self.deliver(uid, out, exclude=exclude) for uid in uids)

    def broadcast(self, out: Outgoing, *, exclude: Conn | None = None) -> int:
        """Send ``out`` to every session of this node (except ``exclude``); returns how many got it."""
        sent = 0
        for devices in self._sessions.values():
            for conn in devices.values():
                if conn is not exclude and not conn.closed:
                    conn.send(out)
                    sent += 1
        return sent

    def online_count(self) -> int:
        return sum(len(d) for d in self._sessions.values())

    def all(self) -> list[Conn]:
        return [c for d in self._sessions.values() for c in d.values()]
