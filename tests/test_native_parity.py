"""Parity: the same byte streams, split at random chunk boundaries, through our Rust parser and through
wsproto (an independent sans-I/O implementation) give the same messages, errors and close codes; and
protobuf envelopes cross between Python's `protobuf` package and Rust unchanged, both ways."""

from __future__ import annotations

import itertools
import json
import os
import struct
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from proto_support import from_bytes, generate, to_bytes
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    Request,
    TextMessage,
)

from glide._native import (
    TCP_PROTO,
    BadMessage,
    Connection,
    Envelope,
    Outgoing,
    OutgoingShape,
    decode_json,
    decode_proto,
)

UPGRADE = (
    b"GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def frame(
    opcode: int, payload: bytes, *, fin: bool = True, mask: bool = True, rsv: int = 0, minimal: bool = True
) -> bytes:
    """A client frame built by hand, so that invalid ones can be made too."""
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    n = len(payload)
    m = 0x80 if mask else 0
    if n < 126 and minimal:
        head += bytes([m | n])
    elif n < 65536 and (minimal or n >= 126):
        head += bytes([m | 126]) + struct.pack(">H", n)
    else:
        head += bytes([m | 127]) + struct.pack(">Q", n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=10,
)


@st.composite
def envelope_texts(draw: st.DrawFn) -> str:
    env = {
        "action": draw(st.sampled_from(["message.chat", "heartbeat", "ack.request", "x.y"])),
        "seq": draw(st.integers(0, 2**31)),
        "to": draw(st.text(max_size=6)),
        "data": draw(json_values),
    }
    return json.dumps(env, ensure_ascii=draw(st.booleans()))


@st.composite
def pieces(draw: st.DrawFn) -> bytes:
    """One frame or fragmented message: mostly valid, sometimes each kind of violation."""
    kind = draw(
        st.sampled_from(
            [
                "text",
                "text",
                "text",
                "binary",
                "fragmented",
                "ping",
                "pong",
                "garbage_text",
                "bad_utf8",
                "unmasked",
                "rsv",
                "bad_opcode",
                "big_control",
                "fragmented_control",
                "stray_continuation",
                "close",
                "close_bad_code",
                "close_len1",
                "non_minimal",
            ]
        )
    )
    text = draw(envelope_texts()).encode()
    if kind == "text":
        return frame(1, text)
    if kind == "binary":
        return frame(2, text)
    if kind == "fragmented":
        cut = draw(st.integers(0, len(text)))
        ping = frame(9, b"mid") if draw(st.booleans()) else b""
        return frame(1, text[:cut], fin=False) + ping + frame(0, text[cut:])
    if kind == "ping":
        return frame(9, draw(st.binary(max_size=125)))
    if kind == "pong":
        return frame(10, draw(st.binary(max_size=125)))
    if kind == "garbage_text":
        return frame(1, draw(st.text(max_size=40)).encode())
    if kind == "bad_utf8":
        return frame(1, b"ok" + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80"])))
    if kind == "unmasked":
        return frame(1, text, mask=False)
    if kind == "rsv":
        return frame(1, text, rsv=draw(st.integers(1, 7)))
    if kind == "bad_opcode":
        return frame(draw(st.sampled_from([3, 4, 5, 6, 7, 11, 12, 13, 14, 15])), b"x")
    if kind == "big_control":
        return frame(9, b"p" * draw(st.integers(126, 300)))
    if kind == "fragmented_control":
        return frame(9, b"p", fin=False)
    if kind == "stray_continuation":
        return frame(0, text)
    if kind == "close":
        return frame(8, struct.pack(">H", draw(st.sampled_from([1000, 1001, 1003, 1008, 3000, 4999]))) + b"bye")
    if kind == "close_bad_code":
        return frame(8, struct.pack(">H", draw(st.sampled_from([0, 999, 1004, 1005, 1006, 1015, 2000, 5000]))))
    if kind == "close_len1":
        return frame(8, b"\x03")
    return frame(1, b"tiny", minimal=False)  # non-minimal 16/64-bit length


def ours(stream: bytes, cuts: list[int]) -> tuple[list[Any], int | None]:
    conn = Connection("ws", max_message_size=1 << 20)
    messages: list[Any] = []
    close: int | None = None
    for chunk in _split(UPGRADE + stream, cuts):
        feed = conn.feed(chunk)
        if feed is None:
            continue
        messages.extend(_normal(m) for m in feed.messages)
        if feed.close is not None and close is None:
            close = feed.close[0]
            break
    return messages, close


def theirs(stream: bytes, cuts: list[int]) -> tuple[list[Any], int | None]:
    ws = WSConnection(ConnectionType.SERVER)
    messages: list[Any] = []
    parts: list[Any] = []
    # wsproto drops bytes pipelined behind the upgrade request, so it gets the handshake on its own.
    for chunk in [UPGRADE, *_split(stream, cuts)]:
        ws.receive_data(chunk)
        progress = True
        while progress:  # accepting the handshake releases frames wsproto buffered meanwhile
            progress = False
            for event in ws.events():
                progress = True
                if isinstance(event, Request):
                    ws.send(AcceptConnection())
                elif isinstance(event, TextMessage | BytesMessage):
                    parts.append(event.data)
                    if event.message_finished:
                        whole = "".join(parts) if isinstance(event, TextMessage) else b"".join(parts)
                        parts = []
                        messages.append(_decode(whole.encode() if isinstance(whole, str) else whole))
                elif isinstance(event, CloseConnection):
                    return messages, 1000 if event.code == 1005 else event.code
                elif isinstance(event, Ping):
                    ws.send(event.response())
    return messages, None


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points) if b > a]


