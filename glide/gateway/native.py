"""The native driver's gateway: tokio owns the sockets (``glide._native.NativeDriver``), Python sees batches.

The I/O thread wakes the loop through one descriptor when events wait; ``_on_events`` takes all of them in
one call and hands each connection's envelopes to the dispatcher. What handlers send is queued in the
driver as it happens and handed to the I/O thread once per loop iteration (``flush``), so a tick's frames,
closes and logins cost one wake-up of the I/O thread; a fan-out frame is encoded once per wire variant and
its bytes are shared by every recipient. Liveness (heartbeats, the authentication timeout, silent clients)
is the I/O thread's timing wheel; Python only says when a connection has logged in.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from glide._native import (
    EVENT_CLOSED,
    EVENT_DRAINED,
    EVENT_MESSAGES,
    EVENT_OPENED,
    NativeDriver,
    Outgoing,
)
from glide.errors import ConfigError
from glide.gateway.conn import Conn, RecentMids
from glide.gateway.gateway import GatewayBase, monotonic_ms
from glide.limits import TokenBucket
from glide.logs import event

if TYPE_CHECKING:
    from glide.config import Config
    from glide.dispatch import Pace

log = logging.getLogger("glide.gateway")
CLOSE_GOING_AWAY = 1001
# The inbox replay waits for the socket to drain after this many frames (the driver keeps them otherwise):
# 8 frames of at most max_message_size stay far below the send buffer limit.
DRAIN_EVERY = 8
STAMP_MS = 1000  # how fine the activity stamps (opened_at, last_recv) of app/info are


class NativeConn:
    """One client socket of the native driver: the ``Conn`` handlers see."""

    __slots__ = (
        "_authenticated",
        "_drain_waiter",
        "_unwatched",
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
        "opened_at",
        "peer",
        "pending",
        "reading_paused",
        "seen",
        "send_bucket",
        "syncing",
        "ticket_secret",
        "uid",
        "wire",
    )

    def __init__(self, gateway: NativeGateway, conn_id: int, kind: str, wire: int, peer: str, now: int) -> None:
        self.gateway = gateway
        self.id = conn_id
        self.kind = kind
        self.wire = wire
        self.peer = peer
        self.uid = 0
        self.device = ""
        self.device_name = ""
        self._authenticated = False
        self.closed = False
        self.busy = False
        self.syncing = False
        self.held: dict[int, Outgoing] | None = None
        self.reading_paused = False
        self.inbox_replayed = 0
        self.seen: RecentMids | None = None
        self.send_bucket: TokenBucket | None = None
        self.ticket_secret: str | None = None
        self.pending: list[Any] | tuple[()] = ()
        self._drain_waiter: asyncio.Future[None] | None = None
        self._unwatched = 0
        self.opened_at = self.last_recv = now

    def _set_authenticated(self, value: bool) -> None:
        if value and not self._authenticated and not self.closed:
            self.gateway.command(self.gateway.driver.authenticated, self.id)
        self._authenticated = value

    # Read for every envelope (the dispatcher's login check): a getter in C, not a Python call.
    authenticated = property(attrgetter("_authenticated"), _set_authenticated)

    def send(self, out: Outgoing) -> None:
        if not self.closed:
            gateway = self.gateway
            gateway.driver.send(self.id, out)
            if not gateway.flush_scheduled:
                gateway.schedule_flush()

    def close(self, code: int = 1000, reason: str = "") -> None:
        if not self.closed:
            self.closed = True
            self.gateway.command(self.gateway.driver.close, self.id, code, reason)

    async def drained(self) -> None:
        """Every DRAIN_EVERY frames, wait until the driver has written this connection's queue down."""
        self._unwatched += 1
        if self._unwatched < DRAIN_EVERY or self.closed:
            return
        self._unwatched = 0
        waiter = self._drain_waiter = asyncio.get_running_loop().create_future()
        self.gateway.command(self.gateway.driver.watch_drain, self.id)
        try:
            await waiter
        finally:
            self._drain_waiter = None

    def pause_reading(self) -> None:
        self.reading_paused = True
        if not self.closed:
            self.gateway.command(self.gateway.driver.pause_reading, self.id, True)

    def resume_reading(self) -> None:
        self.reading_paused = False
        if not self.closed:
            self.gateway.command(self.gateway.driver.pause_reading, self.id, False)

    def drain_done(self) -> None:
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def __repr__(self) -> str:
        return f"<conn {self.id} uid={self.uid} device={self.device!r}>"


