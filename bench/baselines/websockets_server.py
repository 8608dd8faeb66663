"""Baseline: GlideIM's 1:1 two-ack relay on ``websockets`` (asyncio), the way a Python developer writes it.

Login by ``api.auth`` (JWT ``uid`` claim), ``message.chat`` -> ``ack.message`` to the sender and
``message.chat`` to the receiver (or ``ack.notify`` at once when offline), ``ack.request`` -> ``ack.notify``
to the original sender. No storage. Prints ``baseline serving ws://HOST:PORT/ws`` once listening.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
from typing import Any

from common import HELLO, frame, parse_args, run, uid_from_token
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

online: dict[str, ServerConnection] = {}
mids = itertools.count(1)


async def send(ws: ServerConnection | None, text: str) -> None:
    if ws is None:
        return
    with contextlib.suppress(ConnectionClosed):
        await ws.send(text)


async def handle(ws: ServerConnection, msg: dict[str, Any], me: str | None, secret: str) -> str | None:
    action = msg.get("action")
    seq = msg.get("seq") or 0
    data = msg.get("data")
    if action == "api.auth":
        token = data.get("Token") if isinstance(data, dict) else None
        uid = uid_from_token(token, secret)
        if uid is None:
            await send(ws, frame("api.failed", "invalid token", seq))
            return me
        old = online.get(uid)
        online[uid] = ws
        if old is not None and old is not ws:
            await send(old, frame("notify.kickout", {"device_id": ""}))
            await old.close()
        await send(ws, frame("api.success", {"Token": token, "Uid": uid, "Device": "", "Server": None}, seq))
        return uid
    if action in ("heartbeat", "hello"):
        return me
    if me is None:
        await send(ws, frame("notify.error", "not logged in", seq))
        return me
    if action == "message.chat" and isinstance(data, dict):
        to = str(msg.get("to") or data.get("to") or "")
        mid = next(mids)
        await send(ws, frame("ack.message", {"cliMid": data.get("cliMid"), "mid": mid}))
        chat = {
            "cliMid": data.get("cliMid"),
            "mid": mid,
            "from": me,
            "to": to,
            "type": data.get("type"),
            "content": data.get("content"),
            "sendAt": data.get("sendAt"),
        }
        receiver = online.get(to)
        if receiver is None:
            await send(ws, frame("ack.notify", {"mid": mid}))
        else:
            await send(receiver, frame("message.chat", chat))
    elif action == "ack.request" and isinstance(data, dict):
        await send(online.get(str(data.get("from"))), frame("ack.notify", {"mid": data.get("mid"), "from": me}))
    else:
        await send(ws, frame("notify.unknown.action", action, seq))
    return me


async def main(args: argparse.Namespace, stop: asyncio.Event) -> None:
    async def connection(ws: ServerConnection) -> None:
        me: str | None = None
        await send(ws, HELLO)
        try:
            async for text in ws:
                try:
                    msg = json.loads(text)
                except ValueError:
                    await send(ws, frame("notify.error", "message decode error"))
                    continue
                if isinstance(msg, dict):
                    me = await handle(ws, msg, me, args.jwt_secret)
        except ConnectionClosed:
            pass
        finally:
            if me is not None and online.get(me) is ws:
                del online[me]

    async with serve(connection, args.host, args.port, max_size=1 << 20) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        print(f"baseline serving ws://{args.host}:{port}/ws", flush=True)
        await stop.wait()


if __name__ == "__main__":
    run(main, parse_args(__doc__ or ""))
