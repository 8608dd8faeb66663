"""Blacklist and whitelist end to end: a blocked user's messages are refused on the socket (error frame with
the request's seq, nothing stored), tickets and contact requests too; unblocking lets messages through."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from im_support import http_client, person

from glide.chat.actions import REFUSED
from glide.server import Server


@pytest.fixture
async def http(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with http_client(server) as client:
        yield client


async def history(server: Server, a: int, b: int) -> list[str]:
    assert server.ctx is not None
    return [m.content for m in await server.ctx.store.messages.history(a, b, limit=100)]


async def test_blacklist_blocks_messages_until_removed(server: Server, http: httpx.AsyncClient) -> None:
    alice, bob, carol = [await person(server, http, n) for n in ("alice", "bob", "carol")]
    a_sock, b_sock = await alice.online(), await bob.online()
    assert (await a_sock.chat(bob.uid, "before"))["action"] == "ack.message"
    await b_sock.take(lambda f: f["action"] == "message.chat" and f["data"]["content"] == "before")

    assert await bob.ok("session/blacklist/add", {"relative_ids": [str(alice.uid)]}) is None
    listed = await bob.ok("session/blacklist", method="GET")  # the web SDK uses GET
    assert [(e["relative_uid"], e["primary_uid"], e["type"]) for e in listed] == [(alice.uid, bob.uid, 2)]
    assert listed[0]["user_info"]["Uid"] == alice.uid and listed[0]["user_info"]["Account"] == "alice"
    assert listed[0]["DeletedAt"] is None and listed[0]["CreatedAt"].endswith("Z")

    # Three sends back to back (one store batch when they arrive in one read): each blocked one is refused
    # with its own seq, the one to carol goes through.
    seqs = [
        await a_sock.send("message.chat", {"cliMid": f"b{i}", "content": f"m{i}", "to": str(to)}, seq=4000 + i)
        for i, to in enumerate((bob.uid, carol.uid, bob.uid))
    ]
    replies = [await a_sock.reply(seq) for seq in seqs]
    assert [(r["action"], r["seq"]) for r in replies] == [
        ("notify.error", 4000),
        ("ack.message", 4001),
        ("notify.error", 4002),
    ]
    assert replies[0]["data"] == REFUSED
    await b_sock.quiet("message.chat")
    assert await history(server, alice.uid, bob.uid) == ["before"]  # nothing stored
    assert (await bob.ok("session/recent"))[0]["Unread"] == 1  # only "before"

    # Bob can still write to alice; blocking is one-way.
    assert (await b_sock.chat(alice.uid, "from bob"))["action"] == "ack.message"
    # Tickets and contact requests are refused too.
    await alice.fails("session/ticket", {"To": str(bob.uid)}, 403, 403, "does not accept")
    await alice.fails("contacts/add", {"uid": bob.uid}, 403, 403, "does not accept")

    assert await bob.ok("session/blacklist/remove", {"relative_ids": [alice.uid, carol.uid]}) is None
    assert await bob.ok("session/blacklist") == []
    assert (await a_sock.chat(bob.uid, "after"))["action"] == "ack.message"
    await b_sock.take(lambda f: f["action"] == "message.chat" and f["data"]["content"] == "after")
    assert await history(server, alice.uid, bob.uid) == ["after", "from bob", "before"]
    assert "Ticket" in await alice.ok("session/ticket", {"To": str(bob.uid)})


async def test_retry_of_a_message_stored_before_the_block_is_a_duplicate(
    server: Server, http: httpx.AsyncClient
) -> None:
    alice, bob = await person(server, http), await person(server, http)
    a_sock = await alice.online()
    first = await a_sock.chat(bob.uid, "hello", cli_mid="same")
    await bob.ok("session/blacklist/add", {"relative_ids": alice.uid})
    again = await a_sock.chat(bob.uid, "hello", cli_mid="same")
    assert again["action"] == "ack.message" and again["data"]["mid"] == first["data"]["mid"]


async def test_whitelist_only_mode(server: Server, http: httpx.AsyncClient) -> None:
    alice, bob, carol = [await person(server, http) for _ in range(3)]
    a_sock, c_sock = await alice.online(), await carol.online()
    assert await bob.ok("session/whitelist/mode") == {"enabled": False}
    assert await bob.ok("session/whitelist/add", {"relative_ids": [carol.uid]}) is None
    assert (await a_sock.chat(bob.uid, "no mode yet"))["action"] == "ack.message"  # the list alone changes nothing
    assert await bob.ok("session/whitelist/mode", {"enabled": True}) == {"enabled": True}
    assert (await a_sock.chat(bob.uid, "not listed"))["action"] == "notify.error"
    assert (await c_sock.chat(bob.uid, "listed"))["action"] == "ack.message"
    listed = await bob.ok("session/whitelist", method="GET")
    assert [(e["relative_uid"], e["type"]) for e in listed] == [(carol.uid, 1)]
    # One list per other user: blacklisting carol takes her off the whitelist, so she is refused as well.
    await bob.ok("session/blacklist/add", {"relative_ids": [carol.uid]})
    assert await bob.ok("session/whitelist") == []
    assert (await c_sock.chat(bob.uid, "now blocked"))["action"] == "notify.error"
    await bob.ok("session/whitelist/add", {"relative_ids": [alice.uid]})
    assert (await a_sock.chat(bob.uid, "whitelisted now"))["action"] == "ack.message"
    assert await bob.ok("session/whitelist/mode", {"enabled": False}) == {"enabled": False}
    await bob.ok("session/blacklist/remove", {"relative_ids": [carol.uid]})
    assert (await c_sock.chat(bob.uid, "open again"))["action"] == "ack.message"
    # A user never refuses themselves, whatever the mode.
    await alice.ok("session/whitelist/mode", {"enabled": True})
    assert (await a_sock.chat(alice.uid, "note to self"))["action"] == "ack.message"


async def test_privacy_bad_input(server: Server, http: httpx.AsyncClient) -> None:
    alice = await person(server, http)
    for path in ("session/blacklist/add", "session/whitelist/add", "session/blacklist/remove"):
        await alice.fails(path, {}, 400, 300, "relative_ids: required")
        await alice.fails(path, {"relative_ids": ["x"]}, 400, 300, "relative_ids[0]")
        await alice.fails(path, {"relative_ids": [1.5]}, 400, 300, "relative_ids[0]")
        await alice.fails(path, {"relative_ids": list(range(1, 1003))}, 400, 300, "at most")
    await alice.fails("session/blacklist/add", {"relative_ids": [alice.uid]}, 400, 300, "yourself")
    await alice.fails("session/blacklist/add", {"relative_ids": [999_999]}, 404, 2002, "999999")
    await alice.fails("session/whitelist/mode", {"enabled": "yes"}, 400, 300, "enabled")
    assert await alice.ok("session/blacklist") == []  # nothing half-stored
