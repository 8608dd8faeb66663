"""GlideIM's web client (glide_ts_sdk, reference/glideim.md §8) against glide, replayed frame by frame over
real sockets: what it sends, exactly as it sends it, and what it reads — the world channel, group ids that
never equal user ids, 1:1 rows from session/recent, app/info in seconds, verifyCode, contacts/add made at
once, and group notices as group.notify."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import websockets

from glide.server import Server
from glide.store.groups import GROUP_ID_BASE

WORLD = "the_world_channel"
PASSWORD = "web-client-pass"
Frame = dict[str, Any]


class WebClient:
    """What the SDK does: HTTP with a bearer token, one WebSocket, requests matched to replies by seq, every
    send with the ticket of its target (a credential login), the frames it does not wait for kept in order."""

    def __init__(self, http: httpx.AsyncClient, ws_url: str, auth: Frame) -> None:
        self.http = http
        self.ws_url = ws_url
        self.uid: int = auth["uid"]
        self.token: str = auth["token"]
        self.credential: str = auth["credential"]["credential"]
        self.ws: websockets.ClientConnection | None = None
        self.seq = 0
        self.frames: list[Frame] = []
        self.tickets: dict[str, str] = {}

    async def api(self, path: str, body: Any = None, *, method: str = "POST") -> Any:
        headers = {"Authorization": f"Bearer {self.token}"}
        r = await self.http.request(method, f"/api/{path}", json=body, headers=headers)
        data = r.json()
        assert data["Code"] == 100, (path, body, data)
        return data["Data"]

    async def connect(self) -> None:
        self.ws = await websockets.connect(self.ws_url)
        reply = await self.request("authenticate", {"credential": self.credential, "version": 1})
        assert reply["action"] == "notify.success", reply

    async def request(self, action: str, data: Any, *, to: str | None = None, ticket: str | None = None) -> Frame:
        assert self.ws is not None
        self.seq += 1
        seq = self.seq
        frame: Frame = {"action": action, "data": data, "seq": seq, "to": to, "extra": None}
        if ticket is not None:
            frame["ticket"] = ticket
        await self.ws.send(json.dumps(frame))
        return await self.take(lambda f: f.get("seq") == seq and f["action"] in REPLIES)

    async def take(self, match: Callable[[Frame], bool], timeout: float = 5.0) -> Frame:
        for i, frame in enumerate(self.frames):
            if match(frame):
                return self.frames.pop(i)
        assert self.ws is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            frame = json.loads(await asyncio.wait_for(self.ws.recv(), max(0.01, deadline - loop.time())))
            if frame["action"] == "heartbeat":
                continue
            if match(frame):
                return frame
            self.frames.append(frame)

    async def none(self, match: Callable[[Frame], bool], wait: float = 0.3) -> None:
        try:
            frame = await self.take(match, wait)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected {frame}")

    async def ticket(self, to: str) -> str:
        if to not in self.tickets:
            self.tickets[to] = (await self.api("session/ticket", {"To": to}))["Ticket"]
        return self.tickets[to]

    async def send(self, action: str, to: str, content: str, cli_mid: str) -> Frame:
        """``message.chat`` / ``message.group`` as the SDK builds it; returns the reply."""
        data = {
            "cliMid": cli_mid,
            "content": content,
            "from": str(self.uid),
            "mid": 0,
            "sendAt": int(time.time() * 1000),
            "seq": 0,
            "to": to,
            "type": 1,
            "status": 0,
        }
        return await self.request(action, data, to=to, ticket=await self.ticket(to))

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()


REPLIES = ("api.success", "api.failed", "notify.success", "notify.error", "notify.forbidden", "ack.message")


def presence(kind: int, uid: int) -> Callable[[Frame], bool]:
    return lambda f: (
        f["action"] == "message.group"
        and f["data"]["to"] == WORLD
        and f["data"]["type"] == kind
        and f["data"]["content"] == str(uid)
    )


def group_chat(to: str, content: str) -> Callable[[Frame], bool]:
    return lambda f: f["action"] == "message.group" and f["data"]["to"] == to and f["data"]["content"] == content


class WebApp:
    """A glide server with the world channel on, and users signed up and in the way the web client does it."""

    def __init__(self, server: Server, http: httpx.AsyncClient) -> None:
        self.server = server
        self.http = http
        self.clients: list[WebClient] = []

    async def __call__(self, name: str) -> WebClient:
        """A new user: auth/register, auth/signin_v2, then the socket with the credential."""
        email = f"{name}@example.com"
        r = await self.http.post("/api/auth/register", json={"nickname": name, "email": email, "password": PASSWORD})
        assert r.json()["Code"] == 100, r.text
        r = await self.http.post("/api/auth/signin_v2", json={"Email": email, "Device": 2, "Password": PASSWORD})
        assert r.json()["Code"] == 100, r.text
        client = WebClient(self.http, f"ws://127.0.0.1:{self.server.ws_port}/ws", r.json()["Data"])
        self.clients.append(client)
        await client.connect()
        return client


@pytest.fixture
async def web(servers: Callable[..., Any]) -> AsyncIterator[WebApp]:
    server: Server = await servers(world_channel=True)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}", timeout=10) as http:
        app = WebApp(server, http)
        yield app
        for c in app.clients:
            await c.close()


# 1. The world channel.


async def test_world_channel_presence_chat_and_history(web: WebApp) -> None:
    ann = await web("ann")
    # The first frame of a new user's session list: ann herself joining the world channel, from "system".
    joined = await ann.take(presence(100, ann.uid))
    assert joined["data"]["from"] == "system" and joined["to"] == WORLD and isinstance(joined["data"]["sendAt"], int)
    bob = await web("bob")
    await bob.take(presence(100, bob.uid))
    await ann.take(presence(100, bob.uid))  # everyone online hears who comes

    # The web client greets the channel: to "the_world_channel", with the ticket it asked for.
    reply = await ann.send("message.group", WORLD, "Hi, 我来了", "web-1")
    assert reply["action"] == "ack.message" and reply["data"]["cliMid"] == "web-1", reply
    pushed = await bob.take(group_chat(WORLD, "Hi, 我来了"))
    assert pushed["to"] == WORLD and pushed["data"]["from"] == str(ann.uid)
    assert (pushed["data"]["seq"], pushed["data"]["cliMid"], pushed["data"]["type"]) == (1, "web-1", 1)
    assert isinstance(pushed["data"]["mid"], int) and pushed["data"]["mid"] > 0
    mine = await ann.take(group_chat(WORLD, "Hi, 我来了"))  # the sender's own session gets it too
    assert mine["data"]["mid"] == pushed["data"]["mid"]
    # A resend after a lost ack (same cliMid) is acknowledged again, stored and pushed once.
    again = await ann.send("message.group", WORLD, "Hi, 我来了", "web-1")
    assert again["action"] == "ack.message" and again["data"]["mid"] == reply["data"]["mid"]
    await bob.none(group_chat(WORLD, "Hi, 我来了"))

    # Its history is any group's: members read it, by seq.
    history = await bob.api("msg/group/history", {"Gid": WORLD, "BeforeSeq": 0})
    assert [(h["Seq"], h["Content"], h["Sender"]) for h in history] == [(1, "Hi, 我来了", ann.uid)]

    # Who leaves: the last session of bob ends, ann hears it (a session of bob on another node is not ours).
    await bob.close()
    left = await ann.take(presence(101, bob.uid))
    assert left["data"]["from"] == "system"


async def test_world_channel_seq_is_contiguous_and_per_sender_order_holds(web: WebApp) -> None:
    people = [await web(f"p{i}") for i in range(3)]
    per_sender = 8

    async def talk(p: WebClient) -> None:
        for i in range(per_sender):
            reply = await p.send("message.group", WORLD, f"{p.uid}:{i}", f"{p.uid}-{i}")
            assert reply["action"] == "ack.message", reply

    await asyncio.gather(*(talk(p) for p in people))
    total = per_sender * len(people)
    for p in people:
        got = [await p.take(lambda f: f["action"] == "message.group" and f["data"]["type"] == 1) for _ in range(total)]
        seqs = [f["data"]["seq"] for f in got]
        assert seqs == list(range(1, total + 1)), seqs  # contiguous, in order, nothing twice
        for sender in people:
            mine = [f["data"]["content"] for f in got if f["data"]["from"] == str(sender.uid)]
            assert mine == [f"{sender.uid}:{i}" for i in range(per_sender)]
    history = await people[0].api("msg/group/history", {"Gid": WORLD, "PageSize": 100})
    assert [h["Seq"] for h in history] == list(range(total, 0, -1))


async def test_without_the_world_channel(servers: Callable[..., Any]) -> None:
    server: Server = await servers(world_channel=False)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}", timeout=10) as http:
        r = await http.post("/api/auth/register", json={"email": "x@example.com", "password": PASSWORD})
        assert r.json()["Code"] == 100
        r = await http.post("/api/auth/signin_v2", json={"Email": "x@example.com", "Device": 2, "Password": PASSWORD})
        x = WebClient(http, f"ws://127.0.0.1:{server.ws_port}/ws", r.json()["Data"])
        await x.connect()
        try:
            await x.none(lambda f: f["action"] == "message.group")  # no presence
            reply = await x.send("message.group", WORLD, "anyone?", "w-off")
            assert (reply["action"], reply["data"]) == ("notify.error", f"to: {WORLD} is turned off on this server")
            assert server.ctx is not None
            assert await server.ctx.store.groups.group(GROUP_ID_BASE) is None
        finally:
            await x.close()


# 2. Group ids and user ids never meet.


async def test_group_ids_never_equal_user_ids(web: WebApp) -> None:
    people = [await web(f"u{i}") for i in range(3)]
    owner, member, _ = people
    gids = [(await owner.api("group/create", {"Name": f"g{i}", "Members": [member.uid]}))["Gid"] for i in range(3)]
    uids = {p.uid for p in people}
    assert all(isinstance(g, int) and g > GROUP_ID_BASE and g < 2**53 for g in gids)
    assert not uids & set(gids) and len(set(gids)) == 3
    # The client keys conversations by `to` alone: a group's frames and a 1:1 chat's never share one.
    gid = str(gids[0])
    assert (await owner.send("message.group", gid, "to the group", "g-1"))["action"] == "ack.message"
    assert (await owner.send("message.chat", str(member.uid), "to you", "c-1"))["action"] == "ack.message"
    in_group = await member.take(group_chat(gid, "to the group"))
    direct = await member.take(lambda f: f["action"] == "message.chat" and f["data"]["content"] == "to you")
    assert in_group["to"] == gid and in_group["data"]["to"] == gid
    assert direct["data"]["from"] == str(owner.uid) and direct["data"]["from"] != gid


# 3. session/recent answers GlideIM's 1:1 rows; group rows only when asked for.


async def test_session_recent_rows_are_one_to_one(web: WebApp) -> None:
    ann, bob = await web("sa"), await web("sb")
    gid = (await ann.api("group/create", {"Name": "g", "Members": [bob.uid]}))["Gid"]
    assert (await ann.send("message.chat", str(bob.uid), "hello", "r-1"))["action"] == "ack.message"
    assert (await ann.send("message.group", str(gid), "group hello", "r-2"))["action"] == "ack.message"
    await ann.send("message.group", WORLD, "world hello", "r-3")
    rows = await bob.api("session/recent")
    assert [(r["Type"], r["To"]) for r in rows] == [(1, ann.uid)]
    row = rows[0]
    assert {"To", "UpdateAt", "Uid1", "Uid2", "LastMid", "Unread", "CreateAt"} <= set(row)
    assert sorted([row["Uid1"], row["Uid2"]]) == sorted([ann.uid, bob.uid]) and row["Unread"] == 1
    both = await bob.api("session/recent", {"Groups": True})
    assert [r["Type"] for r in both].count(2) == 2 and {r["To"] for r in both if r["Type"] == 2} == {gid, GROUP_ID_BASE}
    assert both[0]["Type"] == 2  # the newest activity first (the world channel's)


# 4. app/info, as the Square page reads it.


async def test_app_info_times_are_unix_seconds(web: WebApp) -> None:
    ann = await web("info")
    info = await ann.api("app/info", method="GET")
    now = time.time()
    assert now - 3600 < info["StartAt"] <= now + 1
    assert info["OnlineCli"] == []  # who is online is the operator's to see
    r = await web.http.get("/api/app/info", headers={"Authorization": f"Bearer {web.server.config.admin_token}"})
    [cli] = [c for c in r.json()["Data"]["OnlineCli"] if c["ID"] == f"{ann.uid}_2"]
    assert now - 3600 < cli["ConnectionAt"] <= cli["AliveAt"] <= now + 1
    assert info["Online"] >= 1 and info["MaxOnline"] >= info["Online"]


# 5. verifyCode: the register page (see test_api_verification for SMTP and the rules of codes).


async def test_register_page_asks_for_a_code(web: WebApp) -> None:
    r = await web.http.post("/api/auth/verifyCode", json={"email": "new@example.com", "mode": "register"})
    assert (r.status_code, r.json()) == (200, {"Code": 100, "Msg": "success", "Data": ""})


# 6. contacts/add makes the contact at once (GlideIM's meaning).


async def test_contacts_add_makes_the_contact_at_once(web: WebApp) -> None:
    ann, bob = await web("ca"), await web("cb")
    assert await ann.api("contacts/add", {"Uid": bob.uid, "Remark": "Bobby"}) == {"uid": bob.uid, "status": 1}
    [mine] = [c for c in await ann.api("contacts/list") if c["Id"] == bob.uid]
    assert (mine["Type"], mine["Remark"], mine["id"], mine["remark"]) == (1, "Bobby", bob.uid, "Bobby")
    assert ann.uid in [c["Id"] for c in await bob.api("contacts/list")]  # both ways, as GlideIM does it


# 7. Group notices as group.notify.


async def test_group_notices_reach_the_web_client_as_group_notify(web: WebApp) -> None:
    ann, bob, cy = await web("na"), await web("nb"), await web("nc")
    gid = (await ann.api("group/create", {"Name": "g", "Members": [bob.uid]}))["Gid"]
    created = await bob.take(lambda f: f["action"] == "group.notify")
    assert created["data"]["gid"] == gid and created["data"]["type"] == 1
    assert sorted(created["data"]["uids"]) == sorted([ann.uid, bob.uid])
    # Every notice also goes out as message.group.notify (GlideIM's gateway's name), with the same data.
    twin = await bob.take(lambda f: f["action"] == "message.group.notify")
    assert twin["data"] == created["data"]
    assert await ann.api("group/members/invite", {"Gid": gid, "Uid": [cy.uid]}) == ""
    for p in (ann, bob, cy):
        added = await p.take(
            lambda f: f["action"] == "group.notify" and f["data"]["type"] == 1 and f["data"]["seq"] == 2
        )
        assert (added["data"]["gid"], added["data"]["uids"], added["data"]["by"]) == (gid, [cy.uid], ann.uid)
        assert added["to"] == str(gid)
