"""Encode one server ``message.chat`` push: glide's native ``Outgoing`` against the Python paths.

Two shapes are measured:

* one recipient: build the envelope, serialise it, frame it (what every push costs when nothing is shared);
* 1,000 recipients (a group fan-out): ours is one ``Outgoing(...).frames(wires)`` call, which encodes once
  and hands the same bytes object to every recipient. The Python paths serialise the JSON once (the obvious
  thing to do) and then either frame it once per recipient through that recipient's own protocol object
  ("per-recipient", what ``send`` on each connection does), or frame it once and reuse the bytes for every
  recipient ("frame once", possible because server frames are unmasked).

Every implementation must produce byte-identical frames (asserted), so the file also passes as plain tests.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from websockets.http11 import Request
from websockets.server import ServerProtocol
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Message
from wsproto.events import Request as WsprotoRequest

from glide import _native

RECIPIENTS = 1000

UPGRADE = (
    b"GET /ws HTTP/1.1\r\n"
    b"Host: localhost:8080\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\n"
    b"\r\n"
)

# What the server pushes to the receiver of a chat message (GlideIM's ChatMessage).
DATA: dict[str, Any] = {
    "mid": 7102113327081369600,
    "seq": 42,
    "from": "1",
    "to": "2",
    "type": 1,
    "content": "hello, lunch at noon",
    "sendAt": 1690000000123,
    "cliMid": "9F2C0A1B4D5E6F70",
}


def envelope() -> dict[str, Any]:
    """The envelope as a Python server would build it: the same keys, in the order glide writes them."""
    return {"ver": 1, "action": "message.chat", "data": DATA}


def dumps_json(env: dict[str, Any]) -> str:
    return json.dumps(env, separators=(",", ":"))


def dumps_orjson(env: dict[str, Any]) -> str:
    return orjson.dumps(env).decode()


def server_frame(payload: bytes) -> bytes:
    """An unmasked, unfragmented server text frame (RFC 6455 section 5.2), the reference for the asserts."""
    size = len(payload)
    if size < 126:
        return bytes([0x81, size]) + payload
    if size < 1 << 16:
        return bytes([0x81, 126]) + size.to_bytes(2, "big") + payload
    return bytes([0x81, 127]) + size.to_bytes(8, "big") + payload


EXPECTED = server_frame(dumps_json(envelope()).encode())


def wsproto_conn() -> WSConnection:
    conn = WSConnection(ConnectionType.SERVER)
    conn.receive_data(UPGRADE)
    assert isinstance(next(conn.events()), WsprotoRequest)
    conn.send(AcceptConnection())
    return conn


def websockets_proto() -> ServerProtocol:
    proto = ServerProtocol()
    proto.receive_data(UPGRADE)
    request = proto.events_received()[0]
    assert isinstance(request, Request)
    proto.send_response(proto.accept(request))
    proto.data_to_send()
    return proto


# ---- one recipient ---------------------------------------------------------------------------------------


def _ours_one() -> bytes:
    return _native.Outgoing("message.chat", DATA).frame(_native.WS_JSON)


def _wsproto_one(dumps: Callable[[dict[str, Any]], str]) -> Callable[[], bytes]:
    conn = wsproto_conn()

    def run() -> bytes:
        return conn.send(Message(data=dumps(envelope())))

    return run


def _websockets_one(dumps: Callable[[dict[str, Any]], str]) -> Callable[[], bytes]:
    proto = websockets_proto()

    def run() -> bytes:
        proto.send_text(dumps(envelope()).encode())
        return b"".join(proto.data_to_send())

    return run


def _websockets_one_orjson() -> Callable[[], bytes]:
    # orjson already returns UTF-8 bytes, which is what websockets wants: no decode/encode round trip.
    proto = websockets_proto()

    def run() -> bytes:
        proto.send_text(orjson.dumps(envelope()))
        return b"".join(proto.data_to_send())

    return run


ONE: dict[str, Callable[[], Callable[[], bytes]]] = {
    "ours": lambda: _ours_one,
    "wsproto+json": lambda: _wsproto_one(dumps_json),
    "wsproto+orjson": lambda: _wsproto_one(dumps_orjson),
    "websockets+json": lambda: _websockets_one(dumps_json),
    "websockets+orjson": _websockets_one_orjson,
}


@pytest.mark.parametrize("name", list(ONE))
def test_encode_one(benchmark: Any, name: str) -> None:
    benchmark.group = "encode: one message.chat push, one recipient"
    got = benchmark(ONE[name]())
    assert got == EXPECTED


# ---- 1,000 recipients ------------------------------------------------------------------------------------


def _ours_many() -> Callable[[], list[bytes]]:
    wires = [_native.WS_JSON] * RECIPIENTS

    def run() -> list[bytes]:
        return _native.Outgoing("message.chat", DATA).frames(wires)

    return run


def _wsproto_per_recipient() -> Callable[[], list[bytes]]:
    conns = [wsproto_conn() for _ in range(RECIPIENTS)]

    def run() -> list[bytes]:
        text = orjson.dumps(envelope()).decode()
        return [conn.send(Message(data=text)) for conn in conns]

    return run


def _websockets_per_recipient() -> Callable[[], list[bytes]]:
    protos = [websockets_proto() for _ in range(RECIPIENTS)]

    def run() -> list[bytes]:
        payload = orjson.dumps(envelope())
        out = []
        for proto in protos:
            proto.send_text(payload)
            out.append(b"".join(proto.data_to_send()))
        return out

    return run


def _wsproto_frame_once() -> Callable[[], list[bytes]]:
    conn = wsproto_conn()

    def run() -> list[bytes]:
        frame = conn.send(Message(data=orjson.dumps(envelope()).decode()))
        return [frame] * RECIPIENTS

    return run


def _websockets_frame_once() -> Callable[[], list[bytes]]:
    proto = websockets_proto()

    def run() -> list[bytes]:
        proto.send_text(orjson.dumps(envelope()))
        frame = b"".join(proto.data_to_send())
        return [frame] * RECIPIENTS

    return run


MANY: dict[str, Callable[[], Callable[[], list[bytes]]]] = {
    "ours": _ours_many,
    "wsproto+orjson per-recipient": _wsproto_per_recipient,
    "websockets+orjson per-recipient": _websockets_per_recipient,
    "wsproto+orjson frame-once": _wsproto_frame_once,
    "websockets+orjson frame-once": _websockets_frame_once,
}


@pytest.mark.parametrize("name", list(MANY))
def test_encode_fanout(benchmark: Any, name: str) -> None:
    benchmark.group = f"encode: one message.chat push, {RECIPIENTS} recipients"
    got = benchmark(MANY[name]())
    assert len(got) == RECIPIENTS
    assert all(frame == EXPECTED for frame in got)


def test_ours_shares_one_bytes_object() -> None:
    frames = _native.Outgoing("message.chat", DATA).frames([_native.WS_JSON] * 3)
    assert frames[0] is frames[1] is frames[2]
