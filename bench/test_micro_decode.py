"""Parse + decode one ~150-byte chat frame: glide's native Connection against the Python paths.

Every implementation is a server-side WebSocket connection that has completed its handshake; each
iteration hands it one socket read (one frame, or 100 frames in the batch variant), then reads every
envelope's ``action``, ``seq``, ``to`` and parsed ``data`` the way a handler would. The test asserts that
all implementations produce the same envelopes, so the file also passes as plain tests
(``--benchmark-disable``), and never asserts on time.

picows has no sans-I/O API, but its ``WSProtocol`` is an ``asyncio.BufferedProtocol``: it is driven here
exactly like the event loop drives it (``get_buffer`` -> copy the read into it -> ``buffer_updated``), over a
stand-in transport that holds an unconnected socket, so its Cython frame parser runs with no I/O at all.

Besides the full path (``ours``: ``Envelope.data()``), two rows split our cost: ``ours+orjson(data_raw)``
parses ``data`` with orjson instead, ``ours-envelope-only`` keeps ``data`` raw (a forwarding handler); the
latter's counterpart is ``picows-parser-only`` (frames unmasked and copied out, no JSON, no UTF-8 check).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import socket
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import picows
import pytest
from picows.picows import WSProtocol  # type: ignore[attr-defined]
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.server import ServerProtocol
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, TextMessage
from wsproto.events import Request as WsprotoRequest

from glide import _native

BATCH = 100

PAYLOAD = json.dumps(
    {
        "action": "message.chat",
        "seq": 5,
        "to": "2",
        "data": {
            "cliMid": "9F2C0A1B4D5E6F70",
            "content": "hello, lunch at noon",
            "type": 1,
            "sendAt": 1690000000123,
        },
    },
    separators=(",", ":"),
).encode()

UPGRADE = (
    b"GET /ws HTTP/1.1\r\n"
    b"Host: localhost:8080\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\n"
    b"\r\n"
)
ACCEPT = b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def client_frame(payload: bytes, mask: bytes = b"\x37\xfa\x21\x3d") -> bytes:
    """One masked, unfragmented client text frame (RFC 6455 section 5.2)."""
    size = len(payload)
    if size < 126:
        header = bytes([0x81, 0x80 | size])
    elif size < 1 << 16:
        header = bytes([0x81, 0x80 | 126]) + size.to_bytes(2, "big")
    else:
        header = bytes([0x81, 0x80 | 127]) + size.to_bytes(8, "big")
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return header + mask + masked


FRAME = client_frame(PAYLOAD)
FRAMES = FRAME * BATCH

Decoded = tuple[str, int, str, Any]
_doc = json.loads(PAYLOAD)
EXPECTED: Decoded = (_doc["action"], _doc["seq"], _doc["to"], _doc["data"])
DATA_RAW = json.dumps(_doc["data"], separators=(",", ":")).encode()


class Ours:
    """glide's native core: one ``feed`` per read returns every decoded envelope.

    ``data`` selects how the handler gets ``data``: ``"native"`` is ``Envelope.data()``, ``"orjson"`` parses
    ``data_raw`` with orjson, ``"raw"`` keeps the raw JSON bytes (a handler that forwards ``data`` untouched).
    """

    def __init__(self, data: str = "native") -> None:
        self.data = data
        self.conn = _native.Connection("ws")
        feed = self.conn.feed(UPGRADE)
        assert feed is not None and feed.opened and feed.to_send is not None
        assert ACCEPT in feed.to_send

    def read(self, data: bytes) -> list[Decoded]:
        feed = self.conn.feed(data)
        out: list[Decoded] = []
        if feed is None:  # a partial frame
            return out
        if self.data == "native":
            for env in feed.messages:
                assert isinstance(env, _native.Envelope)
                out.append((env.action, env.seq, env.to, env.data()))
        elif self.data == "orjson":
            for env in feed.messages:
                assert isinstance(env, _native.Envelope)
                out.append((env.action, env.seq, env.to, orjson.loads(env.data_raw or b"null")))
        else:
            for env in feed.messages:
                assert isinstance(env, _native.Envelope)
                out.append((env.action, env.seq, env.to, env.data_raw))
        return out


class Wsproto:
    """wsproto's sans-I/O connection, then json/orjson on each text message."""

    def __init__(self, loads: Callable[[str], Any]) -> None:
        self.loads = loads
        self.pending: list[str] = []
        self.conn = WSConnection(ConnectionType.SERVER)
        self.conn.receive_data(UPGRADE)
        events = list(self.conn.events())
        assert len(events) == 1 and isinstance(events[0], WsprotoRequest)
        assert ACCEPT in self.conn.send(AcceptConnection())

    def read(self, data: bytes) -> list[Decoded]:
        self.conn.receive_data(data)
        loads = self.loads
        out: list[Decoded] = []
        for event in self.conn.events():
            assert isinstance(event, TextMessage)
            # wsproto hands out what has arrived of a message; a handler must join the pieces.
            if not event.message_finished:
                self.pending.append(event.data)
                continue
            text = event.data
            if self.pending:
                text = "".join(self.pending) + text
                self.pending.clear()
            doc = loads(text)
            out.append((doc["action"], doc["seq"], doc["to"], doc["data"]))
        return out


