"""Group membership, roles and mutes end to end: notices to members, and every denial of the rules."""

from __future__ import annotations

import json

import pytest
from group_support import GClient, Http, User, make_group, token, user
from helpers_api import denied, ok

from glide.server import Server
from glide.store.groups import (
    NOTICE_DISSOLVED,
    NOTICE_GROUP_MUTED,
    NOTICE_MEMBER_LEFT,
    NOTICE_MEMBERS_ADDED,
    NOTICE_MEMBERS_MUTED,
    NOTICE_MEMBERS_REMOVED,
    NOTICE_MEMBERS_UNMUTED,
    NOTICE_OWNER_TRANSFERRED,
    NOTICE_ROLE_CHANGED,
    NOTICE_SETTINGS_CHANGED,
)


async def notice(c: GClient, gid: int, type_: int) -> dict[str, object]:
    frame = await c.push("message.group.notify")
    data: dict[str, object] = frame["data"]
    assert data["gid"] == gid and data["type"] == type_, data
    assert frame["to"] == str(gid)
    return data


async def last_seq(c: GClient, gid: int) -> int:
    seq: int = (await c.call("msg/group/state", {"Gid": gid}))["LastSeq"]
    return seq


async def test_create_notifies_every_member_and_is_seq_one(server: Server) -> None:
    alice = await user(server, "alice", devices=2)
    bob = await user(server, "bob")
    data = await alice.c.call("group/create", {"Name": "team", "Avatar": "a.png", "Members": [bob.uid, bob.uid]})
    gid = data["Gid"]
    assert data["Seq"] == 1
    for c in (*alice.clients, bob.c):
        n = await notice(c, gid, NOTICE_MEMBERS_ADDED)
        assert n["uids"] == [alice.uid, bob.uid] and n["by"] == alice.uid and n["seq"] == 1
        assert n["body"] == {"gid": gid, "type": 1, "uids": [alice.uid, bob.uid], "by": alice.uid}
    info = await bob.c.call("group/info", {"Gid": [gid]})
    assert info[0] | {"CreateAt": 0} == {
        "Gid": gid, "Name": "team", "Avatar": "a.png", "Mute": False, "Flag": 0, "CreateAt": 0,
        "Owner": alice.uid, "Dissolved": False, "LastSeq": 1, "JoinPolicy": "invite", "HistoryFromJoin": True,
    }  # fmt: skip
    members = await bob.c.call("group/members", {"Gid": gid})
    assert [(m["Uid"], m["Type"], m["Online"], m["Mute"]) for m in members] == [
        (alice.uid, 1, True, False),
        (bob.uid, 3, True, False),
    ]
    # the creator and the initial members start with nothing unread
    assert (await bob.c.call("msg/group/state", {"Gid": gid}))["Unread"] == 0


