"""msg/sync end to end: after a long offline period a client pages through everything it missed from the
one cursor it kept — hundreds of messages from several peers and its own other device, ascending, no gap,
no duplicate — and learns of recalls and of the group seq watermarks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from im_support import Person, Socket, http_client, person

from glide.server import Server
from glide.store import NewChat


@pytest.fixture
async def http(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with http_client(server) as client:
        yield client


async def blast(sock: Socket, to: int, n: int, tag: str) -> list[int]:
    """Send ``n`` messages back to back, then collect their acks; returns the mids in send order."""
    seqs = [
        await sock.send("message.chat", {"cliMid": f"{tag}{i}", "content": f"{tag}{i}", "to": str(to)}, to=str(to))
        for i in range(n)
    ]
    mids = []
    for seq in seqs:
        ack = await sock.reply(seq)
        assert ack["action"] == "ack.message", ack
        mids.append(ack["data"]["mid"])
    return mids


async def sync_all(who: Person, cursor: int, limit: int) -> tuple[list[dict[str, Any]], int]:
    """Every page from ``cursor``; checks each page's shape and returns (messages, final cursor)."""
    out: list[dict[str, Any]] = []
    while True:
        page = await who.ok("msg/sync", {"cursor": cursor, "limit": limit})
        assert len(page["Messages"]) <= limit
        if page["Messages"]:
            assert page["Cursor"] == page["Messages"][-1]["Seq"] > cursor
        else:
            assert page["Cursor"] == cursor and not page["More"]
        out.extend(page["Messages"])
        cursor = page["Cursor"]
        if not page["More"]:
            assert page["Head"] == cursor
            return out, cursor


async def test_sync_after_a_long_offline_period(server: Server, http: httpx.AsyncClient) -> None:
    alice = await person(server, http, "alice")
    peers = [await person(server, http) for _ in range(4)]
    socks = [await p.online() for p in peers]
    a_sock = await alice.online()
    seen = await blast(socks[0], alice.uid, 3, "early")
    for _ in seen:
        await a_sock.take(lambda f: f["action"] == "message.chat")
    first, cursor = await sync_all(alice, 0, 100)
    assert [m["Mid"] for m in first] == seen and [m["Seq"] for m in first] == [1, 2, 3]
    await a_sock.close()  # alice goes away, keeping `cursor`

    # While she is away: four peers write at once, and her other device writes too.
    other = await alice.device("2")
    batches = await asyncio.gather(
        *(blast(s, alice.uid, 75, f"p{i}-") for i, s in enumerate(socks)),
        blast(other, peers[1].uid, 20, "own-"),
    )
    missed = {mid for batch in batches for mid in batch}
    assert len(missed) == 320

    messages, end = await sync_all(alice, cursor, 37)
    mids = [m["Mid"] for m in messages]
    assert len(mids) == len(set(mids)) == 320 and set(mids) == missed  # no gap, no duplicate
    assert [m["Seq"] for m in messages] == list(range(4, 324))  # contiguous, ascending
    for batch in batches:  # each conversation in order
        assert [mid for mid in mids if mid in set(batch)] == batch
    own = [m for m in messages if m["From"] == alice.uid]
    assert len(own) == 20 and {m["To"] for m in own} == {peers[1].uid}
    assert (await sync_all(alice, end, 50))[0] == []  # nothing more

    # Messages arriving between pages are picked up by the next pages, still without gaps.
    page = await alice.ok("msg/sync", {"cursor": cursor, "limit": 10})
    late = await blast(socks[2], alice.uid, 5, "late-")
    rest, _ = await sync_all(alice, page["Cursor"], 100)
    assert [m["Mid"] for m in page["Messages"] + rest] == [*mids, *late]


async def test_sync_shows_recalls_and_group_watermarks(server: Server, http: httpx.AsyncClient) -> None:
    alice, bob = await person(server, http), await person(server, http)
    b_sock = await bob.online()
    mids = await blast(b_sock, alice.uid, 3, "m")
    start = await alice.ok("msg/sync", {"limit": 3})
    assert not start["More"] and start["Cursor"] == 3
    # Recalled after alice synced: the next sync carries the message again, recalled.
    assert (await b_sock.call("message.chat.recall", {"mid": mids[1]}))["action"] == "ack.message"
    after = await alice.ok("msg/sync", {"cursor": start["Cursor"]})
    [again] = after["Messages"]
    assert (again["Mid"], again["Status"], again["Content"], again["Seq"]) == (mids[1], 1, "", 4)
    # Within one page a message appears once, in its newest state.
    whole = await alice.ok("msg/sync", {})
    assert [(m["Mid"], m["Status"]) for m in whole["Messages"]] == [(mids[0], 0), (mids[2], 0), (mids[1], 1)]

    gid = (await bob.ok("group/create", {"Name": "g", "Members": [alice.uid]}))["Gid"]
    seq = await b_sock.send("message.group", {"cliMid": "g", "content": "hi all", "to": str(gid)}, to=str(gid))
    assert (await b_sock.reply(seq))["action"] == "ack.message"
    [group] = (await alice.ok("msg/sync", {"cursor": whole["Cursor"]}))["Groups"]
    assert group["Gid"] == gid and group["LastSeq"] >= 2
    assert group["Unread"] == group["LastSeq"] - group["ReadSeq"] >= 1  # pull (ReadSeq, LastSeq] by seq


async def test_a_late_commit_with_a_smaller_mid_is_not_skipped(server: Server, http: httpx.AsyncClient) -> None:
    """mids are time-ordered but may commit out of order; a mid cursor would skip the late one, ours does not."""
    assert server.ctx is not None
    alice, bob = await person(server, http), await person(server, http)
    small, large = server.ctx.ids.next(), server.ctx.ids.next()
    await server.ctx.store.messages.store_chats([NewChat(large, "l", bob.uid, alice.uid, 1, "large", 0)])
    first = await alice.ok("msg/sync", {})
    assert [m["Mid"] for m in first["Messages"]] == [large]
    await server.ctx.store.messages.store_chats([NewChat(small, "s", bob.uid, alice.uid, 1, "small", 0)])
    second = await alice.ok("msg/sync", {"cursor": first["Cursor"]})
    assert [m["Mid"] for m in second["Messages"]] == [small]


async def test_sync_bad_input_and_socket(server: Server, http: httpx.AsyncClient) -> None:
    alice = await person(server, http)
    for body, mentions in (
        ({"cursor": -1}, "cursor"),
        ({"cursor": "soon"}, "cursor"),
        ({"cursor": 1.5}, "cursor"),
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"limit": True}, "limit"),
    ):
        await alice.fails("msg/sync", body, 400, 300, mentions)
    sock = await alice.online()
    reply = await sock.call("api.msg.sync", {"Cursor": "0", "Limit": "5"})
    assert reply["action"] == "api.success"
    assert reply["data"] == {"Messages": [], "Cursor": 0, "Head": 0, "More": False, "Groups": []}
    reply = await sock.call("api.msg.sync", {"cursor": -5})
    assert reply["action"] == "api.failed" and "cursor" in reply["data"]
