"""/api/user/*, /api/session/ticket, /api/msg/*, envelopes, CORS and hostile input, over a real socket."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from helpers_api import ApiEnv, denied, envelope, ok, serve_api

from glide.auth.ticket import ticket
from glide.store import NewChat


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[ApiEnv]:
    async with serve_api(tmp_path) as env:
        yield env


@pytest.fixture
async def alice(api: ApiEnv) -> str:
    """Alice's token (Bob and Carol exist too)."""
    token = await api.user_token("alice")
    await api.add_user("bob")
    await api.add_user("carol")
    return token


# user


async def test_profile_and_info(api: ApiEnv, alice: str) -> None:
    me = ok(await api.post("/api/user/profile", token=alice))
    assert me == {
        "uid": api.users["alice"],
        "nick_name": "Alice",
        "account": "alice",
        "avatar": "",
        "email": "",
        "guest": False,
    }
    bob, carol = api.users["bob"], api.users["carol"]
    info = ok(await api.post("/api/user/info", {"Uid": [carol, str(bob), 999_999, carol]}, token=alice))
    assert info == [
        {"uid": carol, "nick_name": "Carol", "account": "carol", "avatar": ""},
        {"uid": bob, "nick_name": "Bob", "account": "bob", "avatar": ""},
    ]
    assert ok(await api.post("/api/user/info", {"uid": bob}, token=alice))[0]["uid"] == bob
    assert ok(await api.post("/api/user/info", {"uid": []}, token=alice)) == []


INFO_BAD_INPUT: list[tuple[dict[str, object], str]] = [
    ({}, "uid: required"),
    ({"uid": ["abc"]}, "uid[0]: expected a user id"),
    ({"uid": [1, True]}, "uid[1]"),
    ({"uid": [1.5]}, "uid[0]"),
    ({"uid": [-1]}, "out of range"),
    ({"uid": [2**64]}, "out of range"),
    ({"uid": {"a": 1}}, "uid[0]"),
    ({"uid": list(range(1, 1002))}, "at most 1000"),
]


async def test_info_bad_input(api: ApiEnv, alice: str) -> None:
    for body, mentions in INFO_BAD_INPUT:
        denied(await api.post("/api/user/info", body, token=alice), 400, 300, mentions)


async def test_profile_update(api: ApiEnv, alice: str) -> None:
    assert ok(await api.post("/api/user/profile/update", {"nick_name": "Ally"}, token=alice)) == ""
    assert ok(await api.post("/api/profile/update", {"Avatar": "https://x/y.png"}, token=alice)) == ""  # SDK path
    me = ok(await api.post("/api/user/profile", token=alice))
    assert (me["nick_name"], me["avatar"]) == ("Ally", "https://x/y.png")
    denied(await api.post("/api/user/profile/update", {}, token=alice), 400, 300, "at least one")
    denied(await api.post("/api/user/profile/update", {"nick_name": "x" * 40}, token=alice), 400, 300, "nick_name")
    denied(await api.post("/api/user/profile/update", {"avatar": "ftp://x"}, token=alice), 400, 300, "avatar")
    denied(await api.post("/api/user/profile/update", {"nick_name": "a"}), 401, 401)


# session


async def test_ticket(api: ApiEnv, alice: str) -> None:
    me = await api.store.users.user(api.users["alice"])
    assert me is not None
    bob = api.users["bob"]
    expected = ticket(me.message_deliver_secret, me.uid, str(bob))
    assert ok(await api.post("/api/session/ticket", {"To": str(bob)}, token=alice)) == {"Ticket": expected}
    assert ok(await api.post("/api/session/ticket", {"to": bob}, token=alice)) == {"Ticket": expected}
    channel = ok(await api.post("/api/session/ticket", {"To": "the_world_channel"}, token=alice))
    assert channel == {"Ticket": ticket(me.message_deliver_secret, me.uid, "the_world_channel")}
    denied(await api.post("/api/session/ticket", {"To": "424242"}, token=alice), 404, 2002, "424242")
    denied(await api.post("/api/session/ticket", {}, token=alice), 400, 300, "To: required")
    denied(await api.post("/api/session/ticket", {"To": {"x": 1}}, token=alice), 400, 300, "To")
    denied(await api.post("/api/session/ticket", {"To": "bad channel!"}, token=alice), 400, 300, "To")
    denied(await api.post("/api/session/ticket", {"To": "2"}), 401, 401)