def _normal(m: Envelope | BadMessage) -> Any:
    if isinstance(m, BadMessage):
        return "bad"
    return (m.action, m.seq, m.to, m.data_raw)


def _decode(raw: bytes) -> Any:
    try:
        return _normal(decode_json(raw))
    except ValueError:
        return "bad"


@SETTINGS
@given(st.lists(pieces(), min_size=1, max_size=6), st.lists(st.integers(0, 10_000), max_size=8))
def test_frame_parser_matches_wsproto(frames: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(frames)
    got, want = ours(stream, cuts), theirs(stream, cuts)
    mine_close = 1000 if got[1] == 1005 else got[1]
    assert got[0] == want[0]
    assert mine_close == want[1]


def test_oversize_message_is_1009() -> None:
    conn = Connection("ws", max_message_size=100)
    conn.feed(UPGRADE)
    feed = conn.feed(frame(1, b"x" * 101))
    assert feed is not None and feed.close is not None and feed.close[0] == 1009
    feed = Connection("ws", max_message_size=100)
    feed.feed(UPGRADE)
    parts = feed.feed(frame(1, b"x" * 60, fin=False) + frame(0, b"y" * 60))
    assert parts is not None and parts.close is not None and parts.close[0] == 1009


def test_ping_is_answered_with_pong_in_to_send() -> None:
    conn = Connection("ws")
    conn.feed(UPGRADE)
    feed = conn.feed(frame(9, b"are you there"))
    assert feed is not None and feed.to_send == b"\x8a\x0dare you there"


# protobuf parity


@pytest.fixture(scope="module")
def pb(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    return generate(tmp_path_factory.mktemp("pb_parity"))


strings = st.text(max_size=12)


@given(
    action=st.text(min_size=1, max_size=20),
    seq=st.integers(-(2**63), 2**63 - 1),
    sender=strings,
    to=strings,
    ticket=strings,
    data=json_values,
    extra=st.dictionaries(strings, strings, max_size=3),
)
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_python_protobuf_decodes_identically_in_rust(
    pb: ModuleType, action: str, seq: int, sender: str, to: str, ticket: str, data: Any, extra: dict[str, str]
) -> None:
    raw = to_bytes(pb, action, data, seq=seq, ticket=ticket, extra=extra, **{"from": sender, "to": to})
    env = decode_proto(raw)
    assert (env.action, env.seq, env.sender, env.to, env.ticket) == (action, seq, sender, to, ticket)
    assert (env.extra or {}) == extra
    assert _ints(env.data()) == _ints(data)


@given(
    action=st.text(min_size=1, max_size=20),
    seq=st.integers(-(2**63), 2**63 - 1),
    sender=strings,
    to=strings,
    data=json_values,
)
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_rust_protobuf_decodes_identically_in_python(
    pb: ModuleType, action: str, seq: int, sender: str, to: str, data: Any
) -> None:
    framed = Outgoing(action, data, seq=seq, sender=sender, to=to).frame(TCP_PROTO)
    assert struct.unpack(">I", framed[:4])[0] == len(framed) - 4
    got = from_bytes(pb, framed[4:])
    assert got["action"] == action and got.get("seq", 0) == seq
    assert got.get("from", "") == sender and got.get("to", "") == to
    assert _ints(got.get("data")) == _ints(data)


def _ints(value: Any) -> Any:
    """Compare numbers as protobuf's Value carries them (doubles), keeping ints exact below 2^53."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, dict):
        return {k: _ints(v) for k, v in value.items()}
    return [_ints(v) for v in value]


def test_decode_errors_are_values_not_crashes(tmp_path: Path) -> None:
    for bad in [b"", b"\x08", b"\xff\xff\xff\xff", b"\x1a\x05ab", b"\x32\x02\x08\x99"]:
        with pytest.raises(ValueError):
            decode_proto(bad)
    for bad in [b"", b"{", b"[]", b'{"action":1}', b'{"seq":1.5,"action":"a"}', b"\xff"]:
        with pytest.raises(ValueError):
            decode_json(bad)


# OutgoingShape: a dict's frames without the dict

shape_values = json_values | st.sampled_from(["a<b>&c", "\u2028\u2029", 2**64, -(2**70), {"<k>": [1]}, {"a&": {}}])
shape_keys = st.sampled_from(["cliMid", "mid", "from", "to", "k", "\u00e9", ""])


@given(st.lists(st.tuples(shape_keys, shape_values), max_size=8))
def test_outgoing_shape_frames_equal_the_dicts(pairs: list[tuple[str, Any]]) -> None:
    pairs = list(dict(pairs).items())  # a dict's keys are unique
    keys, values = [k for k, _ in pairs], tuple(v for _, v in pairs)
    shape = OutgoingShape("message.chat", keys)
    built, plain = shape(values, seq=9), Outgoing("message.chat", dict(pairs), seq=9)
    assert [built.frame(w) for w in range(4)] == [plain.frame(w) for w in range(4)]


def test_outgoing_shape_refuses_what_a_dict_would_not_give() -> None:
    shape = OutgoingShape("ack.notify", ["mid", "from"])
    with pytest.raises(ValueError, match="expected 2 values"):
        shape((1,))
    with pytest.raises(ValueError, match="not JSON-serialisable"):
        shape((1, object()))
    with pytest.raises(ValueError, match="NaN"):
        shape((1, float("nan")))
    with pytest.raises(ValueError, match="Go"):
        OutgoingShape("x", ["a<b"])
    assert shape.action == "ack.notify" and shape.keys == ["mid", "from"]
