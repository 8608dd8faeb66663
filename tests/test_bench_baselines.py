"""The baseline servers of ``bench/baselines``: GlideIM's 1:1 two-ack relay, checked with the independent
``websockets`` client library (login by JWT uid, relay, both acks, offline notice, bad input)."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
import websockets

from glide.bench.servers import ServerProcess, start_server
from glide.bench.users import mint_jwt


@pytest.fixture(scope="module", params=["websockets", "picows"])
def baseline(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = start_server(request.param, tmp_path_factory.mktemp(request.param))
    yield proc
    assert proc.stop() is not None


async def recv(ws: websockets.ClientConnection) -> dict[str, Any]:
    """The next frame that is not a heartbeat."""
    while True:
        msg = json.loads(await ws.recv(decode=True))
        if msg.get("action") != "heartbeat":
            return msg  # type: ignore[no-any-return]


async def login(url: str, secret: str, uid: int) -> websockets.ClientConnection:
    ws = await websockets.connect(url)
    assert (await recv(ws))["action"] == "hello"
    await ws.send(json.dumps({"action": "api.auth", "seq": 1, "data": {"Token": mint_jwt(secret, uid)}}))
    reply = await recv(ws)
    assert reply["action"] == "api.success" and reply["seq"] == 1
    assert reply["data"]["Uid"] == str(uid)
    return ws


async def test_relay_with_both_acks(baseline: ServerProcess) -> None:
    assert baseline.jwt_secret
    alice = await login(baseline.ws_url, baseline.jwt_secret, 1)
    bob = await login(baseline.ws_url, baseline.jwt_secret, 2)
    chat = {"cliMid": "C1", "content": "hello", "type": 1, "sendAt": 1690000000123}
    await alice.send(json.dumps({"action": "message.chat", "seq": 2, "to": "2", "data": chat}))
    ack = await recv(alice)
    assert ack["action"] == "ack.message" and ack["data"]["cliMid"] == "C1"
    mid = ack["data"]["mid"]
    got = await recv(bob)
    assert got["action"] == "message.chat"
    assert got["data"] | {} == {"cliMid": "C1", "mid": mid, "from": "1", "to": "2"} | chat
    await bob.send(json.dumps({"action": "ack.request", "seq": 2, "data": {"mid": mid, "from": "1"}}))
    receipt = await recv(alice)
    assert receipt == {"ver": 1, "action": "ack.notify", "data": {"mid": mid, "from": "2"}}
    await alice.close()
    await bob.close()


async def test_offline_receiver_gets_an_immediate_notice(baseline: ServerProcess) -> None:
    assert baseline.jwt_secret
    alice = await login(baseline.ws_url, baseline.jwt_secret, 1)
    await alice.send(json.dumps({"action": "message.chat", "seq": 2, "to": "99", "data": {"cliMid": "X"}}))
    ack = await recv(alice)
    assert ack["action"] == "ack.message"
    notice = await recv(alice)
    assert notice["action"] == "ack.notify" and notice["data"] == {"mid": ack["data"]["mid"]}
    await alice.close()


async def test_bad_input_gets_answers_not_crashes(baseline: ServerProcess) -> None:
    assert baseline.jwt_secret
    ws = await websockets.connect(baseline.ws_url)
    assert (await recv(ws))["action"] == "hello"
    await ws.send(json.dumps({"action": "message.chat", "seq": 3, "to": "2", "data": {}}))
    assert await recv(ws) == {"ver": 1, "action": "notify.error", "data": "not logged in", "seq": 3}
    forged = mint_jwt(secrets.token_hex(16), 1)  # signed with another secret
    await ws.send(json.dumps({"action": "api.auth", "seq": 4, "data": {"Token": forged}}))
    assert (await recv(ws))["action"] == "api.failed"
    await ws.send("{not json")
    assert (await recv(ws))["action"] == "notify.error"
    await ws.send(json.dumps({"action": "api.auth", "seq": 5, "data": {"Token": mint_jwt(baseline.jwt_secret, 7)}}))
    assert (await recv(ws))["action"] == "api.success"
    await ws.send(json.dumps({"action": "no.such.action", "seq": 6}))
    assert await recv(ws) == {"ver": 1, "action": "notify.unknown.action", "data": "no.such.action", "seq": 6}
    await ws.send(json.dumps([1, 2, 3]))  # not an envelope: ignored, connection stays usable
    await ws.send(json.dumps({"action": "heartbeat", "seq": 7}))
    await ws.send(json.dumps({"action": "no.such.action", "seq": 8}))
    assert (await recv(ws))["seq"] == 8
    await ws.close()


async def test_second_login_kicks_the_first_out(baseline: ServerProcess) -> None:
    assert baseline.jwt_secret
    first = await login(baseline.ws_url, baseline.jwt_secret, 5)
    second = await login(baseline.ws_url, baseline.jwt_secret, 5)
    assert (await recv(first))["action"] == "notify.kickout"
    await first.wait_closed()
    other = await login(baseline.ws_url, baseline.jwt_secret, 6)
    await other.send(json.dumps({"action": "message.chat", "seq": 2, "to": "5", "data": {"cliMid": "K"}}))
    assert (await recv(other))["action"] == "ack.message"
    assert (await recv(second))["data"]["cliMid"] == "K"
    await second.close()
    await other.close()


def test_a_started_server_shares_the_bench_session_in_a_process_group_of_its_own(baseline: ServerProcess) -> None:
    # Its own group: a Ctrl-C at the terminal reaches the bench, which stops it. The bench's session: with the
    # kernel's autogroup scheduling a session of its own would make it a scheduling group of its own, and its
    # CPU would be balanced against the bench's as a group (glide.bench.servers.start_server).
    assert os.getpgid(baseline.pid) == baseline.pid != os.getpgid(0)
    assert os.getsid(baseline.pid) == os.getsid(0)
