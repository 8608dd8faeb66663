"""The operator's routes (admin/sessions, admin/kick, admin/broadcast): only with the node's admin_token, never a
user's; a kick closes exactly the sessions it names (4002) and the user may come back; a broadcast reaches every
online session and cannot pose as the server's own frames."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from helpers import Client, make_user, online
from websockets.exceptions import ConnectionClosed

from glide.server import Server

ROUTES = [("admin/sessions", {}), ("admin/kick", {"Uid": 1}), ("admin/broadcast", {"Data": "hi"})]


@pytest.fixture
async def http(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}/api", timeout=10) as client:
        yield client


def operator(server: Server) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.config.admin_token}"}


async def call(http: httpx.AsyncClient, server: Server, route: str, body: dict[str, Any]) -> Any:
    r = await http.post(f"/{route}", json=body, headers=operator(server))
    assert r.status_code == 200, r.text
    return r.json()["Data"]


async def closed_with(client: Client) -> int | None:
    with pytest.raises(ConnectionClosed):
        while True:
            await client.recv(5)
    return client.ws.close_code


@pytest.mark.parametrize(("route", "body"), ROUTES)
async def test_only_the_operator_may_call_them(
    server: Server, http: httpx.AsyncClient, route: str, body: dict[str, Any]
) -> None:
    uid, victim = await online(server, "victim")
    _, user_token = await make_user(server, "mallory")
    for headers in ({}, {"Authorization": f"Bearer {user_token}"}, {"Authorization": "Bearer " + "a" * 48}):
        r = await http.post(f"/{route}", json={**body, "Uid": uid} if "Uid" in body else body, headers=headers)
        assert r.status_code == 401 and "operator" in r.json()["Msg"]
    await victim.nothing()  # not kicked, no broadcast
    # and they are not socket actions: a user cannot reach them over its socket either
    await victim.send("api." + route.replace("/", "."), body)
    assert (await victim.expect("notify.unknown.action"))["data"] == "api." + route.replace("/", ".")


async def test_sessions_lists_who_is_online_here(server: Server, http: httpx.AsyncClient) -> None:
    a, _ = await online(server, "ann", "1")
    _, token = await make_user(server, "ben", "7")
    b = (await call(http, server, "admin/sessions", {}))["Sessions"]
    assert b == [{"Uid": a, "Device": "1"}]
    ben = await Client.connect(server)
    await ben.login(token)
    listed = await call(http, server, "admin/sessions", {})
    assert listed["Online"] == 2 and {(s["Uid"], s["Device"]) for s in listed["Sessions"]} == {(a, "1"), (a + 1, "7")}
    assert (await call(http, server, "admin/sessions", {"Uid": a}))["Sessions"] == [{"Uid": a, "Device": "1"}]
    r = await http.get("/admin/sessions", headers=operator(server))
    assert r.status_code == 200 and r.json()["Data"]["Online"] == 2


async def test_kick_closes_the_named_session_or_all_of_the_user(server: Server, http: httpx.AsyncClient) -> None:
    uid, token_1 = await make_user(server, "kay", "1")
    token_2 = server.ctx.tokens.issue(uid, "2") if server.ctx else ""
    phone, laptop = await Client.connect(server), await Client.connect(server)
    await phone.login(token_1)
    await laptop.login(token_2)
    assert await call(http, server, "admin/kick", {"Uid": uid, "Device": "1"}) == {"Here": True}
    assert await closed_with(phone) == 4002
    await laptop.nothing()  # the other device stays
    again = await Client.connect(server)  # its token still works: a kick is not a logout
    await again.login(token_1)
    assert await call(http, server, "admin/kick", {"Uid": uid}) == {"Here": True}
    assert await closed_with(laptop) == 4002 and await closed_with(again) == 4002
    assert await call(http, server, "admin/kick", {"Uid": uid}) == {"Here": False}  # nobody left
    for bad in ({}, {"Uid": "x"}, {"Uid": -1}, {"Uid": uid, "Device": "a b"}):
        r = await http.post("/admin/kick", json=bad, headers=operator(server))
        assert r.status_code == 400, bad


async def test_broadcast_reaches_every_online_session(server: Server, http: httpx.AsyncClient) -> None:
    clients = [(await online(server, f"b{i}", str(i)))[1] for i in range(3)]
    assert await call(http, server, "admin/broadcast", {"Data": {"text": "maintenance at 22:00"}}) == {"Here": 3}
    for c in clients:
        frame = await c.expect("notify.admin")
        assert frame["data"] == {"text": "maintenance at 22:00"} and not frame.get("seq")
    assert await call(http, server, "admin/broadcast", {"Action": "notify.ops.restart", "Data": 1}) == {"Here": 3}
    for c in clients:
        assert (await c.expect("notify.ops.restart"))["data"] == 1
    for action in ("ack.notify", "message.chat", "api.success", "hello", "Bad Name", "x" * 65):
        r = await http.post("/admin/broadcast", json={"Action": action, "Data": 1}, headers=operator(server))
        assert r.status_code == 400, action
    r = await http.post("/admin/broadcast", json={"Action": "notify.x"}, headers=operator(server))
    assert r.status_code == 400 and "data" in r.json()["Msg"]
    for c in clients:
        await c.nothing()
