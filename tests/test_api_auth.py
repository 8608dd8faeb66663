"""/api/auth/*: register, sign in, token refresh, guest, logout, and every denial, over a real socket."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from helpers_api import PASSWORD, ApiEnv, denied, ok, serve_api

from glide.auth.tokens import TokenService


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[ApiEnv]:
    async with serve_api(tmp_path) as env:
        yield env


@pytest.fixture
async def alice(api: ApiEnv) -> str:
    await api.add_user("alice")
    return "alice"


# register


async def test_register_with_account_email_or_both(api: ApiEnv) -> None:
    a = ok(await api.post("/api/auth/register", {"account": "alice", "password": PASSWORD}))
    b = ok(
        await api.post(
            "/api/auth/register",
            {"email": "bob@example.com", "password": PASSWORD, "nickname": "Bob", "captcha": "ignored"},
        )
    )
    c = ok(
        await api.post(
            "/api/auth/register",
            {"Account": "carol", "Email": "carol@example.com", "Password": PASSWORD, "unknown": [1, 2]},
        )
    )
    assert a["uid"] < b["uid"] < c["uid"]
    bob = await api.store.users.user(b["uid"])
    assert bob is not None and bob.account == "bob@example.com" and bob.nickname == "Bob"
    assert bob.password_hash.startswith("$argon2id$")
    alice = await api.store.users.user(a["uid"])
    assert alice is not None and alice.nickname == "alice" and alice.email is None


async def test_register_duplicates(api: ApiEnv) -> None:
    await api.register("alice", "alice@example.com")
    for body in ({"account": "ALICE"}, {"email": "Alice@Example.com"}, {"account": "alice@example.com"}):
        r = await api.post("/api/auth/register", {**body, "password": PASSWORD})
        denied(r, 409, 1004, "already registered")


REGISTER_BAD_INPUT: list[tuple[dict[str, object], str]] = [
    ({"account": "x"}, "password: required"),
    ({"account": "x", "password": "12345"}, "password: must be 6 to 64"),
    ({"account": "x", "password": "p" * 65}, "password: must be 6 to 64"),
    ({"account": "x", "password": 123456}, "password: expected a string"),
    ({"password": PASSWORD}, "account or email"),
    ({"account": "", "email": "", "password": PASSWORD}, "account or email"),
    ({"email": "not-an-email", "password": PASSWORD}, "email: not an e-mail"),
    ({"email": ["a@b.c"], "password": PASSWORD}, "email: expected a string"),
    ({"account": "has space", "password": PASSWORD}, "account"),
    ({"account": "a" * 65, "password": PASSWORD}, "account: must be"),
    ({"account": "x", "password": PASSWORD, "nickname": "n" * 33}, "nickname"),
    ({"account": "x\u0000y", "password": PASSWORD}, "account: must not contain control"),
    ({"account": "ok", "password": PASSWORD, "nickname": {"a": 1}}, "nickname: expected a string"),
]


async def test_register_bad_input(api: ApiEnv) -> None:
    for body, mentions in REGISTER_BAD_INPUT:
        denied(await api.post("/api/auth/register", body), 400, 300, mentions)
    assert await api.store.users.users(list(range(1, 20))) == []  # nothing was created


# sign in


async def test_signin_v1_and_v2(api: ApiEnv) -> None:
    uid = await api.register("alice", "alice@example.com")
    v1 = ok(await api.post("/api/auth/signin", {"email": "alice", "password": PASSWORD, "device": 2}))
    assert set(v1) == {"token", "uid", "servers", "nick_name", "email", "phone", "device", "app_id"}
    assert v1["uid"] == uid and v1["device"] == 2 and v1["app_id"] == 1 and v1["email"] == "alice@example.com"
    assert v1["servers"] == [api.config.ws_url] and v1["nick_name"] == "Alice"
    claims = api.tokens.verify(v1["token"])
    assert (claims.uid, claims.device) == (uid, "2")
    v2 = await api.login("ALICE@example.com", device="3")  # e-mail login, case-insensitive; keys any case
    assert v2["credential"]["version"] == 1
    creds = api.credentials.open(v2["credential"]["credential"])
    user = await api.store.users.user(uid)
    assert user is not None
    assert (creds.uid, creds.device, creds.secrets.message_deliver_secret) == (uid, "3", user.message_deliver_secret)
    by_account = ok(await api.post("/api/auth/signin", {"account": "alice", "password": PASSWORD}))
    assert by_account["device"] == 0  # no device: GlideIM's zero value


async def test_signin_denials(api: ApiEnv) -> None:
    await api.register("alice")
    wrong = await api.post("/api/auth/signin_v2", {"email": "alice", "password": "wrong-password"})
    unknown = await api.post("/api/auth/signin_v2", {"email": "nobody", "password": PASSWORD})
    # the same answer for both: the response does not reveal which accounts exist
    assert denied(wrong, 401, 1002, "wrong account or password") == denied(unknown, 401, 1002)
    denied(await api.post("/api/auth/signin", {"password": PASSWORD}), 400, 300, "email or account: required")
    denied(await api.post("/api/auth/signin", {"email": "alice"}), 400, 300, "password: required")
    denied(
        await api.post("/api/auth/signin", {"email": "alice", "password": PASSWORD, "device": [1]}), 400, 300, "device"
    )
    denied(
        await api.post("/api/auth/signin", {"email": "alice", "password": PASSWORD, "device": "a b"}),
        400,
        300,
        "device",
    )


# token refresh


async def test_token_refresh(api: ApiEnv, alice: str) -> None:
    first = await api.login(alice, device=2)
    renewed = ok(await api.post("/api/auth/token", {"Token": first["token"]}))
    assert renewed["token"] != first["token"] and renewed["uid"] == first["uid"] and renewed["device"] == 2
    assert api.credentials.open(renewed["credential"]["credential"]).uid == first["uid"]
    via_header = ok(await api.post("/api/auth/token", {}, token=first["token"]))
    assert via_header["uid"] == first["uid"]


async def test_token_refresh_denials(api: ApiEnv, alice: str) -> None:
    denied(await api.post("/api/auth/token", {"token": "garbage"}), 401, 401, "malformed")
    denied(await api.post("/api/auth/token", {}), 401, 401, "missing token")
    token = (await api.login(alice))["token"]
    ok(await api.post("/api/auth/logout", token=token))
    denied(await api.post("/api/auth/token", {"token": token}), 401, 401, "revoked")


# guest


async def test_guest(api: ApiEnv) -> None:
    g = ok(await api.post("/api/auth/guest", {"avatar": "https://img/a.png", "nickname": "Visitor"}))
    assert g["device"] == -1 and g["nick_name"] == "Visitor"
    claims = api.tokens.verify(g["token"])
    assert claims.device == "-1" and claims.exp - time.time() > api.config.token_ttl_s  # guest lifetime (7 days)
    assert api.credentials.open(g["credential"]["credential"]).uid == g["uid"]
    user = await api.store.users.user(g["uid"])
    assert user is not None and user.guest and user.avatar == "https://img/a.png"
    anonymous = ok(await api.post("/api/auth/guest"))  # no body at all: defaults
    assert anonymous["uid"] != g["uid"] and anonymous["nick_name"].startswith("guest-")
    # a guest has no password: it can never sign in
    denied(await api.post("/api/auth/signin", {"account": user.account, "password": "!"}), 401, 1002)
    denied(await api.post("/api/auth/guest", {"avatar": "javascript:alert(1)"}), 400, 300, "avatar")
    denied(await api.post("/api/auth/guest", {"nickname": 5}), 400, 300, "nickname")


# logout and tokens on authenticated routes


async def test_logout_revokes_only_that_token_and_tells_the_gateway(api: ApiEnv, alice: str) -> None:
    web = (await api.login(alice, device=2))["token"]
    phone = (await api.login(alice, device=3))["token"]
    assert ok(await api.post("/api/auth/logout", token=web)) == ""
    assert api.hooks.logouts == [(api.users["alice"], "2")]
    denied(await api.post("/api/user/profile", token=web), 401, 401, "revoked")
    denied(await api.post("/api/auth/logout", token=web), 401, 401, "revoked")
    assert ok(await api.post("/api/user/profile", token=phone))["uid"] == api.users["alice"]


async def test_authentication_denials(api: ApiEnv, alice: str) -> None:
    uid = api.users[alice]
    denied(await api.post("/api/user/profile"), 401, 401, "missing token")
    denied(await api.post("/api/user/profile", token="not.a.jwt"), 401, 401, "malformed")
    expired = TokenService(api.config.jwt_secret, 60, 60, clock=lambda: time.time() - 3600).issue(uid, "1")
    denied(await api.post("/api/user/profile", token=expired), 401, 401, "expired")
    forged = TokenService("someone-elses-secret-0123456789abcdef", 60, 60).issue(uid, "1")
    denied(await api.post("/api/user/profile", token=forged), 401, 401, "signature")
    ghost = api.tokens.issue(999_999, "1")
    denied(await api.post("/api/user/profile", token=ghost), 401, 401, "does not exist")
    # "Bearer " is optional, as in GlideIM
    token = (await api.login(alice))["token"]
    r = await api.client.post("/api/user/profile", headers={"Authorization": token})
    assert ok(r)["uid"] == uid
    r = await api.client.post("/api/user/profile", headers={"Authorization": f"bearer   {token}"})
    assert ok(r)["uid"] == uid
