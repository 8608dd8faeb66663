"""Conversations end to end: the recent list (1:1 and group) kept by the message flow, unread counts,
reading, session/get, HTTP recall, and the 1:1 message routes; every denial and bad input."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from im_support import Person, http_client, person

from glide.server import Server


@pytest.fixture
async def http(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with http_client(server) as client:
        yield client


def chats_from(sender: Person) -> Callable[[dict[str, Any]], bool]:
    return lambda f: f["action"] == "message.chat" and f["data"]["from"] == str(sender.uid)


async def test_recent_list_last_message_and_unread(server: Server, http: httpx.AsyncClient) -> None:
    alice, bob, carol = [await person(server, http, n) for n in ("alice", "bob", "carol")]
    a_sock, b_sock, c_sock = await alice.online(), await bob.online(), await carol.online()
    bob_mids = [(await b_sock.chat(alice.uid, f"b{i}"))["data"]["mid"] for i in range(3)]
    [await c_sock.chat(alice.uid, f"c{i}") for i in range(2)]
    mine = (await a_sock.chat(bob.uid, "hi bob"))["data"]["mid"]

    recent = await alice.ok("session/recent")
    assert [(r["To"], r["Type"], r["Unread"]) for r in recent] == [(bob.uid, 1, 3), (carol.uid, 1, 2)]
    top = recent[0]
    assert (top["Uid1"], top["Uid2"], top["LastMid"], top["ReadMid"]) == (alice.uid, bob.uid, mine, 0)
    assert top["LastMessage"]["Content"] == "hi bob" and top["LastMessage"]["From"] == alice.uid
    assert top["UpdateAt"] >= top["CreateAt"] > 0 and top["CategoryIds"] is None
    [b_view] = await bob.ok("session/recent")
    assert (b_view["To"], b_view["Unread"], b_view["LastMid"]) == (alice.uid, 1, mine)

    # Delivery receipts are not reads.
    for m in bob_mids:
        await a_sock.send("ack.request", {"mid": m, "from": str(bob.uid)})
    for _ in bob_mids:
        await b_sock.action("ack.notify")
    assert (await alice.ok("session/recent"))[0]["Unread"] == 3

    # Read up to a mid, then everything; over HTTP and over the socket.
    view = await alice.ok("message/read", {"To": bob.uid, "Mid": bob_mids[0]})
    assert (view["Unread"], view["ReadMid"]) == (2, bob_mids[0])
    reply = await a_sock.call("api.message.read", {"session_id": f"{bob.uid}_{alice.uid}"})
    assert reply["action"] == "api.success" and (reply["data"]["Unread"], reply["data"]["ReadMid"]) == (0, mine)
    view = await alice.ok("message/read", {"To": bob.uid, "Mid": bob_mids[1]})  # read_mid never goes down
    assert (view["Unread"], view["ReadMid"]) == (0, mine)
    assert [r["Unread"] for r in await alice.ok("session/recent")] == [0, 2]

    # A new message moves its conversation to the top and counts as unread again.
    await c_sock.chat(alice.uid, "c-late")
    recent = await alice.ok("session/recent")
    assert [(r["To"], r["Unread"]) for r in recent] == [(carol.uid, 3), (bob.uid, 0)]
    assert recent[0]["LastMessage"]["Content"] == "c-late"

    # A recalled last message stays the last one, its content withheld.
    recall = await c_sock.call("message.chat.recall", {"mid": recent[0]["LastMid"]})
    assert recall["action"] == "ack.message"
    top = (await alice.ok("session/recent"))[0]
    assert (top["LastMessage"]["Status"], top["LastMessage"]["Content"], top["Unread"]) == (1, "", 3)


async def test_session_get_and_group_conversations(server: Server, http: httpx.AsyncClient) -> None:
    alice, bob, carol = [await person(server, http) for _ in range(3)]
    view = await alice.ok("session/get", {"To": str(bob.uid)})
    assert (view["To"], view["Type"], view["Unread"], view["LastMid"], view["LastMessage"]) == (bob.uid, 1, 0, 0, None)
    assert await alice.ok("session/get", {"to": bob.uid}) == view  # get, not create twice
    assert [r["To"] for r in await alice.ok("session/recent")] == [bob.uid]
    assert await bob.ok("session/recent") == []  # opening is one-sided

    gid = (await alice.ok("group/create", {"Name": "g", "Members": [bob.uid]}))["Gid"]
    b_sock = await bob.online()
    seq = await b_sock.send("message.group", {"cliMid": "g1", "content": "hello group", "to": str(gid)}, to=str(gid))
    assert (await b_sock.reply(seq))["action"] == "ack.message"
    assert [r["Type"] for r in await alice.ok("session/recent")] == [1]  # GlideIM's route: 1:1 rows only
    recent = await alice.ok("session/recent", {"Groups": True})
    group = next(r for r in recent if r["Type"] == 2)
    assert recent[0] is not None and recent[0]["Type"] == 2  # the newest activity
    assert (group["To"], group["LastMessage"]["Content"], group["LastMessage"]["Gid"]) == (gid, "hello group", gid)
    assert group["Unread"] == group["LastSeq"] - group["ReadSeq"] > 0
    read = await alice.ok("message/read", {"To": gid, "Type": 2})
    assert (read["Unread"], read["ReadSeq"]) == (0, group["LastSeq"])
    assert (await alice.ok("session/get", {"To": gid, "Type": 2}))["Unread"] == 0

    # message/recall serves group messages too, with the group's rules.
    gmid = group["LastMid"]  # "hello group"
    await carol.fails("message/recall", {"mid": gmid, "to": gid, "type": 2}, 403, 403, "")
    assert await bob.ok("message/recall", {"mid": gmid, "to": gid, "type": 2}) is None
    notice = await b_sock.action("message.group.notify")
    assert (notice["data"]["gid"], notice["data"]["body"]["mid"]) == (gid, gmid)

    await carol.fails("session/get", {"To": gid, "Type": 2}, 403, 403, "")  # not a member
    await carol.fails("message/read", {"To": gid, "Type": 2}, 403, 403, "")
    await carol.fails("session/get", {"To": 999_999, "Type": 2}, 404, 3001, "")


async def test_conversation_denials_and_bad_input(server: Server, http: httpx.AsyncClient) -> None:
    alice, bob, carol = [await person(server, http) for _ in range(3)]
    b_sock = await bob.online()
    await b_sock.chat(carol.uid, "private")
    # Nobody reads or marks someone else's conversation.
    await alice.fails("message/read", {"session_id": f"{bob.uid}_{carol.uid}"}, 403, 403, "not a conversation of yours")
    await alice.fails("message/read", {"To": bob.uid}, 404, 1001, "no conversation")
    assert await alice.ok("msg/chat/history", {"Uid": bob.uid}) == []
    assert await alice.ok("message/list", {"to": carol.uid}) == []
    assert all(r["Uid2"] in (bob.uid, carol.uid) for r in await carol.ok("session/recent"))
    await alice.fails("session/get", {"To": 999_999}, 404, 2002, "999999")
    await alice.fails("session/get", {}, 400, 300, "To: required")
    await alice.fails("session/get", {"To": "x"}, 400, 300, "To")
    await alice.fails("session/get", {"To": bob.uid, "Type": 3}, 400, 300, "type")
    await alice.fails("message/read", {"session_id": "12"}, 400, 300, "session_id")
    await alice.fails("message/read", {"session_id": 5}, 400, 300, "session_id")
    await alice.fails("message/read", {"session_id": "a_b"}, 400, 300, "session_id")
    await alice.fails("message/read", {"To": bob.uid, "Mid": -4}, 400, 300, "mid")
    await alice.fails("message/read", {"To": "g", "Type": 2}, 400, 300, "To")


async def test_http_recall_rules_and_notices(servers: Callable[..., Any], tmp_path: Path) -> None:
    server = await servers()
    async with http_client(server) as http:
        alice, bob, carol = [await person(server, http) for _ in range(3)]
        a_sock, b_sock = await alice.online(), await bob.online()
        a_second = await alice.device("2")
        mid = (await a_sock.chat(bob.uid, "oops"))["data"]["mid"]
        await b_sock.take(chats_from(alice))
        await bob.fails("message/recall", {"mid": mid}, 403, 403, "only the sender")
        await carol.fails("message/recall", {"mid": mid}, 404, 1001, "not found")
        await alice.fails("message/recall", {"mid": 123456789}, 404, 1001, "not found")
        await alice.fails("message/recall", {}, 400, 300, "mid: required")
        await alice.fails("message/recall", {"mid": "x"}, 400, 300, "mid")
        await alice.fails("message/recall", {"mid": mid, "type": 9}, 400, 300, "type")
        assert await alice.ok("message/recall", {"mid": mid, "to": bob.uid, "type": 1}) is None
        for sock in (b_sock, a_sock, a_second):  # the receiver and every device of the sender
            notice = (await sock.action("message.chat.recall"))["data"]
            assert (notice["mid"], notice["recallBy"]) == (mid, str(alice.uid))
        assert (await bob.ok("msg/chat/history", {"Uid": alice.uid}))[0]["Status"] == 1
        assert await alice.ok("message/recall", {"mid": mid}) is None  # idempotent

    late = await servers(recall_window_s=0, data_dir=str(tmp_path / "late"), node_id=1)  # another node
    async with http_client(late) as http:
        alice, bob = await person(late, http), await person(late, http)
        sock = await alice.online()
        mid = (await sock.chat(bob.uid, "old"))["data"]["mid"]
        await alice.fails("message/recall", {"mid": mid}, 410, 410, "too late")


async def test_message_routes(server: Server, http: httpx.AsyncClient) -> None:
    alice, bob, carol = [await person(server, http) for _ in range(3)]
    b_sock, c_sock = await bob.online(), await carol.online()
    b_mids = [(await b_sock.chat(alice.uid, f"b{i}"))["data"]["mid"] for i in range(25)]
    c_mid = (await c_sock.chat(alice.uid, "c0"))["data"]["mid"]

    per_user = await alice.ok("msg/chat/user", {"Uid": [bob.uid, str(carol.uid)]})
    assert [(u["Uid"], len(u["Messages"])) for u in per_user] == [(bob.uid, 20), (carol.uid, 1)]
    assert per_user[0]["Messages"][0]["Mid"] == b_mids[-1]
    recent = await alice.ok("msg/chat/recent")
    assert [m["Mid"] for m in recent] == [c_mid, *b_mids[::-1]]  # newest first, all within three days

    page1 = await alice.ok("message/list", {"to": bob.uid, "pageSize": 10})
    page2 = await alice.ok("message/list", {"to": bob.uid, "pageSize": 10, "page": 2})
    page3 = await alice.ok("message/list", {"to": bob.uid, "pageSize": 10, "page": 3})
    assert [m["Mid"] for m in page1 + page2 + page3] == b_mids[::-1]
    assert await alice.ok("message/list", {"to": bob.uid, "pageSize": 10, "page": 4}) == []
    window = await alice.ok("message/list", {"to": bob.uid, "start_mid": b_mids[4], "end_mid": b_mids[8]})
    assert [m["Mid"] for m in window] == b_mids[7:4:-1]

    # Alice was never online: everything waits in her inbox; acknowledging over HTTP tells the senders.
    offline = await alice.ok("msg/chat/offline")
    assert [m["Mid"] for m in offline] == sorted([*b_mids, c_mid])
    assert await alice.ok("msg/chat/offline/ack", {"Mid": [c_mid, b_mids[0]]}) == ""

    def receipt(f: dict[str, Any]) -> bool:  # not the "receiver offline" notice each send got at once
        return f["action"] == "ack.notify" and "from" in f["data"]

    assert (await c_sock.take(receipt))["data"] == {"mid": c_mid, "from": str(carol.uid)}
    assert (await b_sock.take(receipt))["data"] == {"mid": b_mids[0], "from": str(bob.uid)}
    with pytest.raises(TimeoutError):  # only the acknowledged one
        await b_sock.take(receipt, timeout=0.3)
    assert len(await alice.ok("msg/chat/offline")) == 24
    assert await alice.ok("msg/chat/offline/ack", {"mid": b_mids[1]}) == ""  # a single id

    for path, body, mentions in (
        ("msg/chat/user", {}, "uid: required"),
        ("msg/chat/user", {"Uid": list(range(1, 60))}, "at most"),
        ("message/list", {}, "to: required"),
        ("message/list", {"to": 999_999}, "999999"),
        ("message/list", {"to": bob.uid, "pageSize": 1000}, "pagesize"),
        ("message/list", {"to": bob.uid, "page": 99}, "page"),
        ("msg/chat/offline/ack", {}, "mid: required"),
        ("msg/chat/offline/ack", {"Mid": ["x"]}, "m"),
        ("msg/chat/offline/ack", {"Mid": [0]}, "m"),
    ):
        r = await alice.post(path, body)
        assert r.status_code in (400, 404) and mentions.lower() in r.json()["Msg"].lower(), (path, r.json())
