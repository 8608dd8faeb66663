"""Abuse limits, on by default and configurable: messages per connection per second, sign-in attempts per
client address, wrong passwords per account, guest accounts per address. Each refusal is a clear error (an
error frame with the request's seq; HTTP 429 with Retry-After) and nothing refused is stored."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import httpx
from helpers import Client, make_user
from helpers_api import PASSWORD, password_hash
from im_support import http_client

from glide.config import Config


def test_limits_are_on_by_default() -> None:
    c = Config()
    assert c.message_rate > 0 and c.signin_per_minute > 0 and c.signin_failures_per_hour > 0
    assert c.guests_per_minute > 0 and c.http_max_connections > 0


async def test_a_message_flood_is_cut_to_the_rate(servers: Callable[..., Any]) -> None:
    server = await servers(message_rate=2, message_burst=10)
    a, token = await make_user(server, "flooder")
    b, _ = await make_user(server, "victim")
    client = await Client.connect(server)
    await client.login(token)
    started = time.monotonic()
    seqs = [
        await client.send("message.chat", {"cliMid": f"f{i}", "content": "x", "to": str(b), "type": 1}, to=str(b))
        for i in range(100)
    ]
    answers: dict[int, dict[str, Any]] = {}
    while len(answers) < len(seqs):
        frame = await client.recv(timeout=10)
        if frame["action"] in ("ack.message", "notify.error"):
            assert frame["seq"] not in answers
            answers[frame["seq"]] = frame
    elapsed = time.monotonic() - started
    acked = [f for f in answers.values() if f["action"] == "ack.message"]
    limited = [f for f in answers.values() if f["action"] == "notify.error"]
    assert 10 <= len(acked) <= 10 + math.ceil(elapsed * 2) + 1
    assert limited and all("rate limit" in f["data"] for f in limited)
    assert server.ctx is not None
    stored = [await server.ctx.store.messages.chat_by_cli_mid(a, f"f{i}") for i in range(100)]
    assert sum(m is not None for m in stored) == len(acked)  # nothing refused was stored
    # Heartbeats and acks are not counted: the connection stays usable.
    await client.send("heartbeat")
    await client.close()


async def signin(http: httpx.AsyncClient, account: str, password: str) -> httpx.Response:
    return await http.post("/api/auth/signin", json={"account": account, "password": password})


async def test_sign_in_attempts_per_address(servers: Callable[..., Any]) -> None:
    server = await servers(signin_per_minute=5, signin_failures_per_hour=0)
    assert server.ctx is not None
    await server.ctx.store.users.create_user(
        account="amy", email=None, nickname="A", avatar="", password_hash=password_hash()
    )
    async with http_client(server) as http:
        codes = [(await signin(http, "amy", "wrong-guess")).status_code for _ in range(5)]
        assert codes == [401] * 5
        refused = await signin(http, "amy", PASSWORD)  # even the right password: the address is over its limit
        assert refused.status_code == 429 and refused.json()["Code"] == 429
        assert "sign-in attempts" in refused.json()["Msg"] and int(refused.headers["Retry-After"]) >= 1
        r = await http.post("/api/auth/register", json={"account": "new", "password": PASSWORD})
        assert r.status_code == 429  # registering costs argon2 as well
    assert await server.ctx.store.users.user_by_login("new") is None


async def test_wrong_passwords_per_account(servers: Callable[..., Any]) -> None:
    server = await servers(signin_per_minute=0, signin_failures_per_hour=3)
    assert server.ctx is not None
    for name in ("bea", "cid"):
        await server.ctx.store.users.create_user(
            account=name, email=None, nickname=name, avatar="", password_hash=password_hash()
        )
    async with http_client(server) as http:
        assert (await signin(http, "cid", PASSWORD)).status_code == 200
        for _ in range(3):
            assert (await signin(http, "BEA", "nope-nope")).status_code == 401  # case-folded: one account
        locked = await signin(http, "bea", PASSWORD)
        assert locked.status_code == 429 and "wrong passwords for this account" in locked.json()["Msg"]
        assert (await signin(http, "cid", PASSWORD)).status_code == 200  # other accounts are not affected
        # Unknown accounts are counted too (no probing of which exist at full speed).
        for _ in range(3):
            assert (await signin(http, "ghost", "x" * 8)).status_code == 401
        assert (await signin(http, "ghost", "x" * 8)).status_code == 429


async def test_guest_accounts_per_address(servers: Callable[..., Any]) -> None:
    server = await servers(guests_per_minute=3)
    async with http_client(server) as http:
        made = [await http.post("/api/auth/guest", json={}) for _ in range(3)]
        assert [r.status_code for r in made] == [200] * 3
        refused = await http.post("/api/auth/guest", json={})
        assert refused.status_code == 429 and "guest accounts" in refused.json()["Msg"]
        assert "Retry-After" in refused.headers
