"""The extension reads the plain ``message.chat`` and ``ack.request`` without building ``data``
(``Envelope.chat_fields`` / ``mid_ref``); the Python readers of any shape stay the reference. For every
request, hostile ones included, the two agree: the same fields, or the fast path declines and the general
one gives its precise error."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from proto_support import generate, to_bytes

from glide._native import Envelope, decode_json, decode_proto
from glide.chat.payload import parse_chat, parse_chat_data, parse_mid_ref, parse_mid_ref_data
from glide.errors import BadRequest
from glide.records import quick_init
from glide.store.base import ChatMessage, NewChat

SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CHAT_KEYS = ["to", "content", "cliMid", "type", "sendAt"]
REF_KEYS = ["mid", "cliMid", "content"]


def variants(names: list[str]) -> st.SearchStrategy[str]:
    """The names, their case variants (GlideIM's keys are case-insensitive), the Kelvin sign (the one
    non-ASCII character Python lowercases to ASCII) and other keys."""
    return (
        st.sampled_from(names)
        | st.sampled_from(names).flatmap(
            lambda name: st.builds(
                lambda flips: "".join(c.swapcase() if f else c for c, f in zip(name, flips, strict=False)),
                st.lists(st.booleans(), min_size=len(name), max_size=len(name)),
            )
        )
        | st.sampled_from(["\u212a", "Kind", "\u212aind", "from", "x", "İd"])
    )


scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**64), 2**64)
    | st.sampled_from([0, 1, -1, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 1.0, 1.5, 1e300])
    | st.text(max_size=70)
    | st.sampled_from(["", "0", "7", "0007", "9" * 19, "9" * 20, "9223372036854775808", "\u0661", "+1", " 1", "x" * 65])
    | st.builds(lambda n: str(n), st.integers(-5, 2**64))
    | st.just([])
    | st.just({"mid": 5})
    | st.just('{"mid": 5}')
    | st.sampled_from(
        ["\ud800", "a\udc00b", ["\udbff"], {"\ud800": 1}]
    )  # json.dumps escapes them; Python's data() refuses
)


def data_text(pairs: list[tuple[str, Any]]) -> str:
    """A JSON object written pair by pair, so that it may repeat a key (later ones win in both readers)."""
    return "{" + ",".join(f"{json.dumps(k)}:{json.dumps(v)}" for k, v in pairs) + "}"


def outcome(fn: Any, *args: Any) -> tuple[str, Any]:
    """What a reader gives: its fields, or the error the client is answered with."""
    try:
        return "ok", fn(*args)
    except BadRequest as e:
        return "error", e.message


def envelope(action: str, to: str, data: str) -> Envelope:
    return decode_json(
        json.dumps({"action": action, "seq": 3, "to": to}).encode()[:-1] + b',"data":' + data.encode() + b"}"
    )


@SETTINGS
@given(
    st.sampled_from(["", "2", "0", "x", "9223372036854775808"]),
    st.lists(st.tuples(variants(CHAT_KEYS), scalars), max_size=7),
)
@example("2", [("content", "hi"), ("cliMid", "c1"), ("type", 1), ("sendAt", 1690000000123)])
@example("", [("to", 7), ("content", "hi"), ("sendAt", 0)])
@example("", [("to", "7"), ("content", "a"), ("content", 5)])
@example("2", [("content", "a"), ("Content", "b")])
@example("2", [("content", "a"), ("T\u212aPE", 3), ("type", None)])
@example("2", [("content", "a"), ("x", "\ud800")])
def test_chat_fields_agree_with_the_general_reader(to: str, pairs: list[tuple[str, Any]]) -> None:
    env = envelope("message.chat", to, data_text(pairs))
    assert outcome(parse_chat, env, 1, 99, 1000) == outcome(parse_chat_data, env, 1, 99, 1000)


@SETTINGS
@given(st.lists(st.tuples(variants(REF_KEYS), scalars), max_size=5))
@example([("mid", 5), ("from", "1")])
@example([("mid", 5), ("MID", 6)])
@example([("mid", 0), ("content", '{"mid": 9}')])
@example([("cliMid", "c"), ("mid", -3)])
@example([("mid", 5), ("x", ["\udbff"])])
def test_mid_ref_agrees_with_the_general_reader(pairs: list[tuple[str, Any]]) -> None:
    env = envelope("ack.request", "", data_text(pairs))
    assert outcome(parse_mid_ref, env) == outcome(parse_mid_ref_data, env)


@pytest.mark.parametrize(
    "data",
    [
        b"[]",
        b"null",
        b'"text"',
        b'{"content":"\\ud800"}',
        b'{"content":"a","type":1e400}',
        b'{"content":"a","type":123456789012345678901234567890}',
        b'{"content":"a","x":"\\ud800"}',
        b'{"content":"a","mid":5,"x":[1e400]}',
        b'{"content":"a","mid":5,"x":{"\\udfff":0}}',
    ],
)
def test_text_only_the_general_reader_takes_is_left_to_it(data: bytes) -> None:
    """Not an object, lone surrogates, numbers past 64 bits or the double range: the fast path declines, and
    the general one reads or refuses them as before."""
    env = decode_json(b'{"action":"message.chat","seq":1,"to":"2","data":' + data + b"}")
    assert env.chat_fields() is None
    assert env.mid_ref() is None
    assert outcome(parse_chat, env, 1, 99, 1000) == outcome(parse_chat_data, env, 1, 99, 1000)


def test_no_data_is_the_general_readers_error() -> None:
    env = decode_json(b'{"action":"message.chat","seq":1,"to":"2"}')
    assert env.chat_fields() is None and env.mid_ref() is None
    assert outcome(parse_chat, env, 1, 99, 1000) == ("error", "data: expected an object")


def test_protobuf_envelopes_take_the_fast_path_too(tmp_path: Path) -> None:
    """A protobuf client's ``data`` (a ``google.protobuf.Value``) reaches the readers as JSON text too."""
    pb = generate(tmp_path)
    data = {"content": "hi", "cliMid": "c", "sendAt": 1690000000123}
    proto_env = decode_proto(to_bytes(pb, "message.chat", data, seq=1, to="2"))
    json_env = decode_json(b'{"action":"message.chat","seq":1,"to":"2","data":' + json.dumps(data).encode() + b"}")
    assert proto_env.chat_fields() == json_env.chat_fields() == (2, "c", "hi", 1, 1690000000123)


