"""GlideIM's per-target send tickets (§2.6): a credential login's chat and group sends need the ticket
session/ticket issued for that target; missing, malformed or wrong ones are answered notify.forbidden with
the request's seq (GlideIM's client refreshes and retries), and nothing is stored. JWT logins need none."""

from __future__ import annotations

from typing import Any

import httpx
from helpers import Client, make_user

from glide.server import Server


async def credential_client(server: Server, uid: int) -> Client:
    assert server.ctx is not None
    user = await server.ctx.store.users.user(uid)
    assert user is not None
    cred = server.ctx.credentials.issue(uid, "1", "", user.message_deliver_secret)
    client = await Client.connect(server)
    seq = await client.send("authenticate", {"credential": cred["credential"], "version": 1})
    assert (await client.expect("notify.success"))["seq"] == seq
    return client


async def ticket_for(http: httpx.AsyncClient, token: str, to: Any) -> str:
    r = await http.post("/api/session/ticket", json={"To": to}, headers={"Authorization": f"Bearer {token}"})
    assert r.json()["Code"] == 100, r.text
    return str(r.json()["Data"]["Ticket"])


async def send(client: Client, action: str, to: str, cli_mid: str, ticket: str | None) -> dict[str, Any]:
    data = {"cliMid": cli_mid, "content": "x", "type": 1, "to": to}
    extra = {} if ticket is None else {"ticket": ticket}
    seq = await client.send(action, data, to=to, **extra)
    while True:
        frame = await client.recv()
        if frame.get("seq") == seq:
            return frame


async def test_credential_sessions_need_the_ticket_of_each_target(server: Server, http_api: httpx.AsyncClient) -> None:
    a, token_a = await make_user(server, "alice")
    b, _ = await make_user(server, "bob")
    c, _ = await make_user(server, "carol")
    client = await credential_client(server, a)
    for ticket, problem in ((None, "invalid ticket"), ("abc", "invalid ticket"), ("0" * 40, "ticket expired")):
        reply = await send(client, "message.chat", str(b), f"t-{problem}-{ticket}", ticket)
        assert (reply["action"], reply["data"]) == ("notify.forbidden", problem), reply
    good = await ticket_for(http_api, token_a, b)
    reply = await send(client, "message.chat", str(b), "ok-1", good)
    assert reply["action"] == "ack.message"
    assert (await send(client, "message.chat", str(b), "ok-2", good.upper()))["action"] == "ack.message"
    # A ticket is for one target only.
    assert (await send(client, "message.chat", str(c), "other", good))["action"] == "notify.forbidden"
    assert server.ctx is not None
    assert await server.ctx.store.messages.chat_by_cli_mid(a, "other") is None
    # Group sends too, with the group's ticket.
    gid = (
        await http_api.post("/api/group/create", json={"Name": "g"}, headers={"Authorization": f"Bearer {token_a}"})
    ).json()["Data"]["Gid"]
    assert (await send(client, "message.group", str(gid), "g-1", None))["action"] == "notify.forbidden"
    reply = await send(client, "message.group", str(gid), "g-2", await ticket_for(http_api, token_a, str(gid)))
    assert reply["action"] == "ack.message"
    await client.close()


async def test_jwt_sessions_send_without_tickets(server: Server) -> None:
    _, token_a = await make_user(server, "alice")
    b, _ = await make_user(server, "bob")
    client = await Client.connect(server)
    await client.login(token_a)
    assert (await send(client, "message.chat", str(b), "jwt-1", None))["action"] == "ack.message"
    await client.close()


async def test_a_blacklisted_sender_gets_no_ticket(server: Server, http_api: httpx.AsyncClient) -> None:
    a, token_a = await make_user(server, "alice")
    b, token_b = await make_user(server, "bob")
    r = await http_api.post(
        "/api/session/blacklist/add", json={"relative_ids": [a]}, headers={"Authorization": f"Bearer {token_b}"}
    )
    assert r.json()["Code"] == 100
    r = await http_api.post("/api/session/ticket", json={"To": b}, headers={"Authorization": f"Bearer {token_a}"})
    assert r.status_code == 403
