"""Embedding glide in an existing asyncio application.

Run it: ``python examples/embed_app.py`` — a glide gateway and API start inside this app's own loop, with
an application action (``app.roll``), login/logout hooks, and a hook that sees every stored message; a
guest then visits it with ``glide.client`` (``pip install 'glide-im[client]'``).
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import glide
from glide._native import Envelope
from glide.client import GlideClient, Notice
from glide.gateway.conn import Conn
from glide.store.base import ChatMessage


class ChatBot:
    """The host application: it keeps its own state and reacts to glide's events."""

    def __init__(self, server: glide.Server) -> None:
        self.server = server
        self.online: set[int] = set()
        self.messages_seen = 0
        server.on_login(self.user_came)
        server.on_logout(self.user_left)
        server.on_message(self.message_stored)
        server.action("app.roll")(self.roll)

    def user_came(self, conn: Conn) -> None:
        self.online.add(conn.uid)
        self.server.deliver(conn.uid, "app.welcome", {"online": len(self.online)})

    def user_left(self, conn: Conn) -> None:
        self.online.discard(conn.uid)

    async def message_stored(self, conn: Conn, message: ChatMessage) -> None:
        self.messages_seen += 1

    async def roll(self, conn: Conn, env: Envelope) -> dict[str, Any]:
        data = env.data()
        sides = data.get("sides", 6) if isinstance(data, dict) else 6
        if not isinstance(sides, int) or not 2 <= sides <= 1000:
            raise glide.GlideError("sides: expected an integer from 2 to 1000")
        return {"sides": sides, "value": random.randint(1, sides)}


async def visit(ws_url: str, token: str) -> tuple[Any, dict[str, Any]]:
    """A client of the app: it is welcomed on login, then rolls a twenty-sided die."""
    async with GlideClient(ws_url, token) as client:
        welcome = await client.next_event(timeout=5)
        assert isinstance(welcome, Notice) and welcome.action == "app.welcome"
        roll = await client.request("app.roll", {"sides": 20})
    return welcome.data, roll


async def main(
    config: glide.Config | None = None,
    stop: asyncio.Event | None = None,
    started: asyncio.Future[glide.Server] | None = None,
) -> ChatBot:
    server = glide.Server(config or glide.Config(data_dir="./embed-data"))
    bot = ChatBot(server)
    await server.start()
    print(f"embedded glide on {server.config.ws_url}", flush=True)
    if started is not None:
        started.set_result(server)
    await (stop or asyncio.Event()).wait()
    await server.stop()
    return bot


async def demo() -> None:
    """The app, and a guest (signed up over its HTTP API) visiting it once."""
    import httpx

    stop = asyncio.Event()
    started: asyncio.Future[glide.Server] = asyncio.get_running_loop().create_future()
    app = asyncio.create_task(main(glide.Config(data_dir="./embed-data", ws_port=0, http_port=0), stop, started))
    server = await started
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}") as http:
        guest = (await http.post("/api/auth/guest", json={"nickname": "visitor", "avatar": ""})).json()["Data"]
    welcome, roll = await visit(server.config.ws_url, guest["token"])
    print(f"welcomed with {welcome}, rolled {roll['value']} of {roll['sides']}")
    stop.set()
    await app


if __name__ == "__main__":
    asyncio.run(demo())