async def test_join_invite_remove_leave_reach_the_members_and_the_removed(server: Server) -> None:
    alice, bob, carol, dave = [await user(server, n) for n in ("alice", "bob", "carol", "dave")]
    gid = await make_group(alice, bob)
    await alice.c.call("group/settings", {"Gid": gid, "JoinPolicy": "open"})
    for c in (alice.c, bob.c):
        await notice(c, gid, NOTICE_SETTINGS_CHANGED)
    assert await carol.c.call("group/join", {"Gid": gid}) == ""
    for c in (alice.c, bob.c, carol.c):
        n = await notice(c, gid, NOTICE_MEMBERS_ADDED)
        assert n["uids"] == [carol.uid] and n["by"] == carol.uid and n["seq"] == 3
    assert "already a member" in await carol.c.fails("group/join", {"Gid": gid})

    await alice.c.call("group/members/invite", {"Gid": gid, "Uid": [dave.uid, bob.uid]})
    for c in (alice.c, bob.c, carol.c, dave.c):
        n = await notice(c, gid, NOTICE_MEMBERS_ADDED)
        assert n["uids"] == [dave.uid] and n["by"] == alice.uid  # bob was already in: skipped
    assert "already members" in await alice.c.fails("group/members/invite", {"Gid": gid, "Uid": [dave.uid]})

    await alice.c.call("group/members/remove", {"Gid": gid, "Uid": [dave.uid]})
    for c in (alice.c, bob.c, carol.c, dave.c):  # the removed member learns it too
        n = await notice(c, gid, NOTICE_MEMBERS_REMOVED)
        assert n["uids"] == [dave.uid]
    await carol.c.call("group/leave", {"Gid": gid})
    for c in (alice.c, bob.c, carol.c):
        assert (await notice(c, gid, NOTICE_MEMBER_LEFT))["uids"] == [carol.uid]
    await dave.c.quiet(0.1)

    # every change is in the seq stream as a notice, for members who were offline
    page = await bob.c.call("msg/group/range", {"Gid": gid, "FromSeq": 1, "ToSeq": 10})
    assert [(m["Seq"], m["Kind"], m["Type"]) for m in page] == [
        (1, 1, NOTICE_MEMBERS_ADDED),
        (2, 1, NOTICE_SETTINGS_CHANGED),
        (3, 1, NOTICE_MEMBERS_ADDED),
        (4, 1, NOTICE_MEMBERS_ADDED),
        (5, 1, NOTICE_MEMBERS_REMOVED),
        (6, 1, NOTICE_MEMBER_LEFT),
    ]
    assert json.loads(page[1]["Content"]) == {
        "gid": gid, "type": 12, "uids": [], "by": alice.uid, "join_policy": 2, "history_from_join": 1
    }  # fmt: skip
    assert json.loads(page[4]["Content"]) == {"gid": gid, "type": 2, "uids": [dave.uid], "by": alice.uid}
    members = await alice.c.call("group/members", {"Gid": gid})
    assert [m["Uid"] for m in members] == [alice.uid, bob.uid]


async def test_only_members_send_and_read(server: Server) -> None:
    alice, bob, eve = [await user(server, n) for n in ("alice", "bob", "eve")]
    gid = await make_group(alice, bob)
    refused = await eve.c.group_send(gid, "let me in", "E-1")
    assert refused["action"] == "notify.error" and "not a member" in refused["data"]
    for route, body in (
        ("msg/group/history", {"Gid": gid}),
        ("msg/group/recent", {"Gid": gid}),
        ("msg/group/range", {"Gid": gid, "FromSeq": 1, "ToSeq": 5}),
        ("msg/group/state", {"Gid": gid}),
        ("msg/group/read", {"Gid": gid, "Seq": 1}),
        ("group/members", {"Gid": gid}),
        ("group/leave", {"Gid": gid}),
    ):
        assert "not a member" in await eve.c.fails(route, body), route
        async with Http(server) as h:
            denied(await h.post(f"/api/{route}", body, token(server, eve.uid)), 403, 403, "not a member")
    assert await eve.c.call("msg/group/state/all") == []
    # a removed member loses read access at once
    await alice.c.call("group/members/remove", {"Gid": gid, "Uid": [bob.uid]})
    assert "not a member" in await bob.c.fails("msg/group/recent", {"Gid": gid})
    assert (await bob.c.group_send(gid, "still here?", "B-1"))["action"] == "notify.error"
    assert await last_seq(alice.c, gid) == 2  # creation + removal, no message


async def test_muted_member_and_muted_group(server: Server) -> None:
    alice, bob, carol = [await user(server, n) for n in ("alice", "bob", "carol")]
    gid = await make_group(alice, bob, carol)
    await alice.c.call("group/members/role", {"Gid": gid, "Uid": carol.uid, "Role": "admin"})
    await alice.c.call("group/mute", {"Gid": gid, "Uid": [bob.uid], "Mute": True})
    for c in (alice.c, bob.c, carol.c):
        await notice(c, gid, NOTICE_ROLE_CHANGED)
        assert (await notice(c, gid, NOTICE_MEMBERS_MUTED))["uids"] == [bob.uid]
    before = await last_seq(alice.c, gid)
    refused = await bob.c.group_send(gid, "shh", "M-1")
    assert refused["action"] == "notify.error" and "muted" in refused["data"]
    assert await last_seq(alice.c, gid) == before
    # muting again changes nothing and notifies nobody
    await alice.c.call("group/mute", {"Gid": gid, "Uid": [bob.uid], "Mute": 1})
    await alice.c.call("group/mute", {"Gid": gid, "Uid": [bob.uid], "Mute": False})
    assert (await notice(bob.c, gid, NOTICE_MEMBERS_UNMUTED))["uids"] == [bob.uid]
    assert (await bob.c.group_send(gid, "back", "M-2"))["action"] == "ack.message"

    await carol.c.call("group/mute", {"Gid": gid, "Mute": True})  # an admin mutes the whole group
    assert (await notice(bob.c, gid, NOTICE_GROUP_MUTED))["by"] == carol.uid
    refused = await bob.c.group_send(gid, "plain member", "M-3")
    assert refused["action"] == "notify.error" and "is muted" in refused["data"]
    assert (await carol.c.group_send(gid, "admin", "M-4"))["action"] == "ack.message"
    assert (await alice.c.group_send(gid, "owner", "M-5"))["action"] == "ack.message"
    assert (await bob.c.call("group/info", {"Gid": gid}))[0]["Mute"] is True
    members = {m["Uid"]: m for m in await bob.c.call("group/members", {"Gid": gid})}
    assert members[carol.uid]["Type"] == 2


