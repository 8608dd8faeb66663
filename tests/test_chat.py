"""1:1 chat end to end: two-phase acks, offline inbox, dedup, ordering, resend, recall, typing relay."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from helpers import Client, make_user, online

from glide.server import Server


async def test_two_phase_ack_flow(server: Server) -> None:
    alice_uid, alice = await online(server, "alice")
    bob_uid, bob = await online(server, "bob")

    ack = await alice.chat(bob_uid, "hello", "CLI-1")
    mid = ack["data"]["mid"]
    assert isinstance(mid, int) and 0 < mid < 2**53

    msg = await bob.expect("message.chat")
    assert msg["ver"] == 1
    assert msg["data"] == {
        "cliMid": "CLI-1",
        "mid": mid,
        "from": str(alice_uid),
        "to": str(bob_uid),
        "type": 1,
        "content": "hello",
        "sendAt": 1,
    }
    await bob.send("ack.request", {"mid": mid, "from": str(alice_uid)}, to=str(alice_uid))
    notify = await alice.expect("ack.notify")
    assert notify["data"]["mid"] == mid
    # a second ack of the same message does not notify twice
    await bob.send("ack.request", {"mid": mid, "from": str(alice_uid)})
    await alice.nothing()


async def test_from_is_overwritten_with_the_logged_in_uid(server: Server) -> None:
    alice_uid, alice = await online(server, "alice")
    bob_uid, bob = await online(server, "bob")
    await alice.send(
        "message.chat",
        {"cliMid": "x", "content": "hi", "from": "31337", "to": str(bob_uid)},
        to=str(bob_uid),
        **{"from": "31337"},
    )
    await alice.expect("ack.message")
    msg = await bob.expect("message.chat")
    assert msg["data"]["from"] == str(alice_uid)


async def test_offline_receiver_gets_ack_notify_now_and_messages_on_login(server: Server) -> None:
    alice_uid, alice = await online(server, "alice")
    bob_uid, bob_token = await make_user(server, "bob")
    mids = []
    for i in range(5):
        ack = await alice.chat(bob_uid, f"m{i}", f"c{i}")
        mids.append(ack["data"]["mid"])
        notify = await alice.expect("ack.notify")
        assert notify["data"] == {"mid": mids[-1]}
    assert mids == sorted(mids)

    bob = await Client.connect(server)
    await bob.login(bob_token)
    got = [await bob.expect("message.chat") for _ in mids]
    assert [m["data"]["mid"] for m in got] == mids
    assert [m["data"]["content"] for m in got] == [f"m{i}" for i in range(5)]
    # acknowledge the first two only: the rest come again on the next login
    for m in got[:2]:
        await bob.send("ack.request", {"mid": m["data"]["mid"], "from": str(alice_uid)})
    await alice.expect("ack.notify")
    await alice.expect("ack.notify")
    await bob.close()

    bob = await Client.connect(server)
    await bob.login(bob_token)
    again = [await bob.expect("message.chat") for _ in mids[2:]]
    assert [m["data"]["mid"] for m in again] == mids[2:]
    await bob.send("ack.offline", {})
    await bob.nothing()
    await bob.close()

    bob = await Client.connect(server)
    await bob.login(bob_token)
    await bob.nothing()


async def test_duplicate_cli_mid_returns_same_mid_and_delivers_once(server: Server) -> None:
    _, alice = await online(server, "alice")
    bob_uid, bob = await online(server, "bob")
    first = await alice.chat(bob_uid, "once", "SAME")
    second = await alice.chat(bob_uid, "once", "SAME")
    retry = await alice.send("message.chat.retry", {"cliMid": "SAME", "content": "once"}, to=str(bob_uid))
    third = await alice.expect("ack.message")
    assert third["seq"] == retry
    assert first["data"]["mid"] == second["data"]["mid"] == third["data"]["mid"]
    await bob.expect("message.chat")
    await bob.nothing()


async def test_duplicates_inside_one_socket_read(server: Server) -> None:
    _, alice = await online(server, "alice")
    bob_uid, bob = await online(server, "bob")
    import json

    frame = json.dumps({"action": "message.chat", "data": {"cliMid": "dup", "content": "x"}, "to": str(bob_uid)})
    await alice.ws.send(frame)
    await alice.ws.send(frame)
    a = await alice.expect("ack.message")
    b = await alice.expect("ack.message")
    assert a["data"]["mid"] == b["data"]["mid"]
    await bob.expect("message.chat")
    await bob.nothing()


async def test_order_is_kept_per_sender(servers: Callable[..., Any]) -> None:
    n = 300
    server = await servers(message_burst=n)  # all pipelined at once: within the rate limit's burst
    _, alice = await online(server, "alice")
    bob_uid, bob = await online(server, "bob")
    for i in range(n):
        await alice.send("message.chat", {"cliMid": f"o{i}", "content": str(i)}, to=str(bob_uid))
    contents = [int((await bob.expect("message.chat"))["data"]["content"]) for _ in range(n)]
    assert contents == list(range(n))
    acks = [await alice.expect("ack.message") for _ in range(n)]
    mids = [a["data"]["mid"] for a in acks]
    assert mids == sorted(mids) and len(set(mids)) == n


async def test_every_device_of_the_receiver_gets_it(server: Server) -> None:
    _, alice = await online(server, "alice")
    bob_uid, bob1 = await online(server, "bob", device="1")
    assert server.ctx is not None
    bob2 = await Client.connect(server)
    await bob2.login(server.ctx.tokens.issue(bob_uid, "2"))
    ack = await alice.chat(bob_uid, "to both", "both")
    for c in (bob1, bob2):
        m = await c.expect("message.chat")
        assert m["data"]["mid"] == ack["data"]["mid"]


async def test_resend_pushes_the_stored_message_again(server: Server) -> None:
    _alice_uid, alice = await online(server, "alice")
    bob_uid, bob = await online(server, "bob")
    ack = await alice.chat(bob_uid, "r", "R1")
    mid = ack["data"]["mid"]
    await bob.expect("message.chat")
    seq = await alice.send("message.chat.resend", {"mid": mid, "cliMid": "R1"}, to=str(bob_uid))
    again = await alice.expect("ack.message")
    assert again["seq"] == seq and again["data"]["mid"] == mid
    m = await bob.expect("message.chat")
    assert m["data"]["mid"] == mid
    # somebody else's message cannot be resent
    _, eve = await online(server, "eve")
    seq = await eve.send("message.chat.resend", {"mid": mid}, to=str(bob_uid))
    err = await eve.expect("notify.error")
    assert err["seq"] == seq


async def test_recall_notifies_both_sides_and_history_shows_it(server: Server) -> None:
    alice_uid, alice = await online(server, "alice", device="1")
    assert server.ctx is not None
    alice2 = await Client.connect(server)
    await alice2.login(server.ctx.tokens.issue(alice_uid, "2"))
    bob_uid, bob = await online(server, "bob")
    mid = (await alice.chat(bob_uid, "oops", "RC"))["data"]["mid"]
    await bob.expect("message.chat")

    seq = await alice.send("message.chat.recall", {"mid": mid, "cliMid": "RC-recall"}, to=str(bob_uid))
    ack = await alice.expect("ack.message")
    assert ack["seq"] == seq and ack["data"]["mid"] == mid
    for c in (bob, alice2):
        notice = await c.expect("message.chat.recall")
        assert notice["data"]["mid"] == mid and notice["data"]["recallBy"] == str(alice_uid)

    # only the author may recall
    seq = await bob.send("message.chat.recall", {"mid": mid})
    assert (await bob.expect("notify.error"))["seq"] == seq

    token = server.ctx.tokens.issue(bob_uid, "9")
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}/api") as http:
        r = await http.post("/msg/chat/history", json={"Uid": alice_uid}, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    rows = r.json()["Data"]
    assert next(row for row in rows if _mid(row) == mid)
    assert _status(next(row for row in rows if _mid(row) == mid)) == 1


async def test_recall_after_the_window_is_refused(servers) -> None:  # type: ignore[no-untyped-def]
    server = await servers(recall_window_s=0)
    _, alice = await online(server, "alice")
    bob_uid, _ = await online(server, "bob")
    mid = (await alice.chat(bob_uid, "too late", "TL"))["data"]["mid"]
    await asyncio.sleep(0.01)
    seq = await alice.send("message.chat.recall", {"mid": mid})
    err = await alice.expect("notify.error")
    assert err["seq"] == seq


async def test_offline_receiver_learns_of_a_recall_on_login(server: Server) -> None:
    _, alice = await online(server, "alice")
    bob_uid, bob_token = await make_user(server, "bob")
    mid = (await alice.chat(bob_uid, "secret", "S"))["data"]["mid"]
    await alice.expect("ack.notify")
    await alice.send("message.chat.recall", {"mid": mid})
    await alice.expect("ack.message")
    bob = await Client.connect(server)
    await bob.login(bob_token)
    notice = await bob.expect("message.chat.recall")
    assert notice["data"]["mid"] == mid
    assert "secret" not in str(notice)


async def test_client_custom_is_relayed_verbatim_to_every_device_and_not_stored(server: Server) -> None:
    alice_uid, alice = await online(server, "alice")
    bob_uid, bob1 = await online(server, "bob", device="1")
    assert server.ctx is not None
    bob2 = await Client.connect(server)
    await bob2.login(server.ctx.tokens.issue(bob_uid, "2"))
    import json

    raw = '{"content":"{\\"id\\":\\"1\\"}","from":"1","id":0,"to":"2","type":10020,  "x":[1,2.5,null]}'
    await alice.ws.send('{"action":"message.cli","data":' + raw + ',"seq":11,"to":"' + str(bob_uid) + '"}')
    for c in (bob1, bob2):
        frame_text = await asyncio.wait_for(c.ws.recv(), 5)
        assert isinstance(frame_text, str)
        while json.loads(frame_text)["action"] == "heartbeat":
            frame_text = await asyncio.wait_for(c.ws.recv(), 5)
        assert raw in frame_text  # byte-for-byte
        frame = json.loads(frame_text)
        assert frame["action"] == "message.cli" and frame["from"] == str(alice_uid) and frame["seq"] == 11
    assert await server.ctx.store.messages.inbox(bob_uid) == []


def _mid(row: dict[str, object]) -> object:
    return row.get("Mid", row.get("mid"))


def _status(row: dict[str, object]) -> object:
    return row.get("Status", row.get("status"))


@pytest.mark.parametrize("n_senders", [4])
async def test_many_senders_one_receiver_nothing_lost(server: Server, n_senders: int) -> None:
    bob_uid, bob = await online(server, "bob")
    senders = [await online(server, f"s{i}") for i in range(n_senders)]
    per = 50

    async def blast(idx: int, client: Client) -> None:
        for k in range(per):
            await client.send("message.chat", {"cliMid": f"{idx}-{k}", "content": f"{idx}:{k}"}, to=str(bob_uid))

    await asyncio.gather(*(blast(i, c) for i, (_, c) in enumerate(senders)))
    seen: dict[int, list[int]] = {}
    for _ in range(n_senders * per):
        m = await bob.expect("message.chat")
        idx, k = map(int, m["data"]["content"].split(":"))
        seen.setdefault(idx, []).append(k)
    assert all(seen[i] == list(range(per)) for i in range(n_senders))


async def test_typing_relay_respects_the_blacklist(server: Server) -> None:
    alice_uid, alice = await online(server, "alice")
    bob_uid, bob = await online(server, "bob")
    token = server.ctx.tokens.issue(bob_uid, "9")  # type: ignore[union-attr]
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}/api") as http:
        r = await http.post(
            "/session/blacklist/add",
            json={"relative_ids": [str(alice_uid)]},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert r.status_code == 200, r.text
    seq = await alice.send("message.cli", {"type": 10020, "content": "typing"}, to=str(bob_uid))
    err = await alice.expect("notify.error")
    assert err["seq"] == seq
    await bob.nothing()
