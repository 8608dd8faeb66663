"""The Redis side of a cluster: where each session is (the route table), which nodes are alive, and the
channels nodes talk over. Redis is a fast path, not the truth: everything here can be rebuilt by the nodes
(they re-announce their sessions after Redis comes back) and a delivery lost with it is in the store.

Keys (``glide:`` prefix):

- ``glide:r:{uid}`` HASH device -> ``"{node}:{conn_id}"``, expiring ROUTE_TTL_S after the owning node last
  refreshed it (nodes refresh their users in pipelined batches every ROUTE_REFRESH_S)
- ``glide:nodes`` ZSET node id -> expiry (Unix ms), refreshed every NODE_BEAT_S: routes of a node whose
  expiry passed are ignored (a node writes its first beat before it serves anyone)
- ``glide:alive:{node}``: the node's token, expiring with its beat; missing at a beat means Redis lost its
  data (a restart) and the node announces every session again
- channels ``glide:n:{node}`` (one per node) and ``glide:all`` (every node)

Scripts go with EVAL, not EVALSHA: a script's text costs Redis only a hash of it, and EVAL needs no fallback
for a Redis that restarted without the script. The round and releases go on the flusher's lean connection
(glide.cluster.resp); everything else here through redis-py, pipelined.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import redis.asyncio as aioredis

from glide.cluster.resp import Command
from glide.ids import wall_ms

PREFIX = "glide:"
NODES = PREFIX + "nodes"
ALL = PREFIX + "all"
ROUTE_TTL_S = 120
ROUTE_REFRESH_S = 30
NODE_BEAT_S = 1.0
NODE_TTL_MS = 5_000

Route = tuple[int, int]  # (node, conn id)

# Take (uid, device) for this connection; returns what it replaces: [device, value, ...] (every device of
# the user with single_device, else that device's).
_CLAIM = """
local old
if ARGV[3] == '1' then
  old = redis.call('HGETALL', KEYS[1])
  redis.call('DEL', KEYS[1])
else
  local v = redis.call('HGET', KEYS[1], ARGV[1])
  if v then old = {ARGV[1], v} else old = {} end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return old
"""
# Give (uid, device) up, unless a newer login already took it.
_RELEASE = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then return redis.call('HDEL', KEYS[1], ARGV[1]) end
return 0
"""
# One round of a node's cross-node traffic, in one round trip: look up the routes of KEYS (users whose
# sessions must be read after a store commit) and publish to each channel one message, its segments in the
# order given. ARGV[1]: this node; then pairs (target, segment): "k<i>" goes to every other node holding a
# session of KEYS[i], "n<node>" to that node, "a" to every node. Returns each key's HGETALL, for the cache.
_ROUND = """
local me = ARGV[1]
local found = {}
for i = 1, #KEYS do found[i] = redis.call('HGETALL', KEYS[i]) end
local parts, order = {}, {}
local function add(channel, segment)
  local p = parts[channel]
  if not p then p = {}; parts[channel] = p; order[#order + 1] = channel end
  p[#p + 1] = segment
end
for j = 2, #ARGV, 2 do
  local target, segment = ARGV[j], ARGV[j + 1]
  local kind = string.sub(target, 1, 1)
  if kind == 'k' then
    local routes, seen = found[tonumber(string.sub(target, 2))], {}
    for r = 2, #routes, 2 do
      local node = string.match(routes[r], '^(%d+):')
      if node and node ~= me and not seen[node] then
        seen[node] = true
        add('$NODE' .. node, segment)
      end
    end
  elseif kind == 'n' then
    add('$NODE' .. string.sub(target, 2), segment)
  else
    add('$ALL', segment)
  end
end
for _, channel in ipairs(order) do redis.call('PUBLISH', channel, table.concat(parts[channel])) end
return found
""".replace("$NODE", PREFIX + "n:").replace("$ALL", ALL)


def route_key(uid: int) -> str:
    return f"{PREFIX}r:{uid}"


def node_channel(node: int) -> str:
    return f"{PREFIX}n:{node}"


def route_value(node: int, conn_id: int) -> str:
    return f"{node}:{conn_id}"


def parse_route(value: bytes | str) -> Route | None:
    text = value.decode() if isinstance(value, bytes) else value
    node, _, conn = text.partition(":")
    try:
        return int(node), int(conn)
    except ValueError:
        return None


