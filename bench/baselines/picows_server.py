"""Baseline: GlideIM's 1:1 two-ack relay on ``picows``, the way a Python developer writes it.

Same behaviour as ``websockets_server.py`` (login by ``api.auth``, relay, both acks, no storage), on
picows' callback API: frames arrive in ``on_ws_frame`` and ``transport.send`` writes without awaiting.
Prints ``baseline serving ws://HOST:PORT/ws`` once listening.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
from typing import Any

from common import HELLO, frame, parse_args, run, uid_from_token
from picows import WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport, WSUpgradeRequest, ws_create_server

online: dict[str, Client] = {}
mids = itertools.count(1)
SECRET = ""


class Client(WSListener):
    def __init__(self) -> None:
        self.transport: WSTransport | None = None
        self.uid: str | None = None

    def send(self, text: str) -> None:
        if self.transport is not None and not self.transport.is_disconnected:
            self.transport.send(WSMsgType.TEXT, text.encode())

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        self.send(HELLO)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        if self.uid is not None and online.get(self.uid) is self:
            del online[self.uid]

    def on_ws_frame(self, transport: WSTransport, frame_: WSFrame) -> None:
        if frame_.msg_type == WSMsgType.CLOSE:
            transport.send_close(frame_.get_close_code())
            transport.disconnect()
            return
        if frame_.msg_type not in (WSMsgType.TEXT, WSMsgType.BINARY):
            return
        try:
            msg = json.loads(frame_.get_payload_as_bytes())
        except ValueError:
            self.send(frame("notify.error", "message decode error"))
            return
        if isinstance(msg, dict):
            self.handle(msg)

    def handle(self, msg: dict[str, Any]) -> None:
        action = msg.get("action")
        seq = msg.get("seq") or 0
        data = msg.get("data")
        if action == "api.auth":
            token = data.get("Token") if isinstance(data, dict) else None
            uid = uid_from_token(token, SECRET)
            if uid is None:
                self.send(frame("api.failed", "invalid token", seq))
                return
            old = online.get(uid)
            online[uid] = self
            self.uid = uid
            if old is not None and old is not self and old.transport is not None:
                old.send(frame("notify.kickout", {"device_id": ""}))
                old.transport.send_close(WSCloseCode.POLICY_VIOLATION)
                old.transport.disconnect()
            self.send(frame("api.success", {"Token": token, "Uid": uid, "Device": "", "Server": None}, seq))
            return
        if action in ("heartbeat", "hello"):
            return
        if self.uid is None:
            self.send(frame("notify.error", "not logged in", seq))
            return
        if action == "message.chat" and isinstance(data, dict):
            to = str(msg.get("to") or data.get("to") or "")
            mid = next(mids)
            self.send(frame("ack.message", {"cliMid": data.get("cliMid"), "mid": mid}))
            chat = {
                "cliMid": data.get("cliMid"),
                "mid": mid,
                "from": self.uid,
                "to": to,
                "type": data.get("type"),
                "content": data.get("content"),
                "sendAt": data.get("sendAt"),
            }
            receiver = online.get(to)
            if receiver is None:
                self.send(frame("ack.notify", {"mid": mid}))
            else:
                receiver.send(frame("message.chat", chat))
        elif action == "ack.request" and isinstance(data, dict):
            sender = online.get(str(data.get("from")))
            if sender is not None:
                sender.send(frame("ack.notify", {"mid": data.get("mid"), "from": self.uid}))
        else:
            self.send(frame("notify.unknown.action", action, seq))


async def main(args: argparse.Namespace, stop: asyncio.Event) -> None:
    global SECRET
    SECRET = args.jwt_secret

    def factory(request: WSUpgradeRequest) -> Client | None:
        return Client() if request.path.split(b"?")[0] == b"/ws" else None

    server = await ws_create_server(factory, args.host, args.port, max_frame_size=1 << 20)
    port = server.sockets[0].getsockname()[1]
    print(f"baseline serving ws://{args.host}:{port}/ws", flush=True)
    await stop.wait()
    server.close()


if __name__ == "__main__":
    run(main, parse_args(__doc__ or ""))