# msg


async def test_history(api: ApiEnv, alice: str) -> None:
    a, b, c = api.users["alice"], api.users["bob"], api.users["carol"]
    mids = []
    for i in range(30):
        sender, receiver = (a, b) if i % 3 else (b, a)
        [r] = await api.store.messages.store_chats([NewChat(api.ids.next(), f"m{i}", sender, receiver, 1, f"t{i}", i)])
        mids.append(r.message.mid)
    await api.store.messages.store_chats([NewChat(api.ids.next(), "x", b, c, 1, "not alice's", 0)])
    await api.store.messages.recall(mids[-1], a, not_before_ms=0)

    page = ok(await api.post("/api/msg/chat/history", {"Uid": b}, token=alice))
    assert [m["Mid"] for m in page] == mids[::-1][:20]  # newest first, default page 20
    newest = page[0]
    assert (newest["From"], newest["To"]) == (a, b)  # GlideIM zeroed these
    assert newest["Status"] == 1 and newest["Content"] == "" and newest["RecallBy"] == a  # recalled: withheld
    third = page[2]
    assert set(third) == {
        "Mid",
        "CliMid",
        "CliSeq",
        "From",
        "To",
        "Type",
        "SendAt",
        "CreateAt",
        "Content",
        "Status",
        "RecallBy",
    }
    assert (third["From"], third["To"], third["Content"], third["Status"]) == (b, a, "t27", 0)
    assert (third["CliMid"], third["SendAt"], third["RecallBy"]) == ("m27", 27, 0)
    rest = ok(
        await api.post(
            "/api/msg/chat/history", {"uid": str(b), "BeforeMid": page[-1]["Mid"], "PageSize": "50"}, token=alice
        )
    )
    assert [m["Mid"] for m in rest] == mids[::-1][20:]
    sdk_style = ok(await api.post("/api/msg/chat/history", {"Uid": b, "Before": mids[5], "PageSize": 2}, token=alice))
    assert [m["Mid"] for m in sdk_style] == [mids[4], mids[3]]
    assert ok(await api.post("/api/msg/chat/history", {"Uid": c}, token=alice)) == []  # not alice's conversation
    assert len(ok(await api.post("/api/msg/chat/history", {"Uid": b, "PageSize": 1000}, token=alice))) == 30


HISTORY_BAD_INPUT: list[tuple[dict[str, object], int, int, str]] = [
    ({}, 400, 300, "uid: required"),
    ({"Uid": "bob"}, 400, 300, "uid"),
    ({"Uid": 424242}, 404, 2002, "424242"),
    ({"Uid": 1, "BeforeMid": -1}, 400, 300, "beforemid"),
    ({"Uid": 1, "BeforeMid": "soon"}, 400, 300, "beforemid"),
    ({"Uid": 1, "PageSize": -3}, 400, 300, "pagesize"),
    ({"Uid": 1, "PageSize": 1.5}, 400, 300, "pagesize"),
]


async def test_history_bad_input(api: ApiEnv, alice: str) -> None:
    for body, status, code, mentions in HISTORY_BAD_INPUT:
        denied(await api.post("/api/msg/chat/history", body, token=alice), status, code, mentions)


async def test_mid(api: ApiEnv, alice: str) -> None:
    mids = [ok(await api.post("/api/msg/id", token=alice))["mid"] for _ in range(5)]
    assert mids == sorted(set(mids)) and all(0 < m < 2**53 for m in mids)
    assert api.ids.next() > mids[-1]  # the node's one generator
    denied(await api.post("/api/msg/id"), 401, 401)


