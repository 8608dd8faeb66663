"""The same flows over the TCP transport (4-byte length + envelope) and with the protobuf codec."""

from __future__ import annotations

import asyncio
import json
import struct
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import websockets
from helpers import make_user, online
from proto_support import from_bytes, generate, to_bytes

from glide.server import Server


@pytest.fixture(scope="session")
def pb(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    return generate(tmp_path_factory.mktemp("pb"))


class TcpClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, pb: ModuleType | None) -> None:
        self.reader, self.writer, self.pb = reader, writer, pb

    @classmethod
    async def connect(cls, port: int, pb: ModuleType | None = None) -> TcpClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        client = cls(reader, writer, pb)
        hello = await client.recv()
        assert hello["action"] == "hello"
        return client

    async def send(self, action: str, data: Any = None, **fields: Any) -> None:
        if self.pb is None:
            payload = json.dumps({"action": action, "data": data, **fields}).encode()
        else:
            payload = to_bytes(self.pb, action, data, **fields)
        self.writer.write(struct.pack(">I", len(payload)) + payload)
        await self.writer.drain()

    async def recv(self) -> dict[str, Any]:
        while True:
            (n,) = struct.unpack(">I", await asyncio.wait_for(self.reader.readexactly(4), 5))
            payload = await asyncio.wait_for(self.reader.readexactly(n), 5)
            frame = json.loads(payload) if self.pb is None else from_bytes(self.pb, payload)
            if frame["action"] != "heartbeat":
                return frame


@pytest.mark.parametrize("codec", ["json", "proto"])
async def test_chat_over_tcp(servers, pb: ModuleType, codec: str) -> None:  # type: ignore[no-untyped-def]
    server: Server = await servers(tcp_port=0, tcp_codec=codec)
    codec_pb = pb if codec == "proto" else None
    alice_uid, alice_token = await make_user(server, "alice")
    bob_uid, bob_ws = await online(server, "bob")  # a WebSocket/JSON peer: codecs mix freely
    assert server.tcp_port
    alice = await TcpClient.connect(server.tcp_port, codec_pb)
    await alice.send("api.auth", {"Token": alice_token}, seq=1)
    ok = await alice.recv()
    assert ok["action"] == "api.success" and ok["seq"] == 1
    await alice.send("message.chat", {"cliMid": "t1", "content": "over tcp"}, seq=2, to=str(bob_uid))
    ack = await alice.recv()
    assert ack["action"] == "ack.message" and ack["seq"] == 2
    mid = ack["data"]["mid"]
    m = await bob_ws.expect("message.chat")
    assert m["data"]["content"] == "over tcp" and m["data"]["mid"] == mid
    await bob_ws.send("ack.request", {"mid": mid, "from": str(alice_uid)})
    notify = await alice.recv()
    assert notify["action"] == "ack.notify" and notify["data"]["mid"] == mid
    # and the other direction
    await bob_ws.chat(alice_uid, "back", "b1")
    back = await alice.recv()
    assert back["action"] == "message.chat" and back["data"]["content"] == "back"
    await alice.send("no.such", {}, seq=9)
    unknown = await alice.recv()
    assert unknown["action"] == "notify.unknown.action" and unknown["seq"] == 9


async def test_tcp_oversize_length_closes_the_connection(servers) -> None:  # type: ignore[no-untyped-def]
    server: Server = await servers(tcp_port=0, max_message_size=1024)
    assert server.tcp_port
    client = await TcpClient.connect(server.tcp_port)
    client.writer.write(struct.pack(">I", 10_000_000))
    assert await asyncio.wait_for(client.reader.read(), 5) == b""


async def test_websocket_protobuf_subprotocol(server: Server, pb: ModuleType) -> None:
    alice_uid, alice_token = await make_user(server, "alice")
    bob_uid, bob = await online(server, "bob")
    ws = await websockets.connect(f"ws://127.0.0.1:{server.ws_port}/ws", subprotocols=["glide.proto"])
    assert ws.subprotocol == "glide.proto"

    async def recv() -> dict[str, Any]:
        while True:
            raw = await asyncio.wait_for(ws.recv(), 5)
            assert isinstance(raw, bytes)  # binary frames
            frame = from_bytes(pb, raw)
            if frame["action"] != "heartbeat":
                return frame

    assert (await recv())["action"] == "hello"
    await ws.send(to_bytes(pb, "api.auth", {"Token": alice_token}, seq=1))
    assert (await recv())["action"] == "api.success"
    await ws.send(
        to_bytes(pb, "message.chat", {"cliMid": "p1", "content": "proto!", "type": 3}, seq=2, to=str(bob_uid))
    )
    ack = await recv()
    assert ack["action"] == "ack.message" and ack["data"]["cliMid"] == "p1"
    m = await bob.expect("message.chat")
    assert m["data"]["content"] == "proto!" and m["data"]["type"] == 3
    await bob.chat(alice_uid, "json to proto", "jp")
    got = await recv()
    assert got["action"] == "message.chat" and got["data"]["content"] == "json to proto"
    await ws.send(b"\xff\xff\xff")  # not a protobuf envelope
    err = await recv()
    assert err["action"] == "notify.error"
    await ws.close()


async def test_json_subprotocol_is_accepted(server: Server, tmp_path: Path) -> None:
    ws = await websockets.connect(f"ws://127.0.0.1:{server.ws_port}/ws", subprotocols=["glide.json"])
    assert ws.subprotocol == "glide.json"
    hello = json.loads(await ws.recv())
    assert hello["action"] == "hello"
    await ws.close()
