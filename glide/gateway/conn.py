"""What the business core sees of a client connection, whatever driver carries it."""

from __future__ import annotations

from typing import Any, Protocol

from glide._native import Outgoing
from glide.ids import mid_time_ms
from glide.limits import TokenBucket

SEEN_S = 300


class RecentMids:
    """The 1:1 frames a session was sent (replayed or pushed) about messages with a mid time from
    ``floor_ms`` on, when other nodes push to it too: a cross-node push or a catch-up pass skips what the
    session already got. A message and its recall notice are told apart by the frame's action. Entries older
    than SEEN_S are dropped as new ones come."""

    __slots__ = ("floor_ms", "keys")

    def __init__(self, now_ms: int) -> None:
        self.keys: set[int] = set()
        self.floor_ms = now_ms - SEEN_S * 1000

    @staticmethod
    def key(mid: int, out: Outgoing) -> int:
        return mid if out.action == "message.chat" else -mid

    def add(self, mid: int, out: Outgoing) -> None:
        self.keys.add(self.key(mid, out))
        if len(self.keys) >= 4096 and len(self.keys) & 1023 == 0:
            self.prune(mid_time_ms(mid))

    def got(self, mid: int, out: Outgoing) -> bool:
        return self.key(mid, out) in self.keys

    def prune(self, now_ms: int) -> None:
        self.floor_ms = max(self.floor_ms, now_ms - SEEN_S * 1000)
        floor = self.floor_ms
        self.keys = {k for k in self.keys if mid_time_ms(abs(k)) >= floor}

    def covers(self, mid: int) -> bool:
        """Whether ``mid`` is recent enough for this record to say if the session got it."""
        return mid_time_ms(mid) >= self.floor_ms


class Conn(Protocol):
    """A logged-in (or not yet logged-in) client socket. Drivers implement it; handlers only use this."""

    id: int
    uid: int
    device: str
    device_name: str
    peer: str  # the client's address, for the log of a connection that never logs in ('' once logged in)
    wire: int
    authenticated: bool
    closed: bool
    syncing: bool  # replaying its inbox: live deliveries are held until the replay ends
    held: dict[int, Outgoing] | None  # mid -> frame pushed live while syncing, sent when the replay ends (hold)
    busy: bool  # a drain task is handling its envelopes
    pending: list[Any] | tuple[()]  # envelopes waiting for that task (the empty tuple when idle)
    inbox_replayed: int  # highest mid replayed from the inbox on login (what a bare ack.offline covers)
    seen: RecentMids | None  # on a cluster: the 1:1 messages this session got lately (glide.cluster)
    reading_paused: bool  # too many pending: the socket is not read until the task catches up
    ticket_secret: str | None  # a credential login's message_deliver_secret: its sends need tickets
    send_bucket: TokenBucket | None  # its message rate limit (glide.dispatch), made on its first send

    def send(self, out: Outgoing) -> None:
        """Queue one envelope; a consumer whose queue overflows is disconnected."""

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Start a clean close (close frame, then the transport)."""

    async def drained(self) -> None:
        """Wait until the send queue is below its high-water mark."""

    def pause_reading(self) -> None:
        """Stop reading from the socket (the client is ahead of us); TCP pushes back on it."""

    def resume_reading(self) -> None: ...


def hold(conn: Conn, mid: int, out: Outgoing) -> None:
    """Keep ``out`` (about 1:1 message ``mid``) until ``conn``'s inbox replay ends (``conn.syncing``). A
    connection holds nothing most of its life: ``held`` is None until then, not a dict of its own."""
    if conn.held is None:
        conn.held = {}
    conn.held[mid] = out