def routes_of(pairs: Iterable[tuple[bytes, bytes]]) -> dict[str, Route]:
    """A user's sessions from its route hash's (device, value) pairs."""
    routes: dict[str, Route] = {}
    for device, value in pairs:
        route = parse_route(value)
        if route is not None:
            routes[device.decode()] = route
    return routes


def pairs(flat: Sequence[bytes]) -> Iterable[tuple[bytes, bytes]]:
    """HGETALL as a script returns it (``[field, value, …]``) as pairs."""
    return zip(flat[::2], flat[1::2], strict=True)


class Routes:
    """Route-table and node-liveness commands, each one pipelined round trip."""

    def __init__(self, client: aioredis.Redis, node: int) -> None:
        self.client = client
        self.node = node
        self.token = f"{node}:{wall_ms()}"

    async def claim(
        self, uid: int, device: str, conn_id: int, *, single_device: bool, invalidate: bytes
    ) -> list[tuple[str, Route]]:
        """Take the session's route and tell every node the user's routes changed; returns the sessions it
        replaced elsewhere ``[(device, (node, conn_id))]``."""
        async with self.client.pipeline(transaction=False) as pipe:
            value = route_value(self.node, conn_id)
            pipe.eval(_CLAIM, 1, route_key(uid), device, value, "1" if single_device else "0", ROUTE_TTL_S)
            pipe.publish(ALL, invalidate)
            old, _ = await pipe.execute()
        replaced: list[tuple[str, Route]] = []
        for i in range(0, len(old), 2):
            route = parse_route(old[i + 1])
            if route is not None and route != (self.node, conn_id):
                replaced.append((old[i].decode(), route))
        return replaced

    def release(self, uid: int, device: str, conn_id: int) -> Command:
        """The command giving the route up (a newer login's route stays)."""
        return ("EVAL", _RELEASE, 1, route_key(uid), device, route_value(self.node, conn_id))

    def round(self, uids: Sequence[int], targets: Sequence[bytes | str]) -> Command:
        """One round's command (``ROUND``): its reply has each of ``uids``' routes, for :func:`routes_of`.
        ``targets``: the pairs (target, segment) after ARGV[1]."""
        return ("EVAL", _ROUND, len(uids), *[route_key(uid) for uid in uids], self.node, *targets)

    async def lookup(self, uids: Sequence[int]) -> list[dict[str, Route]]:
        """Every user's routes, as Redis has them now (stale ones included: callers check the node)."""
        async with self.client.pipeline(transaction=False) as pipe:
            for uid in uids:
                pipe.hgetall(route_key(uid))
            rows = await pipe.execute()
        return [routes_of(row.items()) for row in rows]

    async def announce_all(self, sessions: Iterable[tuple[int, str, int]]) -> None:
        """Write the routes of every local session (after Redis lost them)."""
        async with self.client.pipeline(transaction=False) as pipe:
            for uid, device, conn_id in sessions:
                pipe.hset(route_key(uid), device, route_value(self.node, conn_id))
                pipe.expire(route_key(uid), ROUTE_TTL_S)
            await pipe.execute()

    async def refresh(self, uids: Iterable[int]) -> None:
        async with self.client.pipeline(transaction=False) as pipe:
            for uid in uids:
                pipe.expire(route_key(uid), ROUTE_TTL_S)
            await pipe.execute()

    async def beat(self) -> tuple[bool, set[int]]:
        """Say this node is alive; returns (whether Redis still had our mark, the nodes that stopped saying
        so). A node that stopped is forgotten only once every route it wrote has expired."""
        now = wall_ms()
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.set(f"{PREFIX}alive:{self.node}", self.token, px=NODE_TTL_MS, get=True)
            pipe.zadd(NODES, {str(self.node): now + NODE_TTL_MS})
            pipe.zremrangebyscore(NODES, "-inf", now - ROUTE_TTL_S * 1000)
            pipe.zrangebyscore(NODES, "-inf", now)
            previous, _, _, dead = await pipe.execute()
        return previous is not None, {int(n) for n in dead}

    async def leave(self) -> None:
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.zrem(NODES, str(self.node))
            pipe.delete(f"{PREFIX}alive:{self.node}")
            await pipe.execute()
