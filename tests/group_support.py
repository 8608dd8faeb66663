"""Helpers of the group tests: a client that keeps frames it was not waiting for, and users with devices."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from helpers import Client, make_user

from glide.server import Server

Frame = dict[str, Any]
REPLIES = ("api.success", "api.failed", "ack.message", "notify.error", "notify.unauthenticated")


class ApiFailed(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class GClient(Client):
    """A client that stashes the frames a test is not waiting for yet, and keeps each frame's raw text
    (under ``"__raw__"``) so tests can compare the exact bytes different recipients got."""

    def __init__(self, ws: Any) -> None:
        super().__init__(ws)
        self.stash: list[Frame] = []

    async def recv(self, timeout: float = 5.0) -> Frame:
        if self.stash:
            return self.stash.pop(0)
        return await self._read(timeout)

    async def _read(self, timeout: float) -> Frame:
        while True:
            raw = await asyncio.wait_for(self.ws.recv(), timeout)
            frame = json.loads(raw)
            assert isinstance(frame, dict)
            # Every notice goes out twice: as message.group.notify (what these tests read) and the same as
            # group.notify for GlideIM's web client (test_glideim_web_client checks the pair).
            if frame["action"] != "group.notify":
                frame["__raw__"] = raw
                return frame

    async def take(self, match: Callable[[Frame], bool], timeout: float = 5.0) -> Frame:
        """The first frame (stashed or new) that ``match``es; others are stashed in arrival order."""
        for i, frame in enumerate(self.stash):
            if match(frame):
                return self.stash.pop(i)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            frame = await self._read(max(0.01, deadline - loop.time()))
            if frame["action"] == "heartbeat":
                continue
            if match(frame):
                return frame
            self.stash.append(frame)

    async def reply(self, seq: int) -> Frame:
        return await self.take(lambda f: f.get("seq") == seq and f["action"] in REPLIES)

    async def push(self, action: str) -> Frame:
        """The next push with ``action`` (replies carry a seq, pushes none)."""
        return await self.take(lambda f: f["action"] == action and not f.get("seq"))

    async def call(self, route: str, data: Any = None) -> Any:
        """``api.<route>`` over the socket; returns Data, raises ApiFailed with the message."""
        seq = await self.send("api." + route.replace("/", "."), data)
        frame = await self.reply(seq)
        if frame["action"] != "api.success":
            raise ApiFailed(str(frame["data"]))
        return frame["data"]

    async def fails(self, route: str, data: Any = None) -> str:
        try:
            await self.call(route, data)
        except ApiFailed as e:
            return e.message
        raise AssertionError(f"{route} {data} succeeded")

    async def group_send(self, gid: int | str, content: str, cli_mid: str, **data: Any) -> Frame:
        """``message.group``; returns the reply (ack.message or notify.error) with the request's seq."""
        body = {"cliMid": cli_mid, "content": content, "type": 1, "sendAt": 1, **data}
        seq = await self.send("message.group", body, to=str(gid))
        frame = await self.reply(seq)
        assert frame["seq"] == seq
        return frame

    async def quiet(self, wait: float = 0.25) -> None:
        """Nothing (but heartbeats) is stashed or arrives within ``wait`` seconds."""
        assert not [f for f in self.stash if f["action"] != "heartbeat"], self.stash
        await self.nothing(wait)


@dataclass
class User:
    uid: int
    name: str
    clients: list[GClient] = field(default_factory=list)

    @property
    def c(self) -> GClient:
        return self.clients[0]


async def connect(server: Server, uid: int, device: str) -> GClient:
    assert server.ctx is not None
    client = await GClient.connect(server)
    await client.login(server.ctx.tokens.issue(uid, device))
    return client


async def user(server: Server, name: str, devices: int = 1) -> User:
    uid, _ = await make_user(server, name)
    u = User(uid, name)
    for d in range(devices):
        u.clients.append(await connect(server, uid, str(d + 1)))
    return u


async def make_group(owner: User, *members: User, name: str = "team") -> int:
    data = await owner.c.call("group/create", {"Name": name, "Members": [m.uid for m in members]})
    gid: int = data["Gid"]
    # every online device of every member got the creation notice: drop it so tests start clean
    for u in (owner, *members):
        for c in u.clients:
            await c.take(lambda f: f["action"] == "message.group.notify" and f["data"]["gid"] == gid)
    return gid


class Http:
    """The server's API over HTTP, one client for a whole test (building one costs ~0.2 s of TLS setup)."""

    def __init__(self, server: Server) -> None:
        self.client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}", timeout=10)

    async def __aenter__(self) -> Http:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()

    async def post(self, path: str, body: Any, token: str | None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return await self.client.post(path, json=body, headers=headers)


def token(server: Server, uid: int, device: str = "http") -> str:
    assert server.ctx is not None
    return server.ctx.tokens.issue(uid, device)
