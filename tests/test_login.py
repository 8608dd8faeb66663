"""Socket login, the pre-login gate, and multi-device sessions with same-device kick-out."""

from __future__ import annotations

import pytest
import websockets
from helpers import Client, make_user

from glide.server import Server


async def test_hello_then_jwt_login(server: Server) -> None:
    uid, token = await make_user(server, "alice")
    client = await Client.connect(server)
    assert client.hello is not None
    assert client.hello["ver"] == 1
    assert client.hello["data"]["heartbeat_interval"] == 30
    assert client.hello["data"]["temp_id"].startswith("tmp@")
    reply = await client.login(token)
    assert reply["data"]["Uid"] == str(uid)
    assert reply["data"]["Device"] == "1"
    await client.close()


@pytest.mark.parametrize("token", ["", "not-a-jwt", "a.b.c", 42, None])
async def test_bad_token_fails_with_seq(server: Server, token: object) -> None:
    client = await Client.connect(server)
    seq = await client.send("api.auth", {"Token": token})
    reply = await client.expect("api.failed")
    assert reply["seq"] == seq
    assert isinstance(reply["data"], str) and reply["data"]
    await client.close()


async def test_token_of_other_secret_and_unknown_user(server: Server) -> None:
    import jwt

    forged = jwt.encode({"uid": 1, "device": 1, "ver": 1, "exp": 4_000_000_000}, "other", algorithm="HS256")
    client = await Client.connect(server)
    await client.send("api.auth", {"Token": forged})
    await client.expect("api.failed")
    assert server.ctx is not None
    ghost = server.ctx.tokens.issue(999_999, "1")
    await client.send("api.auth", {"Token": ghost})
    reply = await client.expect("api.failed")
    assert "exist" in reply["data"]
    await client.close()


async def test_revoked_token_is_refused(server: Server) -> None:
    _uid, token = await make_user(server, "alice")
    assert server.ctx is not None
    claims = server.ctx.tokens.verify(token)
    await server.ctx.store.users.revoke_token(claims.jti, claims.exp * 1000)
    client = await Client.connect(server)
    await client.send("api.auth", {"Token": token})
    reply = await client.expect("api.failed")
    assert "revoked" in reply["data"]
    await client.close()


async def test_credential_login(server: Server) -> None:
    uid, _ = await make_user(server, "alice")
    assert server.ctx is not None
    cred = server.ctx.credentials.issue(uid, "2", "web", "s3cret")
    client = await Client.connect(server)
    seq = await client.send("authenticate", cred)
    reply = await client.expect("notify.success")
    assert reply["seq"] == seq and reply["data"] is None
    bad = await client.send("authenticate", {"credential": "garbage!!", "version": 1})
    # already logged in on this socket as (uid, 2): a garbage credential is still an error
    err = await client.expect("notify.error")
    assert err["seq"] == bad
    await client.close()


async def test_credential_failures(server: Server) -> None:
    client = await Client.connect(server)
    for data in ({"credential": "xx", "version": 1}, {"version": 1}, "nope", None):
        seq = await client.send("authenticate", data)
        reply = await client.expect("notify.error")
        assert reply["seq"] == seq
    await client.close()


@pytest.mark.parametrize(
    "action",
    ["message.chat", "message.cli", "ack.request", "message.chat.recall", "ack.offline", "message.chat.resend"],
)
async def test_actions_before_login_are_refused(server: Server, action: str) -> None:
    uid, _ = await make_user(server, "bob")
    client = await Client.connect(server)
    seq = await client.send(action, {"cliMid": "x", "content": "hi", "mid": 1, "to": str(uid)}, to=str(uid))
    reply = await client.expect("notify.unauthenticated")
    assert reply["seq"] == seq
    # heartbeat and hello stay allowed and the socket stays up
    await client.send("heartbeat", {})
    await client.send("hello", {"client_version": "1"})
    await client.nothing()
    assert server.ctx is not None
    assert await server.ctx.store.messages.inbox(uid) == []
    await client.close()


async def test_same_device_is_kicked_other_devices_stay(server: Server) -> None:
    uid, token1 = await make_user(server, "alice", device="1")
    assert server.ctx is not None
    token1b = server.ctx.tokens.issue(uid, "1")
    token2 = server.ctx.tokens.issue(uid, "2")
    first = await Client.connect(server)
    await first.login(token1)
    other = await Client.connect(server)
    await other.login(token2)
    second = await Client.connect(server)
    await second.login(token1b)

    kick = await first.expect("notify.kickout")
    assert kick["data"]["device_id"] == "1"
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await first.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4001
    await other.nothing()
    assert {c.device for c in server.gateway.hub.devices(uid)} == {"1", "2"}
    await other.close()
    await second.close()


async def test_single_device_mode_kicks_every_other_device(servers) -> None:  # type: ignore[no-untyped-def]
    server = await servers(single_device_per_uid=True)
    uid, token1 = await make_user(server, "alice", device="1")
    first = await Client.connect(server)
    await first.login(token1)
    second = await Client.connect(server)
    await second.login(server.ctx.tokens.issue(uid, "2"))
    kick = await first.expect("notify.kickout")
    assert kick["data"]["device_id"] == "2"
    await second.close()


async def test_disconnect_ends_the_session(server: Server) -> None:
    uid, client = await _online(server)
    await client.close()
    for _ in range(100):
        if not server.gateway.hub.is_online(uid):
            break
        import asyncio

        await asyncio.sleep(0.01)
    assert not server.gateway.hub.is_online(uid)


async def _online(server: Server) -> tuple[int, Client]:
    uid, token = await make_user(server, "carol")
    client = await Client.connect(server)
    await client.login(token)
    return uid, client


async def test_logged_in_idle_sessions_keep_no_state_of_their_own(server: Server) -> None:
    """What every idle session would hold alike is one object for all (memory per connection): the transport
    kind's string, no dict for pushes held during an inbox replay (made only while one is held), and no
    address string (logged at login)."""
    clients, uids = [], []
    for name in ("idle1", "idle2", "idle3"):
        uid, token = await make_user(server, name)
        client = await Client.connect(server)
        await client.login(token)
        clients.append(client)
        uids.append(uid)
    assert server.ctx is not None
    sessions = [server.ctx.hub.devices(uid)[0] for uid in uids]
    assert all(s.kind is sessions[0].kind for s in sessions)
    assert all(s.held is None for s in sessions)
    assert all(s.peer == "" for s in sessions)  # its address went to the login's log line, not kept
    for client in clients:
        await client.close()