async def test_managing_needs_owner_or_admin_and_admins_do_not_touch_the_owner_or_admins(server: Server) -> None:
    owner, admin, admin2, member, outsider = [
        await user(server, n) for n in ("owner", "admin", "admin2", "member", "outsider")
    ]
    gid = await make_group(owner, admin, admin2, member)
    for a in (admin, admin2):
        await owner.c.call("group/members/role", {"Gid": gid, "Uid": a.uid, "Role": 2})
    start = await last_seq(owner.c, gid)

    async def refused(u: User, route: str, body: dict[str, object], mentions: str) -> None:
        assert mentions in await u.c.fails(route, {"Gid": gid, **body}), (u.name, route, body)

    # plain members manage nothing
    for route, body in (
        ("group/members/invite", {"Uid": [outsider.uid]}),
        ("group/members/remove", {"Uid": [admin.uid]}),
        ("group/mute", {"Uid": [admin.uid], "Mute": True}),
        ("group/mute", {"Mute": True}),
    ):
        await refused(member, route, body, "only the owner or an admin")
    await refused(member, "group/members/role", {"Uid": member.uid, "Role": 2}, "only the owner")
    await refused(member, "group/transfer", {"Uid": member.uid}, "only the owner")
    await refused(member, "group/dissolve", {}, "only the owner")
    # outsiders neither
    await refused(outsider, "group/members/invite", {"Uid": [outsider.uid]}, "not a member")
    # admins: not the owner, not another admin, not roles, not transfer, not dissolve
    await refused(admin, "group/members/remove", {"Uid": [owner.uid]}, "owner")
    await refused(admin, "group/members/remove", {"Uid": [admin2.uid]}, "another admin")
    await refused(admin, "group/members/remove", {"Uid": [member.uid, admin2.uid]}, "another admin")
    await refused(admin, "group/mute", {"Uid": [owner.uid], "Mute": True}, "owner")
    await refused(admin, "group/mute", {"Uid": [admin2.uid], "Mute": True}, "another admin")
    await refused(admin, "group/members/remove", {"Uid": [admin.uid]}, "yourself")
    await refused(admin, "group/members/role", {"Uid": member.uid, "Role": 2}, "only the owner")
    await refused(admin, "group/transfer", {"Uid": admin.uid}, "only the owner")
    await refused(admin, "group/dissolve", {}, "only the owner")
    await refused(admin, "group/members/remove", {"Uid": [outsider.uid]}, "not members")
    # the owner cannot leave, demote or mute itself
    await refused(owner, "group/leave", {}, "transfer ownership or dissolve")
    await refused(owner, "group/members/role", {"Uid": owner.uid, "Role": 3}, "transferring")
    await refused(owner, "group/mute", {"Uid": [owner.uid], "Mute": True}, "yourself")
    await refused(owner, "group/transfer", {"Uid": outsider.uid}, "not a member")
    # HTTP answers the same with 403
    async with Http(server) as h:
        body = {"Gid": gid, "Uid": [owner.uid]}
        denied(await h.post("/api/group/members/remove", body, token(server, admin.uid)), 403, 403, "owner")
    assert await last_seq(owner.c, gid) == start  # nothing of that was stored
    assert [m["Uid"] for m in await owner.c.call("group/members", {"Gid": gid})] == [
        owner.uid, admin.uid, admin2.uid, member.uid,
    ]  # fmt: skip

    # what they may do
    await admin.c.call("group/members/remove", {"Gid": gid, "Uid": [member.uid]})
    await owner.c.call("group/members/remove", {"Gid": gid, "Uid": [admin2.uid]})
    await admin.c.call("group/members/invite", {"Gid": gid, "Uid": [outsider.uid]})
    assert [m["Uid"] for m in await owner.c.call("group/members", {"Gid": gid})] == [
        owner.uid, admin.uid, outsider.uid,
    ]  # fmt: skip


