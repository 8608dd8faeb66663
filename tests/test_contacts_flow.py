"""Contacts end to end (real server, HTTP and sockets): GlideIM's contacts/add that makes the contact at once;
with contact_approval, requests with approval and their socket events; the list in both key spellings,
delete, remark, last mid; every denial and bad input."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from im_support import Person, http_client, person

from glide.server import Server


@pytest.fixture
async def server(servers: Callable[..., Any]) -> Server:
    """These tests are about requests: the server asks for approval (contact_approval)."""
    srv: Server = await servers(contact_approval=True)
    return srv


@pytest.fixture
async def http(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with http_client(server) as client:
        yield client


def contact_event(kind: str) -> Callable[[dict[str, Any]], bool]:
    return lambda f: f["action"] == "notify.contact" and f["data"]["type"] == kind


async def test_glideim_add_makes_the_contact_at_once(servers: Callable[..., Any]) -> None:
    server = await servers()  # the default: no approval, as GlideIM
    async with http_client(server) as http:
        alice, bob = await person(server, http, "alice"), await person(server, http, "bob")
        a_sock, b_sock = await alice.online(), await bob.online()
        assert await alice.ok("contacts/add", {"Uid": bob.uid, "Remark": "Bobby"}) == {"uid": bob.uid, "status": 1}
        for sock in (a_sock, b_sock):
            event = (await sock.take(contact_event("accepted")))["data"]
            assert (event["from"], event["to"]) == (alice.uid, bob.uid)
        [entry] = await alice.ok("contacts/list")
        assert (entry["Id"], entry["Type"], entry["Remark"]) == (bob.uid, 1, "Bobby")
        assert [c["Id"] for c in await bob.ok("contacts/list")] == [alice.uid]  # both directions
        assert (await bob.ok("contacts/requests"))["received"] == []
        await alice.fails("contacts/add", {"uid": bob.uid}, 409, 2003, "already a contact")


async def test_request_approve_and_both_sides_notified(server: Server, http: httpx.AsyncClient) -> None:
    alice, bob = await person(server, http, "alice"), await person(server, http, "bob")
    a_sock, b_sock = await alice.online(), await bob.online()
    a_other = await alice.device("2")  # alice's second device sees her own actions too

    assert await alice.ok("contacts/add", {"Uid": str(bob.uid), "Remark": "Bobby", "comment": "hi,\nit's me"}) == {
        "uid": bob.uid,
        "status": 0,
    }
    for sock in (a_sock, b_sock, a_other):
        event = (await sock.take(contact_event("request")))["data"]
        assert (event["from"], event["to"], event["comment"]) == (alice.uid, bob.uid, "hi,\nit's me")
    assert await alice.ok("contacts/list") == []  # nothing until bob answers
    requests = await bob.ok("contacts/requests")
    assert [(r["requester"], r["target"], r["status"]) for r in requests["received"]] == [(alice.uid, bob.uid, 0)]
    assert requests["sent"] == []
    assert [r["target"] for r in (await alice.ok("contacts/requests"))["sent"]] == [bob.uid]

    # Over the socket, through the same handler.
    reply = await b_sock.call("api.contacts.approval", {"uid": alice.uid, "agree": True, "remark": "Al"})
    assert reply["action"] == "api.success" and reply["data"] == {"uid": alice.uid, "status": 1}
    for sock in (a_sock, b_sock, a_other):
        event = (await sock.take(contact_event("accepted")))["data"]
        assert (event["from"], event["to"]) == (bob.uid, alice.uid)

    [entry] = await alice.ok("contacts/list")
    assert (entry["Id"], entry["Type"], entry["Remark"]) == (bob.uid, 1, "Bobby")  # the web SDK's keys
    assert (entry["id"], entry["type"], entry["remark"]) == (bob.uid, 1, "Bobby")  # GlideIM api's keys
    assert (entry["uid"], entry["nick_name"], entry["account"], entry["last_mid"]) == (bob.uid, "Bob", "bob", 0)
    [entry] = await bob.ok("contacts/list")
    assert (entry["Id"], entry["Remark"]) == (alice.uid, "Al")
    assert (await bob.ok("contacts/requests"))["received"] == []
    await alice.fails("contacts/add", {"uid": bob.uid}, 409, 2003, "already a contact")
    await bob.fails("contacts/approval", {"uid": alice.uid, "agree": True}, 404, 1001, "no pending")


async def test_reject_then_ask_again(server: Server, http: httpx.AsyncClient) -> None:
    alice, bob = await person(server, http), await person(server, http)
    a_sock = await alice.online()
    await alice.ok("contacts/add", {"uid": bob.uid})
    assert await bob.ok("contacts/approval", {"uid": alice.uid, "agree": 0, "comment": "who?"}) == {
        "uid": alice.uid,
        "status": 2,
    }
    event = (await a_sock.take(contact_event("rejected")))["data"]
    assert (event["from"], event["comment"]) == (bob.uid, "who?")
    assert await alice.ok("contacts/list") == [] and await bob.ok("contacts/list") == []
    await bob.fails("contacts/approval", {"uid": alice.uid, "agree": True}, 404, 1001, "no pending")
    await alice.ok("contacts/add", {"uid": bob.uid, "comment": "it's alice"})  # a new request
    assert [r["comment"] for r in (await bob.ok("contacts/requests"))["received"]] == ["it's alice"]


async def test_mutual_requests_connect_without_approval(server: Server, http: httpx.AsyncClient) -> None:
    alice, bob = await person(server, http), await person(server, http)
    b_sock = await bob.online()
    assert (await alice.ok("contacts/add", {"uid": bob.uid, "remark": "B"}))["status"] == 0
    assert (await bob.ok("contacts/add", {"uid": alice.uid, "remark": "A"}))["status"] == 1
    await b_sock.take(contact_event("accepted"))
    assert [(c["Id"], c["Remark"]) for c in await alice.ok("contacts/list")] == [(bob.uid, "B")]
    assert [(c["Id"], c["Remark"]) for c in await bob.ok("contacts/list")] == [(alice.uid, "A")]
    assert (await alice.ok("contacts/requests")) == {"received": [], "sent": []}


async def friends(server: Server, http: httpx.AsyncClient) -> tuple[Person, Person]:
    alice, bob = await person(server, http), await person(server, http)
    await alice.ok("contacts/add", {"uid": bob.uid})
    await bob.ok("contacts/approval", {"uid": alice.uid, "agree": True})
    return alice, bob


async def test_remark_last_mid_and_delete(server: Server, http: httpx.AsyncClient) -> None:
    alice, bob = await friends(server, http)
    carol = await person(server, http)
    assert await alice.ok("contacts/update/remark", {"uid": bob.uid, "remark": "  Bob the builder "}) == ""
    assert await alice.ok("contacts/update", {"Uid": bob.uid, "Remark": "B."}) == ""  # Gen-1 path
    assert await alice.ok("contacts/update/mid", {"uid": bob.uid, "mid": 500}) == ""
    assert await alice.ok("contacts/update/mid", {"uid": bob.uid, "mid": "400"}) == ""  # never goes down
    [entry] = await alice.ok("contacts/list")
    assert (entry["Remark"], entry["last_mid"]) == ("B.", 500)
    assert (await bob.ok("contacts/list"))[0]["Remark"] == ""  # bob's own remark is untouched
    assert await alice.ok("contacts/update/remark", {"uid": bob.uid, "remark": ""}) == ""  # clears it
    assert (await alice.ok("contacts/list"))[0]["Remark"] == ""

    await alice.fails("contacts/update/remark", {"uid": carol.uid, "remark": "x"}, 404, 1001, "not a contact")
    await alice.fails("contacts/update/mid", {"uid": carol.uid, "mid": 1}, 404, 1001, "not a contact")

    b_sock = await bob.online()
    assert await bob.ok("contacts/del", {"Uid": [alice.uid]}) == ""  # Gen-1 list form
    event = (await b_sock.take(contact_event("deleted")))["data"]
    assert (event["from"], event["to"]) == (bob.uid, alice.uid)
    assert await alice.ok("contacts/list") == [] and await bob.ok("contacts/list") == []
    await alice.fails("contacts/del", {"uid": bob.uid}, 404, 1001, "not a contact")


async def test_contacts_denials_and_bad_input(server: Server, http: httpx.AsyncClient) -> None:
    alice, bob = await person(server, http), await person(server, http)
    await alice.fails("contacts/add", {"uid": alice.uid}, 400, 2001, "yourself")
    await alice.fails("contacts/add", {"uid": 999_999}, 404, 2002, "999999")
    await alice.fails("contacts/add", {}, 400, 300, "uid: required")
    await alice.fails("contacts/add", {"uid": "bob"}, 400, 300, "uid")
    await alice.fails("contacts/add", {"uid": bob.uid, "remark": "r" * 65}, 400, 300, "remark")
    await alice.fails("contacts/add", {"uid": bob.uid, "comment": "c" * 257}, 400, 300, "comment")
    await alice.fails("contacts/add", {"uid": bob.uid, "remark": "a\x00b"}, 400, 300, "remark")
    await alice.fails("contacts/approval", {"uid": bob.uid}, 400, 300, "agree: required")
    await alice.fails("contacts/approval", {"uid": bob.uid, "agree": "yes"}, 400, 300, "agree")
    await alice.fails("contacts/approval", {"uid": bob.uid, "agree": 2}, 400, 300, "agree")
    await alice.fails("contacts/approval", {"uid": bob.uid, "agree": True}, 404, 1001, "no pending")
    await alice.fails("contacts/update/remark", {"uid": bob.uid}, 400, 300, "remark: required")
    await alice.fails("contacts/update/remark", {"uid": bob.uid, "remark": 5}, 400, 300, "remark")
    await alice.fails("contacts/update/mid", {"uid": bob.uid}, 400, 300, "mid: required")
    await alice.fails("contacts/update/mid", {"uid": bob.uid, "mid": -1}, 400, 300, "mid")
    await alice.fails("contacts/del", {"uid": list(range(1, 200))}, 400, 300, "at most")
    await alice.fails("contacts/del", {"uid": []}, 404, 1001, "no contact")
    # Only the target answers a request: bob cannot approve his own request to alice on her behalf.
    await bob.ok("contacts/add", {"uid": alice.uid})
    await bob.fails("contacts/approval", {"uid": bob.uid, "agree": True}, 404, 1001, "no pending")
    await bob.fails("contacts/approval", {"uid": alice.uid, "agree": True}, 404, 1001, "no pending")
    assert await bob.ok("contacts/list") == []
    # Over the socket the same denials come back as api.failed with the request's seq.
    sock = await alice.online()
    seq = await sock.send("api.contacts.add", {"uid": alice.uid}, seq=77)
    reply = await sock.reply(seq)
    assert (reply["action"], reply["seq"]) == ("api.failed", 77) and "yourself" in reply["data"]
