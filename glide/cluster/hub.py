"""The hub of a node in a cluster: this node's sessions (LocalHub) plus the others', through Redis.

Deliveries to this node's sessions go out at once, as on a single node. What must reach other nodes is
queued and sent by one flusher task, a round at a time, in one round trip to Redis: the route releases and
one script (routes.ROUND) that reads the routes of the round's 1:1 receivers and publishes one message per
destination node carrying every item of the round for it, in order (users missing from the route cache
cost one lookup before it). One flusher keeps rounds in order, so per-sender order holds across nodes;
under load a round carries a whole tick's deliveries.

Correctness does not depend on Redis (it is a fast path; the store is the truth):

- a login takes its route in Redis *before* its inbox replay reads the store, and a 1:1 delivery looks the
  receiver's routes up in Redis (not in a cache) *after* the store commit, so a message is in the replay,
  or pushed live, or both; a device records what it was sent lately (``RecentMids``), so it never gets one
  twice, and a push that comes while the replay runs waits for it, so per-sender order holds too;
- group fan-out reads routes from a cache that nodes invalidate when a user's sessions change (a member
  that moved just then misses a push and sees a gap in the group's seq, which the client fills);
- when Redis comes back after losing its data, or this node's subscription, every node writes its routes
  again and its sessions read their inboxes once more for what was pushed while the bus was down; when a
  node dies, the others' sessions do the same (what it stored and had not pushed yet).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from glide._native import Outgoing
from glide.cluster.resp import Command, Commands
from glide.cluster.routes import (
    ALL,
    NODE_BEAT_S,
    ROUTE_REFRESH_S,
    Route,
    Routes,
    node_channel,
    pairs,
    routes_of,
)
from glide.cluster.subscription import Subscription
from glide.cluster.wire import Batch, decode, outgoing_from
from glide.gateway.conn import Conn, RecentMids, hold
from glide.gateway.hub import KICKED_OUT, LocalHub, SendMany, send_each
from glide.ids import mid_time_ms, wall_ms
from glide.logs import event

log = logging.getLogger("glide.cluster")
ANNOUNCE_TIMEOUT_S = 2.0  # a login does not wait longer for Redis (its route is written again later)
RETRY_S = 1.0  # between attempts to reach Redis again
LATE_S = 60  # a cross-node push of a 1:1 message older than this is dropped (the inbox has it)
CACHE_LIMIT = 1_000_000  # cached users' routes, at most (the cache starts over beyond)
REDIS_TIMEOUT_S = 5.0  # a command not answered in this long fails (and its connection is dropped)
FAILURES = (RedisError, OSError, asyncio.TimeoutError)


@dataclass(slots=True)
class _Delivery:
    uids: list[int]
    out: Outgoing
    mid: int = 0
    if_nobody: Callable[[], None] | None = None
    fresh: bool = False  # look the routes up in Redis, not in the cache


@dataclass(slots=True)
class _Control:
    node: int
    item: list[Any]
    out: Outgoing | None = None


@dataclass(slots=True)
class _Release:
    uid: int
    device: str
    conn_id: int


@dataclass(slots=True)
class _Close:
    uid: int
    device: str | None  # None: every session of uid
    code: int
    reason: str


_Op = _Delivery | _Control | _Release | _Close


class ClusterHub(LocalHub):
    """One node's hub in a cluster sharing one Redis (``redis_url``)."""

    __slots__ = (
        "_cache",
        "_commands",
        "_epoch",
        "_lost",
        "_ops",
        "_running",
        "_tasks",
        "_touched",
        "_wake",
        "catch_up",
        "client",
        "dead",
        "node",
        "received",
        "rounds",
        "routes",
        "spawn",
        "url",
    )

    def __init__(
        self, redis_url: str, node: int, *, spawn: Callable[[Awaitable[Any]], None], send_many: SendMany = send_each
    ) -> None:
        super().__init__(send_many)
        self.node = node
        self.spawn = spawn
        self.url = redis_url
        self.client: aioredis.Redis = aioredis.Redis.from_url(
            redis_url, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S, health_check_interval=10
        )
        self._commands: Commands | None = None  # the flusher's connection (glide.cluster.resp)
        self.routes = Routes(self.client, node)
        self.dead: set[int] = set()  # nodes that stopped beating: their routes are stale
        self.rounds = 0  # the flusher's round trips to Redis (glide_cluster_rounds)
        self.received = 0  # messages from other nodes (glide_cluster_messages_received)
        # Which sessions other nodes hold, per user (an empty dict: none); dropped when a node says the
        # user's routes changed. A lookup made across an invalidation is not cached (``_touched``).
        self._cache: dict[int, dict[str, Route]] = {}
        self._touched: dict[int, int] = {}
        self._epoch = 0
        self._ops: list[_Op] = []
        self._wake = asyncio.Event()
        self._lost = True  # Redis may not have our routes: write them at the next beat
        self._running = False
        self._tasks: list[asyncio.Task[None]] = []
        # The chat feature's second inbox pass (ChatActions.catch_up), set when the server wires it.
        self.catch_up: Callable[[Conn], Awaitable[None]] | None = None

    # lifecycle

    async def start(self) -> None:
        self._running = True
        await self._beat()  # fails loudly if Redis is not there at start
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._flusher()),
            loop.create_task(self._listener()),
            loop.create_task(self._beater()),
            loop.create_task(self._refresher()),
        ]

    async def close(self) -> None:
        self._running = False
        self._wake.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(*FAILURES):
            await asyncio.wait_for(self.routes.leave(), ANNOUNCE_TIMEOUT_S)
        if self._commands is not None:
            self._commands.close()
        await self.client.aclose()

    # sessions

    async def announce(self, conn: Conn, *, single_device: bool = False, kickout: Outgoing | None = None) -> None:
        conn.seen = RecentMids(wall_ms())
        uid = conn.uid
        self._invalidate((uid,))
        invalidate = Batch(self.node, [["i", [uid]]]).encode()
        try:
            replaced = await asyncio.wait_for(
                self.routes.claim(uid, conn.device, conn.id, single_device=single_device, invalidate=invalidate),
                ANNOUNCE_TIMEOUT_S,
            )
        except FAILURES as e:
            self._lost = True
            event(log, logging.WARNING, "route not written (Redis unreachable)", uid=uid, error=repr(e))
            return
        for device, (node, conn_id) in replaced:
            if node != self.node and node not in self.dead and kickout is not None:
                self._queue(_Control(node, ["k", uid, device, conn_id], kickout))

    def unbind(self, conn: Conn) -> bool:
        if not super().unbind(conn):
            return False
        self._queue(_Release(conn.uid, conn.device, conn.id))
        return True

    def close_session(self, uid: int, device: str | None, code: int, reason: str) -> bool:
        here = super().close_session(uid, device, code, reason)
        if not here or device is None:  # a device is in one place; a whole user may be on every node
            self._queue(_Close(uid, device, code, reason))
        return here

    async def online(self, uids: Iterable[int]) -> set[int]:
        wanted = list(dict.fromkeys(uids))
        here = {uid for uid in wanted if self.is_online(uid)}
        others = [uid for uid in wanted if uid not in here]
        if not others:
            return here
        try:
            found = await asyncio.wait_for(self.routes.lookup(others), ANNOUNCE_TIMEOUT_S)
        except FAILURES:
            return here  # presence is best effort without Redis
        return here | {uid for uid, routes in zip(others, found, strict=True) if self._elsewhere(routes)}

    # deliveries

    def forward(self, uid: int, out: Outgoing, mid: int, if_nobody: Callable[[], None] | None) -> None:
        self._queue(_Delivery([uid], out, mid, if_nobody, fresh=True))

    def forward_many(self, uids: list[int], out: Outgoing) -> None:
        if uids:
            self._queue(_Delivery(uids, out))

    def forward_all(self, out: Outgoing) -> None:
        self._queue(_Control(-1, ["b"], out))

    # the flusher: one round at a time

    def _queue(self, op: _Op) -> None:
        self._ops.append(op)
        if not self._wake.is_set():
            self._wake.set()

    async def _flusher(self) -> None:
        while self._running:
            await self._wake.wait()
            self._wake.clear()
            ops, self._ops = self._ops, []
            if not ops:
                continue
            try:
                await self._round(ops)
            except FAILURES as e:
                self._lost = True
                event(log, logging.WARNING, "cross-node round lost (Redis unreachable)", ops=len(ops), error=repr(e))
            except Exception:
                log.exception("cross-node round failed")

    async def _round(self, ops: list[_Op]) -> None:
        """One round trip in the steady state: the releases and one ROUND script, which reads the routes of
        the ``fresh`` deliveries' users and publishes every node's message (segments in the order of ``ops``,
        so per-sender order holds). Only users missing from the cache (and closes) cost a lookup first."""
        routes = await self._resolve(ops)
        fresh: dict[int, int] = {}  # uid -> its key's index in the script (from 1)
        fresh_ops: list[_Delivery] = []
        targets: list[bytes | str] = []
        releases: list[_Release] = []
        invalidated: list[int] = []
        for op in ops:
            if isinstance(op, _Delivery):
                if op.fresh:
                    for uid in op.uids:
                        targets += (f"k{fresh.setdefault(uid, len(fresh) + 1)}", self._segment(op, [uid]))
                    fresh_ops.append(op)
                    continue
                by_node: dict[int, list[int]] = {}
                for uid in op.uids:
                    for node in self._nodes_of(routes.get(uid)):
                        by_node.setdefault(node, []).append(uid)
                for node, uids in by_node.items():
                    targets += (f"n{node}", self._segment(op, uids))
                if not by_node and op.if_nobody is not None:
                    op.if_nobody()
            elif isinstance(op, _Control):
                b = Batch(self.node)
                b.items.append([*op.item, b.frame(op.out)] if op.out is not None else op.item)
                targets += ("a" if op.node < 0 else f"n{op.node}", b.encode())
            elif isinstance(op, _Close):
                for node in self._nodes_of(routes.get(op.uid), device=op.device):
                    targets += (f"n{node}", Batch(self.node, [["c", op.uid, op.device, op.code, op.reason]]).encode())
            else:
                releases.append(op)
                invalidated.append(op.uid)
        if invalidated:
            targets += ("a", Batch(self.node, [["i", invalidated]]).encode())
        if not targets and not releases:
            return
        epoch = self._epoch
        commands = [self.routes.release(r.uid, r.device, r.conn_id) for r in releases]
        if targets:
            commands.append(self.routes.round(list(fresh), targets))
        results = await self._call(commands)
        if not fresh:
            return
        for uid, flat in zip(fresh, results[-1], strict=True):
            routes[uid] = self._remember(uid, routes_of(pairs(flat)), epoch)
        for op in fresh_ops:
            if op.if_nobody is not None and not any(self._nodes_of(routes.get(uid)) for uid in op.uids):
                op.if_nobody()

    async def _call(self, commands: list[Command]) -> list[Any]:
        """The replies of ``commands`` on the flusher's connection (opened again after a failure); the first
        refusal is raised, as a redis-py pipeline does."""
        conn = self._commands
        if conn is None or conn.closed:
            conn = self._commands = await Commands.open(self.url, timeout=REDIS_TIMEOUT_S)
        self.rounds += 1
        try:
            async with asyncio.timeout(REDIS_TIMEOUT_S):
                results = await conn.call(commands)
        except TimeoutError:
            conn.close()
            raise
        for result in results:
            if isinstance(result, RedisError):
                raise result
        return results

    def _segment(self, op: _Delivery, uids: list[int]) -> bytes:
        """The segment delivering ``op`` to ``uids``."""
        b = Batch(self.node)
        b.items.append(["d", uids, op.mid, b.frame(op.out)])
        return b.encode()

    async def _resolve(self, ops: list[_Op]) -> dict[int, dict[str, Route]]:
        """The routes of the users that non-``fresh`` deliveries and closes go to: from the cache, or (missing
        there) fetched in one round trip and cached unless an invalidation came in meanwhile."""
        routes: dict[int, dict[str, Route]] = {}
        wanted: dict[int, None] = {}
        cache = self._cache
        for op in ops:
            if isinstance(op, _Delivery):
                if op.fresh:
                    continue
                for uid in op.uids:
                    cached = cache.get(uid)
                    if cached is None:
                        wanted[uid] = None
                    else:
                        routes[uid] = cached
            elif isinstance(op, _Close):
                wanted[op.uid] = None
        if not wanted:
            return routes
        epoch = self._epoch
        uids = list(wanted)
        found = await self.routes.lookup(uids)
        for uid, fetched in zip(uids, found, strict=True):
            routes[uid] = self._remember(uid, fetched, epoch)
        return routes

    def _remember(self, uid: int, fetched: dict[str, Route], epoch: int) -> dict[str, Route]:
        """The user's sessions on other nodes, cached unless its routes changed since ``epoch``."""
        mine = {d: r for d, r in fetched.items() if r[0] != self.node}
        if self._touched.get(uid, -1) <= epoch:
            if len(self._cache) >= CACHE_LIMIT:
                self._cache.clear()
            self._cache[uid] = mine
        return mine

    def _nodes_of(self, routes: dict[str, Route] | None, *, device: str | None = None) -> set[int]:
        if not routes:
            return set()
        dead = self.dead
        return {
            node
            for d, (node, _) in routes.items()
            if node != self.node and node not in dead and (device is None or d == device)
        }

    def _elsewhere(self, routes: dict[str, Route]) -> bool:
        return bool(self._nodes_of(routes))

    def _invalidate(self, uids: Iterable[int] | None) -> None:
        self._epoch += 1
        if uids is None:
            self._cache.clear()
            self._touched.clear()
            return
        if len(self._touched) > CACHE_LIMIT:
            self._touched.clear()
            self._cache.clear()
        for uid in uids:
            self._cache.pop(uid, None)
            self._touched[uid] = self._epoch

    # receiving

    async def _listener(self) -> None:
        while self._running:
            sub: Subscription | None = None
            try:
                channels = (node_channel(self.node), ALL)
                sub = await Subscription.open(self.url, channels, self._on_message, timeout=ANNOUNCE_TIMEOUT_S)
                self._lost = True  # what was published while we were not listening: rebuild, catch up
                await sub.wait_lost()
            except FAILURES as e:
                event(log, logging.WARNING, "Redis subscription lost", error=repr(e))
            finally:
                if sub is not None:
                    sub.close()
            if self._running:
                await asyncio.sleep(RETRY_S)

    def _on_message(self, payload: bytes) -> None:
        self.received += 1
        try:
            segments = decode(payload)
        except (ValueError, TypeError) as e:
            event(log, logging.WARNING, "bad cross-node message", error=str(e))
            return
        for origin, items, frames in segments:
            if origin != self.node:
                self._on_segment(items, frames)

    def _on_segment(self, items: list[list[Any]], frames: list[bytes]) -> None:
        outs: dict[int, Outgoing] = {}

        def out(index: int) -> Outgoing:
            o = outs.get(index)
            if o is None:
                o = outs[index] = outgoing_from(frames[index])
            return o

        for item in items:
            try:
                self._apply(item, out)
            except (ValueError, TypeError, IndexError, KeyError) as e:
                event(log, logging.WARNING, "bad cross-node item", error=repr(e))

    def _apply(self, item: list[Any], out: Callable[[int], Outgoing]) -> None:
        kind = item[0]
        if kind == "d":
            _, uids, mid, index = item
            frame = out(index)
            for uid in uids:
                self._deliver_remote(uid, frame, mid)
        elif kind == "k":
            _, uid, device, conn_id, index = item
            conn = self.session(uid, device)
            if conn is not None and conn.id == conn_id:
                event(log, logging.INFO, "kicked out by a login on another node", conn=conn.id, uid=uid, device=device)
                LocalHub.unbind(self, conn)
                conn.send(out(index))
                conn.authenticated = False
                conn.close(KICKED_OUT, "kicked out by a newer login")
        elif kind == "c":
            _, uid, device, code, reason = item
            LocalHub.close_session(self, uid, device, code, reason)
        elif kind == "b":
            self.broadcast_here(out(item[1]))
        elif kind == "i":
            self._invalidate(item[1])

    def _deliver_remote(self, uid: int, out: Outgoing, mid: int) -> int:
        """A push from another node; a 1:1 message a device already got, or one too old, is dropped."""
        if not mid:
            return self.deliver_here(uid, out)
        devices = self.devices(uid)
        if not devices:
            return 0
        late = wall_ms() - mid_time_ms(mid) > LATE_S * 1000
        sent = 0
        for conn in devices:
            if conn.closed:
                continue
            sent += 1
            seen = conn.seen
            if late or (seen is not None and seen.got(mid, out)):
                continue
            if conn.syncing:
                hold(conn, mid, out)
                continue
            if seen is not None:
                seen.add(mid, out)
            conn.send(out)
        return sent

    # upkeep

    async def _beater(self) -> None:
        while self._running:
            await asyncio.sleep(NODE_BEAT_S)
            try:
                await self._beat()
            except FAILURES as e:
                event(log, logging.WARNING, "Redis unreachable", error=repr(e))

    async def _beat(self) -> None:
        kept, dead = await self.routes.beat()
        dead.discard(self.node)
        died = dead - self.dead
        self.dead = dead
        if not kept or self._lost:
            # Redis lost its data, or we may have missed messages: write our routes again, tell the others to
            # drop their caches, and let our sessions read what they may have missed.
            sessions = [(c.uid, c.device, c.id) for c in self.all() if c.authenticated]
            await self.routes.announce_all(sessions)
            await self.client.publish(ALL, Batch(self.node, [["i", None]]).encode())
            self._lost = False
            self._catch_up_all()
        elif died:
            # A node died: what it stored and had not pushed yet is only in the inboxes.
            event(log, logging.WARNING, "nodes stopped", nodes=sorted(died))
            self._catch_up_all()

    def _catch_up_all(self) -> None:
        if self.catch_up is not None:
            for conn in self.all():
                if conn.seen is not None and not conn.syncing:
                    self.spawn(self.catch_up(conn))

    async def _refresher(self) -> None:
        while self._running:
            await asyncio.sleep(ROUTE_REFRESH_S)
            uids = list(self._sessions)
            try:
                for i in range(0, len(uids), 1000):
                    await self.routes.refresh(uids[i : i + 1000])
            except FAILURES as e:
                event(log, logging.WARNING, "routes not refreshed (Redis unreachable)", error=repr(e))
