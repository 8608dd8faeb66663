"""Embedding glide in an existing asyncio application.

Run it: ``python examples/embed_app.py`` — a glide gateway and API start inside this app's own loop, with
an application action (``app.roll``), login/logout hooks, and a hook that sees every stored message.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import glide
from glide._native import Envelope
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


async def main(
    config: glide.Config | None = None,
    stop: asyncio.Event | None = None,
    started: asyncio.Future[glide.Server] | None = None,
) -> ChatBot:
    server = glide.Server(config or glide.Config(data_dir="./embed-data"))
    bot = ChatBot(server)
    await server.start()
    print(f"embedded glide on ws://127.0.0.1:{server.ws_port}/ws", flush=True)
    if started is not None:
        started.set_result(server)
    await (stop or asyncio.Event()).wait()
    await server.stop()
    return bot


if __name__ == "__main__":
    asyncio.run(main())
