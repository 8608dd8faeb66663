"""glide.client against a live server: chat with both acknowledgements, resend without duplicates, groups,
custom frames and API calls over the socket, a refused token, and reconnecting after the server dropped the
connection (what was sent meanwhile arrives once); a newer login of the same device ends the session."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import make_user

from glide.client import Chat, ClientError, Closed, Custom, Delivered, GlideClient, GroupMessage, Notice
from glide.server import Server


def url(server: Server) -> str:
    return f"ws://127.0.0.1:{server.ws_port}/ws"


async def next_of(client: GlideClient, kind: type, timeout: float = 5.0):  # type: ignore[no-untyped-def]
    while True:
        event = await client.next_event(timeout)
        if isinstance(event, kind):
            return event


async def test_chat_with_both_acknowledgements(server: Server) -> None:
    a, token_a = await make_user(server, "ann")
    b, token_b = await make_user(server, "ben")
    async with GlideClient(url(server), token_a) as ann, GlideClient(url(server), token_b) as ben:
        assert (ann.uid, ben.uid) == (a, b)
        mid = await ann.send_chat(b, "hello", msg_type=11)
        got = await next_of(ben, Chat)
        assert (got.mid, got.sender, got.to, got.type, got.content) == (mid, a, b, 11, "hello")
        assert await next_of(ann, Delivered) == Delivered(mid, stored_only=False)  # ben acknowledged it
        # the same cliMid again is the same message, delivered once
        assert await ann.send_chat(b, "hello", cli_mid=got.cli_mid) == mid
        mid2 = await ann.send_chat(b, "second")
        assert (await next_of(ben, Chat)).mid == mid2
        await ann.send_custom(b, {"type": 10020})
        assert await next_of(ben, Custom) == Custom(a, {"type": 10020})
        info = await ann.call("user/info", {"Uid": [b]})
        assert info[0]["uid"] == b
        with pytest.raises(ClientError, match="user/info"):
            await ann.call("user/info", {"Uid": "nope"})
        with pytest.raises(ClientError, match="refused"):
            await ann.send_chat(10**9, "nobody")


async def test_an_offline_receiver_and_groups(server: Server) -> None:
    a, token_a = await make_user(server, "cat")
    b, token_b = await make_user(server, "dan")
    async with GlideClient(url(server), token_a) as cat:
        mid = await cat.send_chat(b, "while you were away")
        assert await next_of(cat, Delivered) == Delivered(mid, stored_only=True)
        async with GlideClient(url(server), token_b) as dan:
            assert (await next_of(dan, Chat)).mid == mid  # the inbox, on login
            gid = (await cat.call("group/create", {"Name": "pair", "Members": [b]}))["Gid"]
            assert (await next_of(dan, Notice)).action == "message.group.notify"
            mid, seq = await cat.send_group(gid, "to the group")
            got = await next_of(dan, GroupMessage)
            assert (got.gid, got.mid, got.seq, got.sender, got.content) == (gid, mid, seq, a, "to the group")


async def test_a_refused_token_is_a_clear_error(server: Server) -> None:
    with pytest.raises(ClientError, match="login refused"):
        await GlideClient(url(server), "not-a-token").connect()


async def test_reconnects_and_gets_what_was_sent_meanwhile_once(server: Server) -> None:
    _, token_a = await make_user(server, "eve")
    b, token_b = await make_user(server, "fay")
    admin = {"Authorization": f"Bearer {server.config.admin_token}"}
    async with GlideClient(url(server), token_a) as eve, GlideClient(url(server), token_b) as fay:
        first = await eve.send_chat(b, "before")
        assert (await next_of(fay, Chat)).mid == first
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}/api") as http:
            r = await http.post("/admin/kick", json={"Uid": b}, headers=admin)  # the server drops fay
            assert r.json()["Data"] == {"Here": True}
        sent = [await eve.send_chat(b, f"meanwhile {i}") for i in range(5)]
        got = [(await next_of(fay, Chat, 10)).mid for _ in sent]
        assert got == sent and fay.reconnects >= 1
        with pytest.raises(TimeoutError):  # and nothing twice
            await next_of(fay, Chat, 0.5)


async def test_a_newer_login_of_the_same_device_ends_the_session(server: Server) -> None:
    _, token = await make_user(server, "gus")
    async with GlideClient(url(server), token) as old, GlideClient(url(server), token):
        closed = await next_of(old, Closed)
        assert closed.code == 4001
        await asyncio.sleep(0.3)
        assert old.reconnects == 0  # it did not come back to kick the new one out


async def test_world_channel_frames_are_notices(servers) -> None:  # type: ignore[no-untyped-def]
    """GlideIM's world channel (on by default) pushes group frames without a numeric group or a mid: they come
    as notices, and the session goes on."""
    server: Server = await servers(world_channel=True)
    a, token_a = await make_user(server, "eve")
    _, token_b = await make_user(server, "fay")
    async with GlideClient(url(server), token_a) as eve, GlideClient(url(server), token_b) as fay:
        joined = await next_of(eve, Notice)
        assert joined.action == "message.group" and joined.data["to"] == "the_world_channel"
        mid = await fay.send_chat(a, "after the world")
        assert (await next_of(eve, Chat)).mid == mid


async def test_the_readme_worked_example_runs_against_a_live_server(servers) -> None:  # type: ignore[no-untyped-def]
    server: Server = await servers(world_channel=True)  # as `glide serve` runs by default
    readme = Path(__file__).resolve().parent.parent / "README.md"
    code = re.search(r"### Worked example.*?```python\n(.*?)```", readme.read_text(), re.DOTALL)
    assert code is not None
    scope: dict[str, Any] = {}
    exec(compile(code.group(1), str(readme), "exec"), scope)  # the README's own example
    await scope["worked_example"](f"http://127.0.0.1:{server.http_port}/api", url(server))
