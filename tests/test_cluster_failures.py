"""A cluster of three ``glide serve`` processes on one PostgreSQL and one Redis, under a chat load, through
the failures it must survive: a node killed with ``kill -9`` (its users reconnect to the others and get
every acknowledged message), Redis restarted (its data gone: the nodes write their routes again and push
what was missed), and PostgreSQL gone for a moment (errors, never a wrong answer). Every acknowledged message
reaches its receiver and no socket gets one twice; without a failure each sender's messages also arrive in
order (after one, what the failure held back arrives late: its mid tells the client where it belongs)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from cluster_load import ChatLoad, LoadUser
from cluster_support import RedisServer
from serve_process import ServeProcess

from glide.store.postgres.nodes import NODE_LOCK

NODES = 3
# The node-id locks of this database only: pg_locks covers the whole server (other tests' databases too) and
# also lists the transaction locks a batch takes on the keys it writes.
NODE_LOCKS_HELD = (
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = $1 "
    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)
USERS = 18
SECRETS = ("--jwt-secret", "j" * 48, "--secret-key", "k" * 48, "--admin-token", "a" * 48)


class ProcessCluster:
    def __init__(self, tmp_path: Path, store: str, redis_url: str) -> None:
        limits = ("--signin-per-minute", "0", "--guests-per-minute", "0")
        args = ("--store", store, "--redis", redis_url, *SECRETS, *limits, "--log-level", "warning")
        self.nodes = [ServeProcess(tmp_path / f"node{i}", *args) for i in range(NODES)]
        self.alive = [True] * NODES

    def urls(self) -> list[str]:
        return [n.ws_url for n, alive in zip(self.nodes, self.alive, strict=True) if alive]

    def users(self) -> list[LoadUser]:
        out = []
        for i in range(USERS):
            node = self.nodes[i % NODES]
            r = httpx.post(f"http://127.0.0.1:{node.http_port}/api/auth/guest", json={}, timeout=10)
            data = r.json()["Data"]
            out.append(LoadUser(data["uid"], data["token"], i % NODES))
        return out

    def kill(self, i: int) -> None:
        self.nodes[i].kill9()
        self.alive[i] = False

    def stop(self) -> list[str]:
        return [n.terminate() for n, alive in zip(self.nodes, self.alive, strict=True) if alive]


@pytest.fixture
def cluster(tmp_path: Path, pg_url: str, redis_server: RedisServer) -> Iterator[ProcessCluster]:
    c = ProcessCluster(tmp_path, pg_url, redis_server.url)
    try:
        yield c
    finally:
        c.stop()


def check(load: ChatLoad, at_least: int, cluster: ProcessCluster, *, in_order: bool = False) -> None:
    logs = "".join(line for n in cluster.nodes for line in n.output[-40:])
    per_user = [(u.uid, u.home, u.sessions, len(u.acked)) for u in load.users]
    assert load.acked_count() >= at_least, f"{load.acked_count()} {per_user} {load.errors[:5]}\n{logs}"
    assert not load.missing(), f"acknowledged, never delivered: {load.missing()}\n{logs}"
    assert not load.duplicates_in_a_session()
    if in_order:
        assert not load.out_of_order()


async def test_under_load_every_message_arrives_once_in_order(cluster: ProcessCluster) -> None:
    load = ChatLoad(cluster.urls, cluster.users(), seed=4)
    await load.run(4)
    await load.drain(30)
    check(load, 100, cluster, in_order=True)
    assert load.reconnects == 0 and not load.errors


async def test_a_node_killed_under_load_loses_nothing(cluster: ProcessCluster) -> None:
    load = ChatLoad(cluster.urls, cluster.users())
    running = asyncio.ensure_future(load.run(6))
    await asyncio.sleep(2.5)
    cluster.kill(2)
    await running
    await load.drain(30)
    check(load, 100, cluster)
    # The killed node's users came back on another; nobody else had to.
    assert {u.uid: u.sessions >= 2 for u in load.users} == {u.uid: u.home == 2 for u in load.users}


async def test_redis_restarted_under_load_loses_nothing(cluster: ProcessCluster, redis_server: RedisServer) -> None:
    load = ChatLoad(cluster.urls, cluster.users(), seed=2)
    running = asyncio.ensure_future(load.run(6))
    await asyncio.sleep(2)
    redis_server.stop()  # its data is gone with it
    await asyncio.sleep(1)
    redis_server.start()
    await running
    await load.drain(30)
    check(load, 100, cluster)
    assert load.reconnects == 0  # nobody had to log in again: the nodes caught their sessions up


async def test_postgresql_away_for_a_moment_gives_errors_not_wrong_answers(
    cluster: ProcessCluster, pg_url: str
) -> None:
    load = ChatLoad(cluster.urls, cluster.users(), seed=3)
    running = asyncio.ensure_future(load.run(7))
    await asyncio.sleep(2)
    admin = await asyncpg.connect(pg_url)
    try:
        loop = asyncio.get_running_loop()
        until = loop.time() + 1.5
        while loop.time() < until:  # every backend of the nodes, again and again
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            await asyncio.sleep(0.05)
        await running
        await load.drain(30)
        check(load, 100, cluster)
        # Every node is still up and holds its own node id again.
        assert all(n.proc.poll() is None for n in cluster.nodes)
        held = 0
        for _ in range(100):  # a node checks its id every 2 s
            held = await admin.fetchval(NODE_LOCKS_HELD, NODE_LOCK)
            if held == NODES:
                break
            await asyncio.sleep(0.1)
        assert held == NODES
    finally:
        await admin.close()
