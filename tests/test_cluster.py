"""Three glide nodes on one PostgreSQL database and one Redis, on real sockets, both as Servers in this process
and as three ``glide serve`` processes: users on different nodes chat with both acks, groups fan out to
members on every node with contiguous seqs, a user's devices may sit on different nodes, a login kicks the
same device out wherever it was, presence, recall and logout cross nodes, and a login racing sends from
another node gets every message exactly once."""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Protocol

import helpers
import httpx
import pytest
from cluster_support import RedisServer
from group_support import GClient
from helpers import make_config
from prometheus_client.parser import text_string_to_metric_families
from serve_process import ServeProcess
from websockets.exceptions import ConnectionClosed

from glide.auth.tokens import TokenService
from glide.server import Server

NODES = 3
SECRETS = {"jwt_secret": "j" * 48, "secret_key": "k" * 48, "admin_token": "a" * 48}
_names = itertools.count(1)


class Node(Protocol):
    """A node of the cluster under test, as the tests reach it: its ports, id, and how to make users."""

    ws_port: int
    http_port: int
    node_id: int

    async def new_user(self, name: str) -> int: ...

    def token(self, uid: int, device: str) -> str: ...


class InProcessNode:
    def __init__(self, server: Server) -> None:
        assert server.ctx is not None
        self.server, self.ctx = server, server.ctx
        self.ws_port, self.http_port, self.node_id = server.ws_port, server.http_port, server.node_id

    async def new_user(self, name: str) -> int:
        user = await self.ctx.store.users.create_user(
            account=name, email=None, nickname=name, avatar="", password_hash="-"
        )
        return user.uid

    def token(self, uid: int, device: str) -> str:
        return self.ctx.tokens.issue(uid, device)


class ProcessNode:
    """A ``glide serve`` process: users registered over its HTTP API, tokens signed with the shared secret."""

    def __init__(self, proc: ServeProcess) -> None:
        self.proc, self.ws_port, self.http_port = proc, proc.ws_port, proc.http_port
        m = re.search(r"node (\d+) of a cluster", "".join(proc.output))
        assert m, proc.output
        self.node_id = int(m.group(1))
        self.tokens = TokenService(SECRETS["jwt_secret"], 3600, 3600)

    async def new_user(self, name: str) -> int:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.http_port}/api", timeout=10) as http:
            r = await http.post("/auth/register", json={"account": name, "password": "secret-pass"})
            assert r.json()["Code"] == 100, r.text
            r = await http.post("/auth/signin", json={"account": name, "password": "secret-pass", "device": 1})
            uid: int = r.json()["Data"]["uid"]
            return uid

    def token(self, uid: int, device: str) -> str:
        return self.tokens.issue(uid, device)


@pytest.fixture(params=["in-process", "glide-serve"])
async def cluster(
    request: pytest.FixtureRequest, tmp_path: Path, pg_url: str, redis_server: RedisServer
) -> AsyncIterator[list[Node]]:
    """Three nodes: Servers in this process, or three ``glide serve`` processes (on the tests' driver)."""
    if request.param == "in-process":
        servers: list[Server] = []
        for i in range(NODES):
            server = Server(make_config(tmp_path / f"node{i}", store=pg_url, redis=redis_server.url, **SECRETS))
            await server.start()
            servers.append(server)
        yield [InProcessNode(s) for s in servers]
        for server in servers:
            await server.stop()
        return
    args = [f"--{k.replace('_', '-')}={v}" for k, v in SECRETS.items()]
    args += ["--store", pg_url, "--redis", redis_server.url, "--world-channel", "false"]
    args += ["--driver", helpers.TEST_DRIVER, "--log-level", "warning"]
    procs = await asyncio.to_thread(lambda: [ServeProcess(tmp_path / f"node{i}", *args) for i in range(NODES)])
    try:
        yield [ProcessNode(p) for p in procs]
    finally:
        await asyncio.to_thread(lambda: [p.terminate() for p in procs])


async def user(node: Node, name: str = "") -> int:
    return await node.new_user(name or f"u{next(_names)}")


async def online(node: Node, uid: int, device: str = "1") -> GClient:
    client = await GClient.connect(node)  # type: ignore[arg-type]  # a Node has the ws_port connect needs
    await client.login(node.token(uid, device))
    return client