async def test_transfer_then_the_old_owner_may_leave(server: Server) -> None:
    alice, bob = [await user(server, n) for n in ("alice", "bob")]
    gid = await make_group(alice, bob)
    await alice.c.call("group/mute", {"Gid": gid, "Uid": [bob.uid], "Mute": True})
    await alice.c.call("group/transfer", {"Gid": gid, "Uid": bob.uid})
    for c in (alice.c, bob.c):
        await notice(c, gid, NOTICE_MEMBERS_MUTED)
        n = await notice(c, gid, NOTICE_OWNER_TRANSFERRED)
        assert n["uids"] == [bob.uid] and n["body"]["from"] == alice.uid  # type: ignore[index]
    roles = {m["Uid"]: (m["Type"], m["Mute"]) for m in await bob.c.call("group/members", {"Gid": gid})}
    assert roles == {bob.uid: (1, False), alice.uid: (2, False)}  # the new owner is unmuted
    assert (await bob.c.call("group/info", {"Gid": gid}))[0]["Owner"] == bob.uid
    assert "only the owner" in await alice.c.fails("group/dissolve", {"Gid": gid})
    await alice.c.call("group/leave", {"Gid": gid})
    assert [m["Uid"] for m in await bob.c.call("group/members", {"Gid": gid})] == [bob.uid]


async def test_dissolve_freezes_the_group_but_keeps_history_for_members(server: Server) -> None:
    alice, bob, carol = [await user(server, n) for n in ("alice", "bob", "carol")]
    gid = await make_group(alice, bob)
    await bob.c.group_send(gid, "bye", "D-1")
    await alice.c.call("group/dissolve", {"Gid": gid})
    for c in (alice.c, bob.c):
        await notice(c, gid, NOTICE_DISSOLVED)
    assert (await bob.c.call("group/info", {"Gid": gid}))[0]["Dissolved"] is True
    refused = await bob.c.group_send(gid, "anyone?", "D-2")
    assert refused["action"] == "notify.error" and "dissolved" in refused["data"]
    for u, route, body in (
        (carol, "group/join", {}),
        (alice, "group/members/invite", {"Uid": [carol.uid]}),
        (alice, "group/mute", {"Mute": True}),
        (bob, "group/leave", {}),
        (alice, "group/dissolve", {}),
    ):
        assert "dissolved" in await u.c.fails(route, {"Gid": gid, **body}), route
    page = await bob.c.call("msg/group/recent", {"Gid": gid})
    assert [m["Seq"] for m in page] == [3, 2, 1] and page[0]["Type"] == NOTICE_DISSOLVED


