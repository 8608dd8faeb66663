"""The gateway: the connection registry every driver shares, and the asyncio driver's listeners and
liveness (driven by the Rust timing wheel). The native driver's gateway is glide.gateway.native."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from glide._native import Outgoing, TimingWheel
from glide.gateway.asyncio_driver import ClientProtocol
from glide.gateway.hub import LocalHub, send_each
from glide.logs import event

if TYPE_CHECKING:
    from glide.config import Config
    from glide.dispatch import Dispatcher, Pace
    from glide.gateway.conn import Conn

log = logging.getLogger("glide.gateway")
TICK_MS = 100
CLOSE_GOING_AWAY = 1001
HEARTBEAT = Outgoing("heartbeat")


def monotonic_ms() -> int:
    return time.monotonic_ns() // 1_000_000


class GatewayBase:
    """What every driver's gateway shares: the session hub, the dispatcher, the hello, and what happens when a
    connection opens or goes away."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.hub = LocalHub(self.send_many)
        self.dispatcher: Dispatcher
        self.hello_data = {"server_version": "glide", "heartbeat_interval": config.heartbeat_interval_s}

    def send_many(self, conns: list[Conn], out: Outgoing) -> None:
        """``out`` to each of ``conns`` (a fan-out); a driver may do it in one call."""
        send_each(conns, out)

    def paced(self, pace: Pace) -> Pace:
        """The dispatcher's pacing of rounds (the store's ``pace``) as this driver needs it."""
        return pace

    def transport_stats(self) -> dict[str, int]:
        """``connections`` open now, ``slow_consumers`` dropped and ``frames_out`` sent since start (for the
        metrics)."""
        return {"connections": 0, "slow_consumers": 0, "frames_out": 0}

    @property
    def now_ms(self) -> int:
        """The gateway's monotonic clock (ms): what connection times are stamped with."""
        return monotonic_ms()

    def hello(self, conn: Conn) -> None:
        data = dict(self.hello_data, temp_id=f"tmp@{uuid.uuid4()}")
        conn.send(Outgoing("hello", data))

    def gone(self, conn: Conn) -> None:
        """The connection is closed: its session (if it still is the registered one) ends."""
        event(log, logging.DEBUG, "connection closed", conn=conn.id, uid=conn.uid, device=conn.device)
        if conn.authenticated and self.hub.unbind(conn):
            self.dispatcher.session_ended(conn)


class Gateway(GatewayBase):
    """The asyncio driver's gateway: owns every client connection of this process and decides when an idle
    one is dead.

    One timer per connection sits in the wheel; activity only stamps ``last_recv`` / ``last_sent`` and the
    timer re-computes its deadline lazily when it fires, so a busy connection costs no timer operations.
    """

    def __init__(self, config: Config, *, clock: Callable[[], int] = monotonic_ms) -> None:
        super().__init__(config)
        self.clock = clock
        self._now_ms = clock()
        self.wheel = TimingWheel(TICK_MS, self._now_ms)
        self.conns: dict[int, ClientProtocol] = {}
        self.slow_consumers = 0
        self.frames_out = 0
        self.writes = 0  # socket writes of frames: fewer than frames_out when a tick gave a connection several
        # Connections given frames since the last flush (each written once, at the end of the loop iteration).
        self.dirty: list[ClientProtocol] = []
        self.flush_scheduled = False
        self._ids = itertools.count(1)
        self._servers: list[asyncio.Server] = []
        self._ticker: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # held from start() (get_running_loop: a getpid)
        self.hb_ms = config.heartbeat_interval_s * 1000
        self.auth_timeout_ms = int(config.auth_timeout_s * 1000)
        self._ssl = config.ssl_context()  # every listener: wss, TLS over TCP

    # listeners

    def transport_stats(self) -> dict[str, int]:
        return {"connections": len(self.conns), "slow_consumers": self.slow_consumers, "frames_out": self.frames_out}

    def schedule_flush(self) -> None:
        self.flush_scheduled = True
        (self._loop or asyncio.get_running_loop()).call_soon(self.flush)

    def flush(self) -> None:
        """Write every connection's frames of this tick, one write each."""
        self.flush_scheduled = False
        dirty, self.dirty = self.dirty, []
        for conn in dirty:
            conn.flush()

    async def listen(self, kind: str, host: str, port: int) -> int:
        """Bind a listener (accepting starts with :meth:`start`); the bound port."""
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: ClientProtocol(self, kind), host, port, backlog=4096, start_serving=False, ssl=self._ssl
        )
        self._servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        """Start accepting on every bound listener and ticking the wheel."""
        for server in self._servers:
            await server.start_serving()
        self._loop = asyncio.get_running_loop()
        self._ticker = self._loop.create_task(self._tick_forever())

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(TICK_MS / 1000)
            self.tick()

    async def stop(self) -> None:
        """Stop accepting, then close every connection with 1001 and let the writes flush."""
        for server in self._servers:
            server.close()
        if self._ticker is not None:
            self._ticker.cancel()
        for conn in list(self.conns.values()):
            conn.close(CLOSE_GOING_AWAY, "server shutting down")
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()

    # connection lifecycle (called by the driver)

    def connection_made(self, conn: ClientProtocol) -> None:
        conn.id = next(self._ids)
        conn.opened_at = conn.last_recv = conn.last_sent = self.now_ms
        self.conns[conn.id] = conn
        event(log, logging.DEBUG, "connection opened", conn=conn.id, kind=conn.kind, peer=conn.peer)
        self.wheel.insert(conn.id, self.now_ms + min(self.auth_timeout_ms, self.hb_ms))

    def connection_opened(self, conn: ClientProtocol) -> None:
        self.hello(conn)

    def connection_lost(self, conn: ClientProtocol) -> None:
        if self.conns.pop(conn.id, None) is None:
            return
        self.wheel.cancel(conn.id)
        self.gone(conn)

    # liveness

    @property
    def now_ms(self) -> int:
        """The clock as of the last tick (stamping activity reads no clock)."""
        return self._now_ms

    def tick(self) -> None:
        """Advance the clock and the wheel once; handle every connection whose timer expired."""
        now = self._now_ms = self.clock()
        for conn_id in self.wheel.advance(now):
            conn = self.conns.get(conn_id)
            if conn is not None and not conn.closed:
                self._check(conn, now)

    def _check(self, conn: ClientProtocol, now: int) -> None:
        if not conn.authenticated and now - conn.opened_at >= self.auth_timeout_ms:
            event(log, logging.INFO, "authentication timeout", conn=conn.id, peer=conn.peer)
            conn.close(1008, "authentication timeout")
            return
        hb = self.hb_ms
        silent = now - conn.last_recv
        # GlideIM closes a client silent for more than `heartbeat_lost_limit` windows (4 x 30 s).
        if silent >= hb * (self.config.heartbeat_lost_limit + 1):
            event(log, logging.INFO, "heartbeat timeout", conn=conn.id, uid=conn.uid, device=conn.device)
            conn.close(1000, "heartbeat timeout")
            return
        if now - conn.last_sent >= hb:
            conn.send(HEARTBEAT)
            conn.last_sent = now
        deadline = min(conn.last_recv + hb * ((silent // hb) + 1), conn.last_sent + hb)
        if not conn.authenticated:
            deadline = min(deadline, conn.opened_at + self.auth_timeout_ms)
        self.wheel.insert(conn.id, max(deadline, now + TICK_MS))
