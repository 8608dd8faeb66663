"""Helpers of the contacts / conversations / sync / API-bridge tests: people with a token, an HTTP client and
a logged-in socket that keeps the frames a test is not waiting for yet."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import websockets

from glide.server import Server

Frame = dict[str, Any]
_names = itertools.count(1)


class Socket:
    """A GlideIM JSON client over `websockets` with a stash of unclaimed frames."""

    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws = ws
        self.seq = 100
        self.stash: list[Frame] = []

    @classmethod
    async def connect(cls, server: Server) -> Socket:
        sock = cls(await websockets.connect(f"ws://127.0.0.1:{server.ws_port}/ws"))
        await sock.take(lambda f: f["action"] == "hello")
        return sock

    async def send(self, action: str, data: Any = None, *, to: str | None = None, seq: int | None = None) -> int:
        if seq is None:
            self.seq += 1
            seq = self.seq
        await self.ws.send(json.dumps({"action": action, "data": data, "seq": seq, "to": to}))
        return seq

    async def take(self, match: Callable[[Frame], bool], timeout: float = 5.0) -> Frame:
        """The first frame (stashed or new) that ``match``es; the others are kept in arrival order."""
        for i, stashed in enumerate(self.stash):
            if match(stashed):
                return self.stash.pop(i)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            raw = await asyncio.wait_for(self.ws.recv(), max(0.01, deadline - loop.time()))
            frame: Frame = json.loads(raw)
            if frame["action"] == "heartbeat":
                continue
            if match(frame):
                return frame
            self.stash.append(frame)

    async def action(self, action: str, timeout: float = 5.0) -> Frame:
        return await self.take(lambda f: f["action"] == action, timeout)

    async def reply(self, seq: int, timeout: float = 5.0) -> Frame:
        """The answer to request ``seq`` (whatever its action)."""
        return await self.take(lambda f: f.get("seq") == seq and f["action"] != "hello", timeout)

    async def call(self, action: str, data: Any = None) -> Frame:
        return await self.reply(await self.send(action, data))

    async def quiet(self, action: str, wait: float = 0.3) -> None:
        """No frame with ``action`` arrives within ``wait`` seconds (others are stashed)."""
        try:
            frame = await self.action(action, timeout=wait)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected {frame}")

    async def chat(self, to: int, content: str, cli_mid: str = "") -> Frame:
        """Send a message.chat; returns the reply to it (ack.message or an error frame)."""
        data = {"cliMid": cli_mid or f"c{next(_names)}", "content": content, "to": str(to), "type": 1}
        return await self.reply(await self.send("message.chat", data, to=str(to)))

    async def close(self) -> None:
        await self.ws.close()


@dataclass
class Person:
    uid: int
    name: str
    token: str
    http: httpx.AsyncClient
    server: Server
    sock: Socket | None = None

    async def post(
        self, path: str, body: Any = None, *, token: str | None = "", method: str = "POST"
    ) -> httpx.Response:
        """A request to ``/api/<path>`` with this person's token (``token=None``: without one)."""
        tok = self.token if token == "" else token
        headers = {"Authorization": f"Bearer {tok}"} if tok else {}
        if method == "GET":
            return await self.http.get(f"/api/{path}", headers=headers)
        return await self.http.post(f"/api/{path}", json=body, headers=headers)

    async def ok(self, path: str, body: Any = None, *, method: str = "POST") -> Any:
        r = await self.post(path, body, method=method)
        data = r.json()
        assert r.status_code == 200 and data["Code"] == 100, (path, body, r.status_code, data)
        return data["Data"]

    async def fails(self, path: str, body: Any, status: int, code: int, mentions: str = "") -> str:
        r = await self.post(path, body)
        data = r.json()
        assert (r.status_code, data["Code"], data["Data"]) == (status, code, None), (path, body, r.status_code, data)
        assert mentions.lower() in data["Msg"].lower(), data["Msg"]
        return str(data["Msg"])

    async def online(self) -> Socket:
        """A logged-in socket (the inbox replay, if any, stays in its stash)."""
        sock = await Socket.connect(self.server)
        reply = await sock.call("api.auth", {"Token": self.token})
        assert reply["action"] == "api.success", reply
        self.sock = sock
        return sock

    async def device(self, device: str) -> Socket:
        """Another logged-in socket of this user, on ``device``."""
        assert self.server.ctx is not None
        sock = await Socket.connect(self.server)
        reply = await sock.call("api.auth", {"Token": self.server.ctx.tokens.issue(self.uid, device)})
        assert reply["action"] == "api.success", reply
        return sock


async def person(server: Server, http: httpx.AsyncClient, name: str = "", *, device: str = "1") -> Person:
    """A user made straight in the store (no password hashing), with a token for ``device``."""
    assert server.ctx is not None
    name = name or f"user{next(_names)}"
    user = await server.ctx.store.users.create_user(
        account=name, email=None, nickname=name.title(), avatar="", password_hash="-"
    )
    return Person(user.uid, name, server.ctx.tokens.issue(user.uid, device), http, server)


def http_client(server: Server) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}", timeout=10)
