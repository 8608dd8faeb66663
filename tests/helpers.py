"""Test helpers: an injectable clock, and a GlideIM client built on the independent `websockets` library."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, Self

import websockets

from glide.config import Config
from glide.server import Server


class FakeClock:
    """An injectable monotonic clock (ms) for heartbeat and timeout tests: time moves only when told."""

    def __init__(self, start: int = 1_000_000) -> None:
        self.now = start

    def __call__(self) -> int:
        return self.now

    def advance(self, ms: int) -> None:
        self.now += ms


# The driver every server of the run uses: pytest --driver native|asyncio (conftest sets it).
TEST_DRIVER = "native"


def make_config(tmp_path: Path, **overrides: Any) -> Config:
    overrides.setdefault("data_dir", str(tmp_path / "data"))
    overrides.setdefault("driver", TEST_DRIVER)
    # Presence frames of the world channel would interleave with what each test expects; the tests of the
    # channel (test_glideim_web_client.py) turn it on.
    overrides.setdefault("world_channel", False)
    return Config(host="127.0.0.1", ws_port=0, http_port=0, **overrides)


class Client:
    """A GlideIM client speaking JSON envelopes over a `websockets` connection."""

    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws = ws
        self.seq = 0
        self.hello: dict[str, Any] | None = None

    @classmethod
    async def connect(cls, server: Server, **kwargs: Any) -> Self:
        ws = await websockets.connect(f"ws://127.0.0.1:{server.ws_port}/ws", **kwargs)
        client = cls(ws)
        client.hello = await client.expect("hello")
        return client

    async def send(
        self, action: str, data: Any = None, *, to: str | None = None, seq: int | None = None, **extra: Any
    ) -> int:
        if seq is None:
            self.seq += 1
            seq = self.seq
        frame = {"action": action, "data": data, "seq": seq, "to": to, **extra}
        await self.ws.send(json.dumps(frame))
        return seq

    async def recv(self, timeout: float = 5.0) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.ws.recv(), timeout)
        frame = json.loads(raw)
        assert isinstance(frame, dict)
        return frame

    async def expect(self, action: str, timeout: float = 5.0) -> dict[str, Any]:
        """The next frame, which must have ``action`` (server heartbeats are skipped)."""
        while True:
            frame = await self.recv(timeout)
            if frame["action"] == "heartbeat" and action != "heartbeat":
                continue
            assert frame["action"] == action, frame
            return frame

    async def nothing(self, wait: float = 0.3) -> None:
        """Assert that no frame (other than heartbeats) arrives within ``wait`` seconds."""
        try:
            while True:
                frame = await self.recv(wait)
                assert frame["action"] == "heartbeat", frame
        except TimeoutError:
            return

    async def login(self, token: str) -> dict[str, Any]:
        seq = await self.send("api.auth", {"Token": token})
        reply = await self.expect("api.success")
        assert reply["seq"] == seq
        return reply

    async def chat(self, to: int, content: str, cli_mid: str, type_: int = 1) -> dict[str, Any]:
        """Send a chat and return its ack.message."""
        data = {
            "cliMid": cli_mid,
            "content": content,
            "from": "",
            "mid": 0,
            "sendAt": 1,
            "seq": 0,
            "to": str(to),
            "type": type_,
        }
        seq = await self.send("message.chat", data, to=str(to))
        ack = await self.expect("ack.message")
        assert ack["seq"] == seq and ack["data"]["cliMid"] == cli_mid, ack
        return ack

    async def close(self) -> None:
        await self.ws.close()


async def make_user(server: Server, name: str, device: str = "1") -> tuple[int, str]:
    """Create a user directly in the store and mint a socket token for ``device``."""
    from glide.auth.passwords import hash_password

    assert server.ctx is not None
    user = await server.ctx.store.users.create_user(
        account=name, email=None, nickname=name, avatar="", password_hash=hash_password("secret-pass")
    )
    return user.uid, server.ctx.tokens.issue(user.uid, device)


async def online(server: Server, name: str, device: str = "1") -> tuple[int, Client]:
    uid, token = await make_user(server, name, device)
    client = await Client.connect(server)
    await client.login(token)
    return uid, client