class Websockets:
    """websockets' sans-I/O ``ServerProtocol``, then json/orjson on each text frame."""

    def __init__(self, loads: Callable[[Any], Any]) -> None:
        self.loads = loads
        self.proto = ServerProtocol()
        self.proto.receive_data(UPGRADE)
        events = self.proto.events_received()
        assert len(events) == 1 and isinstance(events[0], Request)
        self.proto.send_response(self.proto.accept(events[0]))
        assert ACCEPT in b"".join(self.proto.data_to_send())

    def read(self, data: bytes) -> list[Decoded]:
        self.proto.receive_data(data)
        loads = self.loads
        out: list[Decoded] = []
        for frame in self.proto.events_received():
            assert isinstance(frame, Frame) and frame.opcode is Opcode.TEXT
            doc = loads(frame.data)
            out.append((doc["action"], doc["seq"], doc["to"], doc["data"]))
        return out


class _StandInTransport:
    """Just enough of an asyncio transport for picows: writes are kept, never sent.

    ``get_write_buffer_size`` reports queued data so that picows never takes its ``send(2)`` fast path on the
    socket's descriptor (the socket is never connected).
    """

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.written: list[bytes] = []

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        extra = {"socket": self.sock, "peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8080)}
        return extra.get(name, default)

    def get_write_buffer_size(self) -> int:
        return 1

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written.append(bytes(data))

    def writelines(self, chunks: list[bytes | bytearray | memoryview]) -> None:
        for chunk in chunks:
            self.write(chunk)

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        self.sock.close()

    def abort(self) -> None:
        self.sock.close()


class _PayloadOnly(picows.WSListener):
    """Copies every payload out while picows still owns the memory; no JSON."""

    def __init__(self) -> None:
        super().__init__()
        self.out: list[Any] = []

    def on_ws_frame(self, transport: picows.WSTransport, frame: picows.WSFrame) -> None:
        self.out.append(frame.get_payload_as_bytes())


class _Decode(_PayloadOnly):
    """Decodes every payload straight from picows' buffer, as a picows handler would."""

    def __init__(self, loads: Callable[[memoryview], Any]) -> None:
        super().__init__()
        self.loads = loads

    def on_ws_frame(self, transport: picows.WSTransport, frame: picows.WSFrame) -> None:
        doc = self.loads(frame.get_payload_as_memoryview())
        self.out.append((doc["action"], doc["seq"], doc["to"], doc["data"]))


class Picows:
    """picows' Cython frame parser fed like asyncio feeds a BufferedProtocol.

    ``loads`` is None for the parser alone (payload copied out as bytes, no JSON), else it decodes the payload
    straight from picows' buffer (orjson reads a memoryview; json needs bytes).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, loads: Callable[[memoryview], Any] | None) -> None:
        self.transport = _StandInTransport()
        listener = _PayloadOnly() if loads is None else _Decode(loads)
        self.listener = listener

        async def make() -> Any:
            # WSProtocol grabs the running loop in __init__; nothing else here needs one.
            return WSProtocol(
                None, None, False, lambda _request: listener, _QUIET, True, None,
                False, 20.0, 20.0, picows.WSAutoPingStrategy.PING_WHEN_IDLE, True, 1 << 20, None, 1 << 16,
            )  # fmt: skip

        self.proto = loop.run_until_complete(make())
        self.proto.connection_made(self.transport)
        self._push(UPGRADE)
        assert ACCEPT in b"".join(self.transport.written)

    def _push(self, data: bytes) -> None:
        size = len(data)
        self.proto.get_buffer(-1)[:size] = data
        self.proto.buffer_updated(size)

    def read(self, data: bytes) -> list[Any]:
        self._push(data)
        out, self.listener.out = self.listener.out, []
        return out

    def close(self) -> None:
        self.transport.close()


_QUIET = logging.getLogger("bench.picows")
_QUIET.setLevel(logging.WARNING)


def _orjson_from_buffer(buf: memoryview) -> Any:
    return orjson.loads(buf)


def _json_from_buffer(buf: memoryview) -> Any:
    return json.loads(bytes(buf))


IMPLS = [
    "ours",
    "ours+orjson(data_raw)",
    "ours-envelope-only",
    "wsproto+json",
    "wsproto+orjson",
    "websockets+json",
    "websockets+orjson",
    "picows+json",
    "picows+orjson",
    "picows-parser-only",
]


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture
def impl(request: pytest.FixtureRequest, loop: asyncio.AbstractEventLoop) -> Iterator[Any]:
    name: str = request.param
    made: Any
    if name.startswith("ours"):
        made = Ours({"ours": "native", "ours+orjson(data_raw)": "orjson", "ours-envelope-only": "raw"}[name])
    elif name.startswith("wsproto+"):
        made = Wsproto(json.loads if name.endswith("+json") else orjson.loads)
    elif name.startswith("websockets+"):
        made = Websockets(json.loads if name.endswith("+json") else orjson.loads)
    elif name.startswith("picows"):
        loads = {"picows+json": _json_from_buffer, "picows+orjson": _orjson_from_buffer}.get(name)
        made = Picows(loop, loads)
    else:
        raise AssertionError(name)
    yield made
    if isinstance(made, Picows):
        made.close()


def _check(name: str, got: list[Any], count: int) -> None:
    if name == "picows-parser-only":
        assert got == [PAYLOAD] * count
    elif name == "ours-envelope-only":
        assert got == [(*EXPECTED[:3], DATA_RAW)] * count
    else:
        assert got == [EXPECTED] * count


def test_frame_is_typical() -> None:
    assert 140 <= len(FRAME) <= 160
    assert len(FRAMES) == BATCH * len(FRAME)


@pytest.mark.parametrize("impl", IMPLS, indirect=True)
def test_decode_one(benchmark: Any, impl: Any, request: pytest.FixtureRequest) -> None:
    benchmark.group = f"decode: one {len(FRAME)}-byte chat frame per read"
    got = benchmark(impl.read, FRAME)
    _check(request.node.callspec.params["impl"], got, 1)


@pytest.mark.parametrize("impl", IMPLS, indirect=True)
def test_decode_batch(benchmark: Any, impl: Any, request: pytest.FixtureRequest) -> None:
    benchmark.group = f"decode: {BATCH} chat frames in one read"
    got = benchmark(impl.read, FRAMES)
    _check(request.node.callspec.params["impl"], got, BATCH)


@pytest.mark.parametrize("impl", IMPLS, indirect=True)
def test_split_reads_agree(impl: Any, request: pytest.FixtureRequest) -> None:
    """The same bytes cut at awkward places give the same envelopes (no benchmark, a guard on the drivers)."""
    data = FRAMES[: 3 * len(FRAME)]
    # Reads of [0,1), [1,7), [7,n+3), [n+3,2n-1), [2n-1,3n): mid-header, mid-mask, mid-payload cuts.
    bounds = [0, 1, 7, len(FRAME) + 3, 2 * len(FRAME) - 1, len(data)]
    got: list[Any] = []
    for lo, hi in itertools.pairwise(bounds):
        got.extend(impl.read(data[lo:hi]))
    _check(request.node.callspec.params["impl"], got, 3)