def test_quick_init_builds_the_same_frozen_record() -> None:
    m = ChatMessage(5, "c", 1, 2, 1, "hi", 10, 11, 0, None, receiver_seq=4)
    assert (m.mid, m.receiver_seq, m.sender_seq, m.recalled_by) == (5, 4, 0, None)
    assert m == ChatMessage(5, "c", 1, 2, 1, "hi", 10, 11, 0, None, 0, 4)
    assert hash(m) == hash(ChatMessage(5, "c", 1, 2, 1, "hi", 10, 11, 0, None, 0, 4))
    with pytest.raises(AttributeError):
        m.mid = 6  # type: ignore[misc]
    with pytest.raises(TypeError):
        NewChat(1, "c", 1, 2, 1, "hi")  # type: ignore[call-arg]
    assert repr(NewChat(1, "c", 1, 2, 1, "hi", 3)) == (
        "NewChat(mid=1, cli_mid='c', sender=1, receiver=2, type=1, content='hi', send_at=3)"
    )


def test_quick_init_refuses_what_it_cannot_build() -> None:
    @dataclasses.dataclass(frozen=True)
    class NoSlots:
        a: int

    @dataclasses.dataclass(slots=True)
    class NotFrozen:
        a: int

    @dataclasses.dataclass(frozen=True, slots=True)
    class Factory:
        a: list[int] = dataclasses.field(default_factory=list)

    for cls in (NoSlots, NotFrozen, Factory, int):
        with pytest.raises(TypeError):
            quick_init(cls)
