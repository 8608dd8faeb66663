"""Logout ends the session (uid, device): its token, tokens refreshed from it, and the socket credential
issued with it all stop working at once, on HTTP and on the socket; a new sign-in works."""

from __future__ import annotations

import httpx
from helpers_api import PASSWORD, password_hash
from im_support import Socket

from glide.server import Server


async def sign_in(http: httpx.AsyncClient, account: str, device: int) -> dict[str, object]:
    r = await http.post("/api/auth/signin_v2", json={"account": account, "password": PASSWORD, "device": device})
    assert r.json()["Code"] == 100, r.text
    data: dict[str, object] = r.json()["Data"]
    return data


async def socket_login(server: Server, action: str, data: dict[str, str]) -> dict[str, object]:
    sock = await Socket.connect(server)
    reply = await sock.call(action, data)
    await sock.close()
    return reply


def credential(login: dict[str, object]) -> str:
    cred = login["credential"]
    assert isinstance(cred, dict)
    return str(cred["credential"])


async def test_logout_kills_every_token_and_credential_of_its_session(
    server: Server, http_api: httpx.AsyncClient
) -> None:
    assert server.ctx is not None
    await server.ctx.store.users.create_user(
        account="alice", email=None, nickname="A", avatar="", password_hash=password_hash()
    )
    web = await sign_in(http_api, "alice", 2)
    phone = await sign_in(http_api, "alice", 3)
    refreshed = (await http_api.post("/api/auth/token", json={"token": web["token"]})).json()["Data"]
    # Before logout every one of them works.
    assert (await socket_login(server, "authenticate", {"credential": credential(web)}))["action"] == "notify.success"
    assert (await socket_login(server, "api.auth", {"Token": str(refreshed["token"])}))["action"] == "api.success"

    r = await http_api.post("/api/auth/logout", headers={"Authorization": f"Bearer {web['token']}"})
    assert r.json()["Code"] == 100, r.text

    # Device 2's credential, its token and the token refreshed from it: all dead, on the socket and on HTTP.
    for login in (web, refreshed):
        reply = await socket_login(server, "authenticate", {"credential": credential(login)})
        assert reply["action"] == "notify.error" and "logged out" in str(reply["data"]), reply
        reply = await socket_login(server, "api.auth", {"Token": str(login["token"])})
        assert reply["action"] == "api.failed" and "revoked" in str(reply["data"]), reply
        r = await http_api.post("/api/user/profile", headers={"Authorization": f"Bearer {login['token']}"})
        assert r.status_code == 401 and "revoked" in r.json()["Msg"]
        r = await http_api.post("/api/auth/token", json={"token": login["token"]})
        assert r.status_code == 401
    # Another device of the same user is another session: untouched.
    assert (await socket_login(server, "authenticate", {"credential": credential(phone)}))["action"] == "notify.success"
    # Signing in again on device 2 starts a new session that works.
    again = await sign_in(http_api, "alice", 2)
    assert (await socket_login(server, "authenticate", {"credential": credential(again)}))["action"] == "notify.success"
    assert (await socket_login(server, "api.auth", {"Token": str(again["token"])}))["action"] == "api.success"


async def test_logout_closes_the_live_socket(server: Server, http_api: httpx.AsyncClient) -> None:
    assert server.ctx is not None
    await server.ctx.store.users.create_user(
        account="bob", email=None, nickname="B", avatar="", password_hash=password_hash()
    )
    login = await sign_in(http_api, "bob", 5)
    sock = await Socket.connect(server)
    assert (await sock.call("authenticate", {"credential": credential(login)}))["action"] == "notify.success"
    assert (await sock.call("api.user.profile", {}))["action"] == "api.success"
    await http_api.post("/api/auth/logout", headers={"Authorization": f"Bearer {login['token']}"})
    await sock.ws.wait_closed()
    assert sock.ws.close_code == 1000
