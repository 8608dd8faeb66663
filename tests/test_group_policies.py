"""Who may enter a group and what a member may read, as a hostile user would try it: invite-only by default,
approval and open policies, bans that outlive a removal, mutes that outlive leaving, history from the join
onwards, and blacklists that groups cannot bypass. Over real sockets, on both stores."""

from __future__ import annotations

from group_support import User, make_group, user

from glide.server import Server
from glide.store.groups import NOTICE_MEMBERS_ADDED, NOTICE_SETTINGS_CHANGED


async def drop_notices(gid: int, *users: User) -> None:
    """Every online member got a message.group.notify: take it."""
    for u in users:
        await u.c.take(lambda f: f["action"] == "message.group.notify" and f["data"]["gid"] == gid)


async def open_group(owner: User, *members: User) -> int:
    gid = await make_group(owner, *members)
    await owner.c.call("group/settings", {"Gid": gid, "JoinPolicy": "open"})
    await drop_notices(gid, owner, *members)
    return gid


async def test_groups_are_invite_only_by_default(server: Server) -> None:
    alice, bob, eve = [await user(server, n) for n in ("alice", "bob", "eve")]
    gid = await make_group(alice, bob)
    assert (await eve.c.call("group/info", {"Gid": gid}))[0]["JoinPolicy"] == "invite"
    assert "invite-only" in await eve.c.fails("group/join", {"Gid": gid})
    assert "not a member" in await eve.c.fails("msg/group/history", {"Gid": gid})
    assert "not a member" in await eve.c.fails("msg/group/range", {"Gid": gid, "FromSeq": 1, "ToSeq": 9})
    assert [m["Uid"] for m in await alice.c.call("group/members", {"Gid": gid})] == [alice.uid, bob.uid]
    # Only the owner sets the policy, with a value it knows.
    await alice.c.call("group/members/role", {"Gid": gid, "Uid": bob.uid, "Role": "admin"})
    assert "only the owner" in await bob.c.fails("group/settings", {"Gid": gid, "JoinPolicy": "open"})
    assert "JoinPolicy" in await alice.c.fails("group/settings", {"Gid": gid, "JoinPolicy": "anyone"})
    assert "JoinPolicy" in await alice.c.fails("group/settings", {"Gid": gid, "JoinPolicy": 7})
    assert "HistoryFromJoin" in await alice.c.fails("group/settings", {"Gid": gid, "HistoryFromJoin": "x"})
    assert "at least one" in await alice.c.fails("group/settings", {"Gid": gid})
    assert "JoinPolicy" in await alice.c.fails("group/create", {"Name": "x", "JoinPolicy": "everyone"})


async def test_approval_policy(server: Server) -> None:
    alice, bob, carol, dave = [await user(server, n) for n in ("alice", "bob", "carol", "dave")]
    data = await alice.c.call("group/create", {"Name": "club", "Members": [bob.uid], "JoinPolicy": "approval"})
    gid = data["Gid"]
    await drop_notices(gid, alice, bob)
    await alice.c.call("group/members/role", {"Gid": gid, "Uid": bob.uid, "Role": 2})
    await drop_notices(gid, alice, bob)
    assert await carol.c.call("group/join", {"Gid": gid}) == {"Pending": True}
    assert await dave.c.call("group/join", {"Gid": gid}) == {"Pending": True}
    for manager in (alice, bob):  # the owner and the admins hear of it
        for who in (carol, dave):
            request = await manager.c.push("notify.group.join")
            assert request["data"] == {"gid": gid, "uid": who.uid}
    assert "not a member" in await carol.c.fails("msg/group/history", {"Gid": gid})  # not in yet
    assert "not a member" in await carol.c.fails("group/join/requests", {"Gid": gid})
    pending = await bob.c.call("group/join/requests", {"Gid": gid})
    assert [r["Uid"] for r in pending] == [carol.uid, dave.uid]

    await bob.c.call("group/join/decide", {"Gid": gid, "Uid": carol.uid, "Accept": True})
    for u in (alice, bob, carol):
        n = await u.c.take(lambda f: f["action"] == "message.group.notify")
        assert n["data"]["type"] == NOTICE_MEMBERS_ADDED and n["data"]["from"] == str(bob.uid)
    await alice.c.call("group/join/decide", {"Gid": gid, "Uid": dave.uid, "Accept": False})
    rejected = await dave.c.push("notify.group.join")
    assert rejected["data"] == {"gid": gid, "uid": dave.uid, "accepted": False, "by": alice.uid}
    members = [m["Uid"] for m in await alice.c.call("group/members", {"Gid": gid})]
    assert sorted(members) == sorted([alice.uid, bob.uid, carol.uid])
    assert "has not asked" in await alice.c.fails("group/join/decide", {"Gid": gid, "Uid": dave.uid, "Accept": 1})
    assert await alice.c.call("group/join/requests", {"Gid": gid}) == []


