"""Hostile and malformed input on the socket: clear errors with the request's seq, nothing stored, no crash."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
import websockets
from helpers import Client, online

from glide.server import Server


async def test_malformed_json_gets_an_error_and_the_socket_stays_up(server: Server) -> None:
    _, alice = await online(server, "alice")
    for junk in ["{", "[]", "null", '"str"', '{"action": 5}', '{"seq":"x","action":"heartbeat"}', "\u00e9\u00e9"]:
        await alice.ws.send(junk)
        err = await alice.expect("notify.error")
        assert "decode" in err["data"]
    await alice.send("heartbeat", {})
    await alice.nothing()


async def test_unknown_action_echoes_seq_and_names_the_action(server: Server) -> None:
    _, alice = await online(server, "alice")
    seq = await alice.send("no.such.action", {})
    reply = await alice.expect("notify.unknown.action")
    assert reply == {"ver": 1, "seq": seq, "action": "notify.unknown.action", "data": "no.such.action"}


async def test_unknown_action_before_login_too(server: Server) -> None:
    client = await Client.connect(server)
    seq = await client.send("api.user.state", {})
    reply = await client.expect("notify.unknown.action")
    assert reply["seq"] == seq


@pytest.mark.parametrize(
    ("data", "to", "needle"),
    [
        ({"content": 5}, "TO", "content"),
        ({"cliMid": "a"}, "TO", "content"),
        ({"content": "x", "type": "text"}, "TO", "type"),
        ({"content": "x", "cliMid": 7}, "TO", "cliMid"),
        ({"content": "x", "cliMid": "c" * 65}, "TO", "cliMid"),
        ({"content": "x"}, None, "to"),
        ({"content": "x"}, "abc", "to"),
        ({"content": "x"}, "-5", "to"),
        ({"content": "x"}, "99999999", "exist"),
        ({"content": "x"}, "\u00b2", "to"),  # a digit to str.isdigit, not to int(): once an internal error
        ({"content": "x"}, "\u0663", "to"),  # ARABIC-INDIC THREE: int() made it uid 3
        ({"content": "x"}, "000", "to"),
        ({"content": "x"}, "9" * 19, "to"),
        ({"content": "x", "type": True}, "TO", "type"),
        ({"content": "x", "sendAt": 2**63}, "TO", "sendAt"),
        ({"content": "x", "sendAt": 1.5}, "TO", "sendAt"),
        ("a string", "TO", "data"),
        (None, "TO", "data"),
        ([1, 2], "TO", "data"),
    ],
)
async def test_bad_chat_is_refused_and_nothing_is_stored(
    server: Server, data: object, to: str | None, needle: str
) -> None:
    _, alice = await online(server, "alice")
    bob_uid, bob = await online(server, "bob")
    target = str(bob_uid) if to == "TO" else to
    seq = await alice.send("message.chat", data, to=target)
    err = await alice.expect("notify.error")
    assert err["seq"] == seq and needle in err["data"], err
    await bob.nothing(0.2)
    assert server.ctx is not None
    assert await server.ctx.store.messages.inbox(bob_uid) == []
    # the connection is still usable
    await alice.chat(bob_uid, "fine", "ok-after-error")


async def test_bad_message_in_a_batch_does_not_sink_the_others(server: Server) -> None:
    _, alice = await online(server, "alice")
    bob_uid, bob = await online(server, "bob")
    frames = [
        {"action": "message.chat", "seq": 1, "to": str(bob_uid), "data": {"cliMid": "g1", "content": "one"}},
        {"action": "message.chat", "seq": 2, "to": str(bob_uid), "data": {"cliMid": "b", "content": 1}},
        # JSON the decoder takes but Python cannot hold (once an internal error for the whole tick's batch)
        {"action": "message.chat", "seq": 4, "to": str(bob_uid), "data": {"cliMid": "s", "content": "\ud800"}},
        {"action": "message.chat", "seq": 3, "to": str(bob_uid), "data": {"cliMid": "g2", "content": "two"}},
    ]
    for f in frames:
        await alice.ws.send(json.dumps(f))
    got = [await alice.recv() for _ in range(4)]
    by_seq = {g["seq"]: g["action"] for g in got}
    assert by_seq == {1: "ack.message", 2: "notify.error", 4: "notify.error", 3: "ack.message"}
    assert "not valid JSON" in next(g["data"] for g in got if g["seq"] == 4)
    contents = [(await bob.expect("message.chat"))["data"]["content"] for _ in range(2)]
    assert contents == ["one", "two"]


async def test_a_receipt_nested_past_the_parser_does_not_sink_the_others(server: Server) -> None:
    alice_uid, alice = await online(server, "alice")
    bob_uid, bob = await online(server, "bob")
    await alice.chat(bob_uid, "hi", "n1")
    mid = (await bob.expect("message.chat"))["data"]["mid"]
    nested = '{"m":' * 5_000 + "1" + "}" * 5_000  # Gen-1's recall JSON, deeper than json.loads goes (1,000)
    await bob.ws.send(json.dumps({"action": "ack.request", "seq": 7, "data": {"content": nested}}))
    await bob.ws.send(json.dumps({"action": "ack.request", "seq": 8, "data": {"mid": mid, "from": str(alice_uid)}}))
    err = await bob.expect("notify.error")
    assert err["seq"] == 7 and "mid" in err["data"], err
    notify = await alice.expect("ack.notify")  # the good receipt of the same tick still went through
    assert notify["data"]["mid"] == mid
    await bob.nothing(0.2)


async def test_case_insensitive_keys_and_unknown_keys(server: Server) -> None:
    _, alice = await online(server, "alice")
    bob_uid, bob = await online(server, "bob")
    frame = {
        "ACTION": "message.chat",
        "Seq": 4,
        "To": str(bob_uid),
        "sign": "x",
        "whatever": [1],
        "Data": {"CliMid": "ci", "Content": "case", "TYPE": 2},
    }
    await alice.ws.send(json.dumps(frame))
    ack = await alice.expect("ack.message")
    assert ack["seq"] == 4 and ack["data"]["cliMid"] == "ci"
    m = await bob.expect("message.chat")
    assert m["data"]["content"] == "case" and m["data"]["type"] == 2


async def test_oversize_frame_closes_with_1009(servers) -> None:  # type: ignore[no-untyped-def]
    server = await servers(max_message_size=1024)
    _, alice = await online(server, "alice")
    await alice.ws.send(json.dumps({"action": "heartbeat", "data": "x" * 2000}))
    with pytest.raises(websockets.ConnectionClosed) as closed:
        while True:
            await alice.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


async def test_protocol_violation_closes_with_1002_and_server_lives_on(server: Server) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.ws_port)
    writer.write(
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101")
    writer.write(b"\x81\x05hello")  # unmasked client frame: a protocol error
    data = await asyncio.wait_for(reader.read(), 5)
    assert b"\x88" in data  # a close frame came back
    close_at = data.index(b"\x88")
    assert int.from_bytes(data[close_at + 2 : close_at + 4], "big") == 1002
    writer.close()
    _, _alice = await online(server, "alice")  # still serving


async def test_bad_handshakes_get_http_errors(server: Server) -> None:
    for request, status in [
        (b"GET /ws HTTP/1.1\r\nHost: x\r\n\r\n", b"400"),
        (
            b"GET /other HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
            b"404",
        ),
        (b"\x16\x03\x01\x00\xa5garbage-tls-hello\r\n\r\n", b"400"),
    ]:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.ws_port)
        writer.write(request)
        data = await asyncio.wait_for(reader.read(), 5)
        assert data.split(b" ")[1] == status, data
        writer.close()


async def test_garbage_flood_does_not_grow_the_server(server: Server) -> None:
    _, alice = await online(server, "alice")
    bob_uid, _ = await online(server, "bob")
    for i in range(300):
        await alice.ws.send(json.dumps({"action": "message.chat", "seq": i, "to": str(bob_uid), "data": {"x": i}}))
    for _ in range(300):
        await alice.expect("notify.error")
    conn = next(iter(server.gateway.hub.devices(bob_uid)))
    assert not conn.pending
    # nothing is left running (bob's login may still be replaying his empty inbox: that ends too)
    await asyncio.wait_for(server.dispatcher.join(), 5)
    assert len(server.dispatcher._tasks) == 0


# Values that have broken a parser before (a digit int() refuses, a JSON nested past json.loads' depth, a lone
# surrogate escape the decoder passes and Python cannot hold) and the usual wrong types and ranges, under the
# keys the actions read.
HOSTILE_VALUES: list[object] = [
    None, True, 1.5, -1, 0, 2**70, "\u00b2", "\u0663", "", "x" * 70, "\ud800", [], {}, [1],
    '{"m":' * 3000 + "1" + "}" * 3000, "9" * 25, "-5", " 5 ",
]  # fmt: skip
HOSTILE_KEYS = [
    "to", "gid", "mid", "uid", "uids", "cliMid", "content", "type", "seq", "id", "device", "token", "sendAt",
    "remark", "account", "password", "nickname", "name", "avatar", "members", "peer", "from", "after", "limit",
    "beforeMid", "lastSeq", "seqs", "count", "flag", "enabled", "data", "ticket", "role", "status",
]  # fmt: skip
LOGGING_OUT = {"api.user.logout"}  # would end the session under test


async def test_no_action_answers_hostile_payloads_with_an_internal_error(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    """Every registered action gets each hostile value under each key (and as the whole ``data``, and in ``to``):
    each request is answered with a clear error or a result, never "internal error", nothing fails in the
    background (an error logged per hostile request is a log an attacker writes), and the socket stays up."""
    assert server.dispatcher is not None
    _, alice = await online(server, "alice")
    bob_uid, _ = await online(server, "bob")
    payloads: list[object] = [v for v in HOSTILE_VALUES if v is not None]
    payloads += [{k: v} for k in HOSTILE_KEYS for v in HOSTILE_VALUES]
    payloads += [{k: v for k in HOSTILE_KEYS} for v in HOSTILE_VALUES[:-4]]  # the nested one is too big 34 times
    internal: list[tuple[str, object]] = []
    for action in sorted(set(server.dispatcher.actions()) - LOGGING_OUT):
        requests = [(p, to) for p in payloads for to in (None, "\u00b2", str(bob_uid))]
        for at in range(0, len(requests), 60):  # read the answers as we go: a reader this slow is not dropped
            for data, to in requests[at : at + 60]:
                await alice.send(action, data, to=to)
            # Envelopes are handled in order: once this one is answered, every request before it was.
            sentinel = await alice.send("no.such.action", {})
            while True:
                frame = await alice.recv()
                if "internal error" in json.dumps(frame.get("data")):
                    internal.append((action, frame))
                if frame["action"] == "notify.unknown.action" and frame["seq"] == sentinel:
                    break
    assert internal == []
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