async def chat(client: GClient, to: int, content: str, cli_mid: str = "") -> dict[str, Any]:
    data = {"cliMid": cli_mid or f"c{next(_names)}", "content": content, "to": str(to), "type": 1}
    seq = await client.send("message.chat", data, to=str(to))
    return await client.reply(seq)


def chat_from(sender: int, content: str | None = None) -> Any:
    return lambda f: (
        f["action"] == "message.chat"
        and f["data"]["from"] == str(sender)
        and (content is None or f["data"]["content"] == content)
    )


async def test_nodes_lease_distinct_ids(cluster: list[Node]) -> None:
    assert sorted(node.node_id for node in cluster) == list(range(NODES))


async def test_chat_across_nodes_with_both_acks(cluster: list[Node]) -> None:
    a, b = await user(cluster[0]), await user(cluster[0])
    alice, bob = await online(cluster[0], a), await online(cluster[1], b)
    ack = await chat(alice, b, "hello from node 0")
    assert ack["action"] == "ack.message"
    got = await bob.take(chat_from(a, "hello from node 0"))
    assert got["data"]["mid"] == ack["data"]["mid"]
    await bob.send("ack.request", {"mid": got["data"]["mid"], "from": str(a)})
    notify = await alice.push("ack.notify")
    assert notify["data"]["mid"] == got["data"]["mid"]
    # and back, node 1 to node 0
    back = await chat(bob, a, "hi from node 1")
    assert (await alice.take(chat_from(b, "hi from node 1")))["data"]["mid"] == back["data"]["mid"]


async def cluster_counts(node: Node) -> tuple[float, float]:
    """The node's (glide_cluster_rounds, glide_cluster_messages_received) from its /metrics."""
    admin = {"Authorization": f"Bearer {SECRETS['admin_token']}"}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{node.http_port}", timeout=10) as http:
        r = await http.get("/metrics", headers=admin)
    samples = {s.name: s.value for f in text_string_to_metric_families(r.text) for s in f.samples}
    return samples["glide_cluster_rounds_total"], samples["glide_cluster_messages_received_total"]


async def test_metrics_count_round_trips_and_messages_between_nodes(cluster: list[Node]) -> None:
    a, b = await user(cluster[0]), await user(cluster[0])
    alice, bob = await online(cluster[0], a), await online(cluster[1], b)
    (rounds0, received0), (_, received1) = await cluster_counts(cluster[0]), await cluster_counts(cluster[1])
    await chat(alice, b, "counted")
    got = await bob.take(chat_from(a, "counted"))
    await bob.send("ack.request", {"mid": got["data"]["mid"], "from": str(a)})
    await alice.push("ack.notify")
    (rounds0_after, received0_after), (_, received1_after) = (
        await cluster_counts(cluster[0]),
        await cluster_counts(cluster[1]),
    )
    assert rounds0_after > rounds0  # the chat went out in a round
    assert received1_after > received1  # and came in on node 1
    assert received0_after > received0  # its ack.notify came back


async def test_an_offline_receiver_is_told_at_once_and_gets_it_on_login_elsewhere(cluster: list[Node]) -> None:
    a, b = await user(cluster[0]), await user(cluster[0])
    alice = await online(cluster[0], a)
    ack = await chat(alice, b, "while you were away")
    assert (await alice.push("ack.notify"))["data"]["mid"] == ack["data"]["mid"]  # nobody online anywhere
    bob = await online(cluster[2], b)
    assert (await bob.take(chat_from(a, "while you were away")))["data"]["mid"] == ack["data"]["mid"]


async def test_every_device_of_a_user_on_any_node_gets_it(cluster: list[Node]) -> None:
    a, b = await user(cluster[0]), await user(cluster[0])
    alice = await online(cluster[0], a)
    bob_phone, bob_laptop, bob_tablet = [await online(cluster[i], b, str(i + 1)) for i in range(NODES)]
    ack = await chat(alice, b, "to all of you")
    for device in (bob_phone, bob_laptop, bob_tablet):
        assert (await device.take(chat_from(a, "to all of you")))["data"]["mid"] == ack["data"]["mid"]
    # The sender's recall reaches every device too.
    seq = await alice.send("message.chat.recall", {"mid": ack["data"]["mid"]}, to=str(b))
    assert (await alice.reply(seq))["action"] == "ack.message"
    for device in (bob_phone, bob_laptop, bob_tablet):
        recall = await device.take(lambda f: f["action"] == "message.chat.recall")
        assert recall["data"]["mid"] == ack["data"]["mid"]
    for device in (bob_phone, bob_laptop, bob_tablet):
        await device.quiet()