async def test_removed_members_stay_banned_until_lifted(server: Server) -> None:
    alice, bob, carol = [await user(server, n) for n in ("alice", "bob", "carol")]
    gid = await open_group(alice, bob, carol)
    await alice.c.call("group/members/remove", {"Gid": gid, "Uid": [bob.uid]})
    await drop_notices(gid, alice, bob, carol)
    assert "removed from group" in await bob.c.fails("group/join", {"Gid": gid})
    # Not back through an invitation either (and nobody else is added by that call).
    refused = await alice.c.fails("group/members/invite", {"Gid": gid, "Uid": [bob.uid]})
    assert "removed from group" in refused and str(bob.uid) in refused
    assert "only the owner or an admin" in await carol.c.fails("group/members/unban", {"Gid": gid, "Uid": [bob.uid]})
    assert await alice.c.call("group/members/unban", {"Gid": gid, "Uid": [bob.uid, carol.uid]}) == {
        "Unbanned": [bob.uid]
    }
    assert await bob.c.call("group/join", {"Gid": gid}) == ""
    # Leaving is not a ban: a member who left may come back.
    await carol.c.call("group/leave", {"Gid": gid})
    assert await carol.c.call("group/join", {"Gid": gid}) == ""


async def test_a_mute_survives_leaving_and_rejoining(server: Server) -> None:
    alice, bob = [await user(server, n) for n in ("alice", "bob")]
    gid = await open_group(alice, bob)
    await alice.c.call("group/mute", {"Gid": gid, "Uid": [bob.uid], "Mute": True})
    assert "muted" in (await bob.c.group_send(gid, "hi", "M-1"))["data"]
    await bob.c.call("group/leave", {"Gid": gid})
    await bob.c.call("group/join", {"Gid": gid})
    refused = await bob.c.group_send(gid, "unmuted now?", "M-2")
    assert refused["action"] == "notify.error" and "muted" in refused["data"]
    assert [m["Mute"] for m in await alice.c.call("group/members", {"Gid": gid}) if m["Uid"] == bob.uid] == [True]
    await alice.c.call("group/mute", {"Gid": gid, "Uid": [bob.uid], "Mute": False})
    assert (await bob.c.group_send(gid, "now", "M-3"))["action"] == "ack.message"


async def test_members_read_history_from_their_join(server: Server) -> None:
    alice, bob, late = [await user(server, n) for n in ("alice", "bob", "late")]
    gid = await open_group(alice, bob)  # seq 1 created, seq 2 settings
    for i in range(3):
        assert (await alice.c.group_send(gid, f"before {i}", f"B-{i}"))["action"] == "ack.message"  # seq 3..5
    await late.c.call("group/join", {"Gid": gid})  # seq 6
    history = await late.c.call("msg/group/history", {"Gid": gid})
    assert [m["Seq"] for m in history] == [6]
    assert [m["Seq"] for m in await late.c.call("msg/group/range", {"Gid": gid, "FromSeq": 1, "ToSeq": 10})] == [6]
    assert [m["Seq"] for m in await bob.c.call("msg/group/range", {"Gid": gid, "FromSeq": 1, "ToSeq": 10})] == [
        1, 2, 3, 4, 5, 6
    ]  # fmt: skip
    assert (await late.c.call("msg/group/state", {"Gid": gid}))["Unread"] == 0  # joining starts read
    # The owner may open the history to newcomers.
    info = await alice.c.call("group/settings", {"Gid": gid, "HistoryFromJoin": False})
    assert info["HistoryFromJoin"] is False
    n = await late.c.take(lambda f: f["action"] == "message.group.notify" and f["data"]["type"] == 12)
    assert n["data"]["type"] == NOTICE_SETTINGS_CHANGED
    assert [m["Seq"] for m in await late.c.call("msg/group/range", {"Gid": gid, "FromSeq": 1, "ToSeq": 10})] == [
        1, 2, 3, 4, 5, 6, 7
    ]  # fmt: skip


async def test_groups_do_not_bypass_a_blacklist(server: Server) -> None:
    bob, eve, carol, walt = [await user(server, n) for n in ("bob", "eve", "carol", "walt")]
    await bob.c.call("session/blacklist/add", {"relative_ids": [eve.uid]})
    await walt.c.call("session/whitelist/mode", {"enabled": True})  # admits nobody but its whitelist
    # eve cannot create a group with bob in it: nothing is created.
    refused = await eve.c.fails("group/create", {"Name": "trap", "Members": [carol.uid, bob.uid]})
    assert "do not accept" in refused and str(bob.uid) in refused and str(carol.uid) not in refused
    assert await eve.c.call("msg/group/state/all") == []
    await carol.c.quiet(0.2)  # and carol was not added to anything
    # Nor invite bob (or a whitelist-only user) into a group eve runs; the others are not added either.
    gid = await make_group(eve, carol)
    refused = await eve.c.fails("group/members/invite", {"Gid": gid, "Uid": [bob.uid, walt.uid]})
    assert str(bob.uid) in refused and str(walt.uid) in refused
    assert [m["Uid"] for m in await eve.c.call("group/members", {"Gid": gid})] == [eve.uid, carol.uid]
    refused = await eve.c.fails("group/members/invite", {"Gid": gid, "Uid": [bob.uid, carol.uid]})
    assert "already members" not in refused  # carol was skipped as a member, bob refused
    # Someone bob does not block may add bob; the whitelist admits whom it lists.
    await walt.c.call("session/whitelist/add", {"relative_ids": [carol.uid]})
    data = await carol.c.call("group/create", {"Name": "fine", "Members": [bob.uid, walt.uid]})
    assert sorted(m["Uid"] for m in await bob.c.call("group/members", {"Gid": data["Gid"]})) == sorted(
        [carol.uid, bob.uid, walt.uid]
    )
