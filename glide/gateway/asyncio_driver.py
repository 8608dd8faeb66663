"""The asyncio driver: one protocol object per socket; the Rust core frames and codes every byte.

What handlers send waits in the connection's ``out`` list and is written once per loop iteration (the
gateway's ``flush``), one write per connection however many frames the tick produced; a connection that has
``WRITE_HIGH_WATER`` bytes waiting is written at once, so Python never holds more than that per connection
and the transport's own buffer (with ``pause_writing``) bounds the rest.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from glide._native import Connection, Outgoing
from glide.gateway.conn import RecentMids
from glide.limits import TokenBucket
from glide.logs import event

if TYPE_CHECKING:
    from glide.gateway.gateway import Gateway


log = logging.getLogger("glide.gateway")
WRITE_HIGH_WATER = 64 * 1024


class ClientProtocol(asyncio.Protocol):
    """One client socket. It is also the ``Conn`` handlers see, so a connection costs one Python object."""

    __slots__ = (
        "_drain_waiter",
        "authenticated",
        "busy",
        "closed",
        "device",
        "device_name",
        "gateway",
        "held",
        "id",
        "inbox_replayed",
        "kind",
        "last_recv",
        "last_sent",
        "native",
        "opened_at",
        "out",
        "out_bytes",
        "paused",
        "peer",
        "pending",
        "reading_paused",
        "seen",
        "send_bucket",
        "syncing",
        "ticket_secret",
        "transport",
        "uid",
        "wire",
    )

    def __init__(self, gateway: Gateway, kind: str) -> None:
        self.gateway = gateway
        self.kind = kind
        cfg = gateway.config
        self.native = Connection(kind, max_message_size=cfg.max_message_size, tcp_codec=cfg.tcp_codec)
        self.wire = self.native.wire
        self.id = 0
        self.uid = 0
        self.device = ""
        self.device_name = ""
        self.authenticated = False
        self.closed = False
        self.busy = False
        self.syncing = False
        self.held: dict[int, Outgoing] | None = None
        self.paused = False
        self.reading_paused = False
        self.inbox_replayed = 0
        self.seen: RecentMids | None = None
        self.send_bucket: TokenBucket | None = None
        self.ticket_secret: str | None = None
        self.pending: list[object] | tuple[()] = ()
        self.transport: asyncio.Transport | None = None
        self.out: list[bytes] = []  # frames of this tick, written by flush()
        self.out_bytes = 0
        self.peer = ""
        self._drain_waiter: asyncio.Future[None] | None = None
        self.opened_at = self.last_recv = self.last_sent = gateway.now_ms

    # asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are not asyncio.Transport
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else ""
        # pause_writing at 64 KiB buffered: inbox replay waits there, well below send_buffer_limit
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)  # type: ignore[attr-defined]
        self.gateway.connection_made(self)
        if self.kind == "tcp":  # no handshake: the socket is open as soon as it is accepted
            self.gateway.connection_opened(self)

    def data_received(self, data: bytes) -> None:
        feed = self.native.feed(data)
        self.last_recv = self.gateway.now_ms
        if feed is None:
            return
        to_send = feed.to_send
        if to_send and self.transport is not None:
            self.flush()  # what handlers sent goes first
            self.transport.write(to_send)
        if feed.opened:
            self.wire = self.native.wire
            self.gateway.connection_opened(self)
        messages = feed.messages
        if messages:
            self.gateway.dispatcher.submit(self, messages)
        if feed.close is not None:
            self._shutdown()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.out = []
        self.out_bytes = 0
        self.gateway.connection_lost(self)
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self.reading_paused = False
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # Conn

    def send(self, out: Outgoing) -> None:
        if self.closed or self.transport is None:
            return
        frame = out.frame(self.wire)
        gateway = self.gateway
        if not self.out:
            gateway.dirty.append(self)
            if not gateway.flush_scheduled:
                gateway.schedule_flush()
        self.out.append(frame)
        self.out_bytes += len(frame)
        gateway.frames_out += 1
        self.last_sent = gateway.now_ms
        if self.out_bytes >= WRITE_HIGH_WATER:
            self.flush()

    def flush(self) -> None:
        """Write this tick's frames in one write; drop the connection if the peer is too far behind."""
        out = self.out
        transport = self.transport
        if not out or transport is None:
            return
        self.out = []
        self.out_bytes = 0
        if self.closed:
            return
        transport.write(out[0] if len(out) == 1 else b"".join(out))
        self.gateway.writes += 1
        if transport.get_write_buffer_size() > self.gateway.config.send_buffer_limit:
            # A consumer this far behind would make memory grow without bound; its messages stay in the
            # store (inbox), so dropping the connection loses nothing.
            event(log, logging.WARNING, "slow consumer dropped", conn=self.id, uid=self.uid, device=self.device)
            self.gateway.slow_consumers += 1
            self.closed = True
            transport.abort()

    def close(self, code: int = 1000, reason: str = "") -> None:
        transport = self.transport
        if self.closed or transport is None:
            return
        self.flush()  # what was sent before the close frame goes before it
        if self.closed:  # the flush found a slow consumer and dropped it
            return
        frame = self.native.close_frame(code, reason)
        if frame:
            transport.write(frame)
        self._shutdown()

    async def drained(self) -> None:
        self.flush()  # the transport's buffer, not this tick's list, says whether the peer keeps up
        while self.paused and not self.closed:
            loop = asyncio.get_running_loop()
            self._drain_waiter = loop.create_future()
            await self._drain_waiter
            self._drain_waiter = None

    def pause_reading(self) -> None:
        self.reading_paused = True
        if self.transport is not None and not self.closed:
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        self.reading_paused = False
        if self.transport is not None and not self.closed:
            self.transport.resume_reading()

    def _shutdown(self) -> None:
        self.flush()
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def __repr__(self) -> str:
        return f"<conn {self.id} uid={self.uid} device={self.device!r}>"