# envelopes, routing, CORS


async def test_unknown_route_and_wrong_method(api: ApiEnv) -> None:
    denied(await api.post("/api/no/such/route", {}), 404, 404, "/api/no/such/route")
    r = await api.client.get("/api/auth/signin")
    denied(r, 405, 405, "POST")
    r = await api.client.get("/elsewhere")
    assert r.status_code == 404 and envelope(r)["Code"] == 404


async def test_cors(api: ApiEnv) -> None:
    preflight = {"Origin": "http://app", "Access-Control-Request-Method": "POST"}
    r = await api.client.options("/api/auth/signin", headers=preflight)
    assert r.status_code == 204 and r.content == b""
    assert r.headers["access-control-allow-origin"] == "*"
    assert "Authorization" in r.headers["access-control-allow-headers"]
    assert "POST" in r.headers["access-control-allow-methods"]
    assert r.headers["access-control-allow-credentials"] == "true"
    r = await api.post("/api/auth/signin", {})
    assert r.headers["access-control-allow-origin"] == "*"  # on errors too


def hostile_bodies() -> Iterator[tuple[str, bytes]]:
    yield "not json", b"{not json"
    yield "truncated", b'{"email": "a'
    yield "array", b"[1, 2, 3]"
    yield "string", b'"hello"'
    yield "number", b"42"
    yield "null", b"null"
    yield "NaN", b'{"uid": NaN}'
    yield "Infinity", b'{"PageSize": Infinity}'
    yield "bad utf-8", b'{"email": "\xff\xfe"}'
    yield "deep nesting", b"[" * 100_000 + b"]" * 100_000
    yield "lone surrogate", b'{"account": "\\ud800x", "nickname": "\\udfff", "to": "\\ud800", "token": "\\ud800"}'
    yield (
        "wrong types",
        json.dumps(
            {
                "email": 1,
                "password": [],
                "uid": {"a": 1},
                "to": 1.5,
                "token": 7,
                "nick_name": False,
                "avatar": 3,
                "beforemid": [],
                "device": {},
            }
        ).encode(),
    )
    yield "huge numbers", json.dumps({"uid": 10**400, "to": -(10**30), "pagesize": 10**30}).encode()


ROUTES = [
    "auth/register",
    "auth/signin",
    "auth/signin_v2",
    "auth/token",
    "auth/guest",
    "auth/logout",
    "user/profile",
    "user/info",
    "user/profile/update",
    "profile/update",
    "session/ticket",
    "msg/chat/history",
    "msg/id",
]


async def test_hostile_input_never_yields_500(api: ApiEnv, alice: str) -> None:
    for route in ROUTES:
        for name, raw in hostile_bodies():
            r = await api.client.post(
                f"/api/{route}",
                content=raw,
                headers={"Authorization": f"Bearer {alice}", "Content-Type": "application/json"},
            )
            body = envelope(r)
            assert r.status_code < 500, (route, name, r.status_code, body)
            if r.status_code != 200:
                assert body["Code"] != 100 and body["Data"] is None and body["Msg"], (route, name, body)


@pytest.mark.parametrize("route", ["auth/signin", "user/info"])
async def test_oversized_bodies(api: ApiEnv, alice: str, route: str) -> None:
    big = b'{"email": "' + b"x" * (1 << 20) + b'"}'
    headers = {"Authorization": f"Bearer {alice}"}
    denied(await api.client.post(f"/api/{route}", content=big, headers=headers), 413, 300, "too large")

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: the cap applies while streaming
        for _ in range(40):
            yield b" " * 65536

    denied(await api.client.post(f"/api/{route}", content=chunked(), headers=headers), 413, 300, "too large")
    ok(await api.post("/api/user/profile", token=alice))  # the server is fine afterwards