async def test_a_login_kicks_the_same_device_out_on_another_node(cluster: list[Node]) -> None:
    a, b = await user(cluster[0]), await user(cluster[0])
    old = await online(cluster[0], b, "7")
    other_device = await online(cluster[2], b, "8")
    new = await online(cluster[1], b, "7")
    kick = await old.push("notify.kickout")
    assert kick["data"]["device_id"] == "7"
    with pytest.raises(ConnectionClosed):  # closed by the server (4001)
        while True:
            await old._read(5)
    assert old.ws.close_code == 4001
    alice = await online(cluster[0], a)
    ack = await chat(alice, b, "after the kick")
    assert (await new.take(chat_from(a, "after the kick")))["data"]["mid"] == ack["data"]["mid"]
    assert (await other_device.take(chat_from(a, "after the kick")))["data"]["mid"] == ack["data"]["mid"]


async def test_group_fan_out_reaches_members_on_every_node_with_contiguous_seqs(cluster: list[Node]) -> None:
    uids = [await user(cluster[0]) for _ in range(6)]
    clients = [await online(cluster[i % NODES], uid) for i, uid in enumerate(uids)]
    owner = clients[0]
    gid = (await owner.call("group/create", {"Name": "spread", "Members": uids[1:]}))["Gid"]
    per_sender = 5

    async def talk(i: int) -> None:
        for n in range(per_sender):
            reply = await clients[i].group_send(gid, f"{i}:{n}", f"g{i}-{n}")
            assert reply["action"] == "ack.message", reply

    await asyncio.gather(*(talk(i) for i in range(len(clients))))
    total = per_sender * len(clients)
    for client in clients:
        got = [await client.take(lambda f: f["action"] == "message.group") for _ in range(total)]
        seqs = sorted(f["data"]["seq"] for f in got)
        assert seqs == list(range(2, total + 2))  # seq 1 is the creation notice; nothing twice, no gap
        for i in range(len(clients)):
            mine = [f["data"]["content"] for f in got if f["data"]["from"] == str(uids[i])]
            assert mine == [f"{i}:{n}" for n in range(per_sender)]  # per-sender order
    members = await clients[1].call("group/members", {"Gid": gid})
    assert all(m["Online"] for m in members)  # presence across nodes


async def test_cli_messages_contact_events_and_logout_cross_nodes(cluster: list[Node]) -> None:
    a, b = await user(cluster[0]), await user(cluster[0])
    alice, bob = await online(cluster[0], a), await online(cluster[1], b)
    await alice.send("message.cli", {"type": 10020, "content": "typing"}, to=str(b))
    typing = await bob.take(lambda f: f["action"] == "message.cli")
    assert typing["data"]["content"] == "typing" and typing["from"] == str(a)
    # A logout on node 2's HTTP API closes the session on node 1.
    token = cluster[2].token(b, "1")
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{cluster[2].http_port}", timeout=10) as http:
        r = await http.post("/api/auth/logout", headers={"Authorization": f"Bearer {token}"})
        assert r.json()["Code"] == 100
    with pytest.raises(ConnectionClosed):
        while True:
            await bob._read(5)
    assert bob.ws.close_code == 1000


async def test_a_session_is_reachable_from_every_node_once_its_login_is_answered(
    cluster: list[Node], redis_server: RedisServer
) -> None:
    # Writes to Redis held back for a moment (reads go on): a login answered before its route is written would
    # miss what is never stored and so never replayed, like this typing indicator from another node.
    a, b = await user(cluster[0]), await user(cluster[0])
    alice = await online(cluster[0], a)
    with redis_server.client() as r:
        r.execute_command("CLIENT", "PAUSE", 400, "WRITE")
    bob = await online(cluster[1], b)
    await alice.send("message.cli", {"type": 10020, "content": "typing"}, to=str(b))
    typing = await bob.take(lambda f: f["action"] == "message.cli")
    assert typing["data"]["content"] == "typing"


