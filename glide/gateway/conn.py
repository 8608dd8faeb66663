"""What the business core sees of a client connection, whatever driver carries it."""

from __future__ import annotations

from typing import Any, Protocol

from glide._native import Outgoing
from glide.limits import TokenBucket


class Conn(Protocol):
    """A logged-in (or not yet logged-in) client socket. Drivers implement it; handlers only use this."""

    id: int
    uid: int
    device: str
    device_name: str
    wire: int
    authenticated: bool
    closed: bool
    syncing: bool  # replaying its inbox: live deliveries are held until the replay ends
    held: dict[int, Outgoing]  # mid -> frame pushed live while syncing, sent when the replay ends
    busy: bool  # a drain task is handling its envelopes
    pending: list[Any]  # envelopes waiting for that task
    inbox_replayed: int  # highest mid replayed from the inbox on login (what a bare ack.offline covers)
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