@pytest.mark.parametrize("by_admin", [True, False])
async def test_recall_by_the_author_or_an_admin(server: Server, by_admin: bool) -> None:
    alice, bob, carol = [await user(server, n) for n in ("alice", "bob", "carol")]
    gid = await make_group(alice, bob, carol)
    await alice.c.call("group/members/role", {"Gid": gid, "Uid": carol.uid, "Role": 2})
    mid = (await bob.c.group_send(gid, "oops", "R-1"))["data"]["mid"]
    other = (await alice.c.group_send(gid, "owner's", "R-2"))["data"]["mid"]
    for c in (alice.c, bob.c, carol.c):
        await c.take(lambda f: f["action"] == "message.group.notify")
        assert [(await c.push("message.group"))["data"]["mid"] for _ in range(2)] == [mid, other]
    # a plain member recalls only its own messages; notices cannot be recalled
    assert "only the author" in await bob.c.fails("msg/group/recall", {"Gid": gid, "Mid": other})
    notice_mid = (await bob.c.call("msg/group/range", {"Gid": gid, "FromSeq": 1, "ToSeq": 1}))[0]["Mid"]
    assert "not a chat message" in await alice.c.fails("msg/group/recall", {"Gid": gid, "Mid": notice_mid})
    assert "not found" in await alice.c.fails("msg/group/recall", {"Gid": gid, "Mid": 12345})

    recaller = carol if by_admin else bob
    seq = await recaller.c.send("message.group.recall", {"gid": gid, "mid": mid})
    ack = await recaller.c.reply(seq)
    assert ack["action"] == "ack.message" and ack["data"]["mid"] == mid and ack["data"]["seq"] > 0
    for c in (alice.c, bob.c, carol.c):
        n = await c.push("message.group.notify")
        assert n["data"]["type"] == 11 and n["data"]["by"] == recaller.uid
        assert n["data"]["body"]["mid"] == mid and n["data"]["uids"] == [bob.uid]
    page = {m["Mid"]: m for m in await alice.c.call("msg/group/recent", {"Gid": gid})}
    assert page[mid]["Status"] == 1 and page[mid]["RecallBy"] == recaller.uid and page[mid]["Content"] == ""
    # recalling again is a no-op
    assert (await recaller.c.call("msg/group/recall", {"Gid": gid, "Mid": mid}))["Seq"] == 0
    await bob.c.quiet(0.1)


async def test_recall_denied_to_outsiders_and_after_the_window_for_authors(servers: object) -> None:
    server = await servers(recall_window_s=0)  # type: ignore[operator]
    alice, bob, eve = [await user(server, n) for n in ("alice", "bob", "eve")]
    gid = await make_group(alice, bob)
    mid = (await bob.c.group_send(gid, "old", "T-1"))["data"]["mid"]
    seq = await eve.c.send("message.group.recall", {"gid": gid, "mid": mid})
    frame = await eve.c.reply(seq)
    assert frame["action"] == "notify.error" and "not a member" in frame["data"]
    assert "too old" in await bob.c.fails("msg/group/recall", {"Gid": gid, "Mid": mid})
    await alice.c.call("msg/group/recall", {"Gid": gid, "Mid": mid})  # the owner has no window


async def test_read_state_and_unread_counts(server: Server) -> None:
    alice, bob = [await user(server, n) for n in ("alice", "bob")]
    g1 = await make_group(alice, bob, name="one")
    g2 = await make_group(alice, bob, name="two")
    for i in range(5):
        await alice.c.group_send(g1, f"a{i}", f"a{i}")
    for i in range(2):
        await alice.c.group_send(g2, f"b{i}", f"b{i}")
    states = {s["Gid"]: s for s in await bob.c.call("msg/group/state/all")}
    assert {g: (s["LastSeq"], s["ReadSeq"], s["Unread"]) for g, s in states.items()} == {
        g1: (6, 1, 5),
        g2: (3, 1, 2),
    }
    assert states[g1]["LastMID"] > 0 and states[g1]["LastMsgAt"] > 0
    # the sender has read its own messages
    assert (await alice.c.call("msg/group/state", {"Gid": g1}))["Unread"] == 0
    # ack.group.msg over the socket (no reply), then the route; read never goes back, never past the end
    await bob.c.send("ack.group.msg", {"gid": g1, "mid": 0, "seq": 4})
    assert (await bob.c.call("msg/group/state", {"Gid": g1}))["Unread"] == 2
    assert (await bob.c.call("msg/group/read", {"Gid": g1, "Seq": 2}))["ReadSeq"] == 4
    assert (await bob.c.call("msg/group/read", {"Gid": g2, "Seq": 99}))["ReadSeq"] == 3
    states = {s["Gid"]: s["Unread"] for s in await bob.c.call("msg/group/state/all")}
    assert states == {g1: 2, g2: 0}
    # bad acks are refused with the request's seq
    for data in ({"gid": g1}, {"gid": "x", "seq": 1}, {"gid": 987654, "seq": 1}, {"gid": g1, "seq": -3}, "s"):
        seq = await bob.c.send("ack.group.msg", data)
        frame = await bob.c.reply(seq)
        assert frame["action"] == "notify.error", (data, frame)
    tok = token(server, bob.uid)
    async with Http(server) as h:
        assert ok(await h.post("/api/msg/group/state", {"Gid": g1}, tok))["Unread"] == 2