class NativeGateway(GatewayBase):
    """Owns the native driver and every connection it reports."""

    def __init__(self, config: Config, *, clock: Callable[[], int] | None = None) -> None:
        super().__init__(config)
        # A given clock (tests) drives the driver's timers by hand: each tick() advances them to clock().
        self.clock = clock
        cert, key = config.tls_pem() or (None, None)  # every listener: wss, TLS over TCP
        try:
            self.driver = NativeDriver(
                max_message_size=config.max_message_size,
                tcp_codec=config.tcp_codec,
                heartbeat_ms=config.heartbeat_interval_s * 1000,
                heartbeat_lost_limit=config.heartbeat_lost_limit,
                auth_timeout_ms=int(config.auth_timeout_s * 1000),
                send_buffer_limit=config.send_buffer_limit,
                manual_clock=clock is not None,
                tls_cert=cert,
                tls_key=key,
            )
        except ValueError as e:  # rustls refused what OpenSSL took (Config.validate checked it already)
            raise ConfigError(f"tls_cert, tls_key: {e}") from None
        if clock is not None:
            self.driver.advance(clock())  # the test clock's time, before anything is accepted
            self.driver.flush()
        self.conns: dict[int, NativeConn] = {}
        self.stamp = 0  # the activity stamp of the current second (monotonic ms)
        self.flush_scheduled = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reading = False
        self._holding = False  # events wait in the driver for a round paced by the store (see paced)

    def transport_stats(self) -> dict[str, int]:
        try:
            stats = self.driver.stats
        except RuntimeError:  # stopped
            return super().transport_stats()
        return {
            "connections": stats["connections"],
            "slow_consumers": stats["slow_consumers"],
            "frames_out": stats["frames_out"],
        }

    async def listen(self, kind: str, host: str, port: int) -> int:
        """Bind a listener; connections are accepted at once, their events taken once :meth:`start` ran."""
        _, bound = self.driver.listen(kind, host, port)
        return bound

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self.driver.fileno(), self._on_events)
        self._reading = True
        self._on_events()  # connections accepted before start

    async def stop(self) -> None:
        """Close every connection with 1001 (queued frames first), stop the I/O thread, end every session."""
        loop = asyncio.get_running_loop()
        if self._reading:
            loop.remove_reader(self.driver.fileno())
            self._reading = False
        self.flush()
        # Blocks this thread (not the GIL) while the I/O thread sends the close frames: at most 2 s.
        self.driver.stop()
        for conn in list(self.conns.values()):
            self._closed(conn)

    def paced(self, pace: Pace) -> Pace:
        """While a round waits for the store's commit, the events stay in the driver: the first to arrive wakes
        this thread once, only to quiet the wake-up (``driver.quiet``: the I/O thread stays armed and wakes it
        no more until they are taken), and the round takes them first, so what arrived meanwhile joins it. The
        reader stays on throughout (turning it off and on cost two ``epoll_ctl`` calls per paced round)."""

        def pace_round(round_: Callable[[], None]) -> bool:
            def round_with_events() -> None:
                self._take_held()
                round_()

            waits = pace(round_with_events)
            if waits and self._reading:
                self._holding = True
            return waits

        return pace_round

    def _take_held(self) -> None:
        if self._holding:
            self._holding = False
            if self.driver.running:
                self._on_events()

    def tick(self) -> None:
        """With a test clock: move the driver's timers to clock() now."""
        if self.clock is not None:
            self.command(self.driver.advance, self.clock())

    # commands

    def send_many(self, conns: list[Conn], out: Outgoing) -> None:
        """A fan-out in one call: the I/O thread queues the one frame for each connection."""
        self.driver.send_many([conn.id for conn in conns], out)
        if not self.flush_scheduled:
            self.schedule_flush()

    def command(self, fn: Callable[..., None], *args: Any) -> None:
        fn(*args)
        if not self.flush_scheduled:
            self.schedule_flush()

    def schedule_flush(self) -> None:
        self.flush_scheduled = True
        loop = self._loop or asyncio.get_running_loop()
        loop.call_soon(self.flush)

    def flush(self) -> None:
        self.flush_scheduled = False
        if self.driver.running:
            self.driver.flush()

    # events

    def _on_events(self) -> None:
        if self._holding:  # a paced round takes the events (see paced)
            if self.driver.running:
                self.driver.quiet()
            return
        conns = self.conns
        submit = self.dispatcher.submit
        # Activity stamps are for app/info (liveness is the I/O thread's): to the second, one int object for
        # every connection stamped within it rather than one each (memory per connection).
        now = monotonic_ms()
        if now - self.stamp >= STAMP_MS:
            self.stamp = now
        stamp = self.stamp
        for kind, conn_id, payload in self.driver.drain():
            if kind == EVENT_MESSAGES:
                conn = conns.get(conn_id)
                if conn is not None:
                    conn.last_recv = stamp
                    submit(conn, payload)
            elif kind == EVENT_OPENED:
                transport, wire, peer = payload
                conn = conns[conn_id] = NativeConn(self, conn_id, transport, wire, peer, stamp)
                event(log, logging.DEBUG, "connection opened", conn=conn_id, kind=transport, peer=peer)
                self.hello(conn)
            elif kind == EVENT_CLOSED:
                conn = conns.get(conn_id)
                if conn is not None:
                    self._closed(conn)
            elif kind == EVENT_DRAINED:
                conn = conns.get(conn_id)
                if conn is not None:
                    conn.drain_done()

    def _closed(self, conn: NativeConn) -> None:
        if self.conns.pop(conn.id, None) is None:
            return
        conn.closed = True
        conn.drain_done()
        self.gone(conn)