async def test_a_login_racing_sends_from_another_node_gets_each_message_once(cluster: list[Node]) -> None:
    a, b = await user(cluster[0]), await user(cluster[0])
    alice = await online(cluster[0], a)
    sent: list[int] = []
    rounds = 8
    for r in range(rounds):

        async def stream(r: int) -> None:
            for i in range(15):
                reply = await chat(alice, b, f"{r}:{i}")
                assert reply["action"] == "ack.message"
                sent.append(reply["data"]["mid"])

        sender = asyncio.ensure_future(stream(r))
        await asyncio.sleep(0.002 * (r % 5))
        bob = await online(cluster[1 + r % 2], b, "1")
        await sender
        got: list[int] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while set(sent) - set(got) and loop.time() < deadline:
            try:
                frame = await bob.take(chat_from(a), timeout=max(0.05, deadline - loop.time()))
            except TimeoutError:
                break
            got.append(frame["data"]["mid"])
            await bob.send("ack.request", {"mid": frame["data"]["mid"], "from": str(a)})
        assert sorted(got) == sorted(set(got)), f"round {r}: delivered twice"
        assert set(got) == set(sent), f"round {r}: missing {set(sent) - set(got)}"
        assert got == sorted(got), f"round {r}: out of order"
        await bob.quiet(0.5)  # and nothing again
        await bob.close()
        sent.clear()


async def test_the_operator_kicks_and_broadcasts_across_nodes(cluster: list[Node]) -> None:
    a = await user(cluster[0])
    phone, laptop = await online(cluster[1], a, "1"), await online(cluster[2], a, "2")
    others = [await online(cluster[i], await user(cluster[0])) for i in range(NODES)]
    admin = {"Authorization": f"Bearer {SECRETS['admin_token']}"}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{cluster[0].http_port}/api", timeout=10) as http:
        r = await http.post("/admin/broadcast", json={"Data": "hello all"}, headers=admin)
        assert r.json()["Data"] == {"Here": 1}  # others[0]; the rest through Redis
        for client in (phone, laptop, *others):
            assert (await client.take(lambda f: f["action"] == "notify.admin"))["data"] == "hello all"
        r = await http.post("/admin/kick", json={"Uid": a}, headers=admin)
        assert r.json()["Data"] == {"Here": False}  # a is on nodes 1 and 2 only
    for device in (phone, laptop):
        with pytest.raises(ConnectionClosed):
            while True:
                await device._read(5)
        assert device.ws.close_code == 4002
    for client in others:
        await client.quiet()


async def test_hostile_messages_on_the_cluster_channels_change_nothing(
    cluster: list[Node], redis_server: RedisServer
) -> None:
    """Whoever can publish on Redis can send nodes anything: malformed runs of segments, lengths that lie,
    items of the wrong shape, frames that are not envelopes. Each is logged and dropped; the next round works."""
    import redis.asyncio as aioredis

    a, b = await user(cluster[0]), await user(cluster[0])
    alice, bob = await online(cluster[0], a), await online(cluster[1], b)
    head = b'[9,[["d",[%d],0,0]],[3]]\n' % b
    junk = [
        b"",
        b"garbage",
        b"5:abc",
        b"99999999999:x",
        b"-3:abc",
        b"3:[1]",
        b"4:[1,\n",
        b"%d:%b" % (len(head) + 3, head + b"{x}"),  # a frame that is not an envelope
        b"%d:%b" % (len(head) + 2, head + b"{}"),  # lengths that do not add up
        b'30:[9,[["d","x",0,0],["?"]],[]]\n',
        b'22:[9,[["k",1,2]],[-1]]\n',
    ]
    client = aioredis.Redis.from_url(redis_server.url)
    try:
        for payload in junk:
            for channel in (f"glide:n:{cluster[1].node_id}", "glide:all"):
                await client.publish(channel, payload)
    finally:
        await client.aclose()
    ack = await chat(alice, b, "after the junk")
    got = await bob.take(chat_from(a, "after the junk"))
    assert got["data"]["mid"] == ack["data"]["mid"]
    await bob.nothing()  # nothing of the junk reached bob
