"""Group messages end to end: fan-out, contiguous seq (also across a restart), gap pull, dedup, bad input."""

from __future__ import annotations

from pathlib import Path

from group_support import GClient, Http, User, connect, make_group, token, user
from helpers import make_config
from helpers_api import denied, ok

from glide._native import Outgoing
from glide.server import Server


async def test_fan_out_to_every_device_of_every_member_once_with_identical_bytes(server: Server) -> None:
    alice = await user(server, "alice", devices=3)
    bob = await user(server, "bob", devices=2)
    carol = await user(server, "carol", devices=1)
    outsider = await user(server, "dave", devices=1)
    gid = await make_group(alice, bob, carol)

    ack = await alice.clients[0].group_send(gid, "hello all", "G-1", type=7, sendAt=1234)
    assert ack["action"] == "ack.message"
    mid = ack["data"]["mid"]
    assert ack["data"] == {"cliMid": "G-1", "mid": mid, "seq": 2}  # seq 1 = the creation notice

    raws = []
    for u in (alice, bob, carol):
        for c in u.clients:  # the sending connection included
            push = await c.push("message.group")
            assert push["from"] == str(alice.uid) and push["to"] == str(gid)
            assert push["data"] == {
                "cliMid": "G-1",
                "mid": mid,
                "seq": 2,
                "from": str(alice.uid),
                "to": str(gid),
                "type": 7,
                "content": "hello all",
                "sendAt": 1234,
            }
            raws.append(push["__raw__"])
    assert len(raws) == 6 and len(set(raws)) == 1  # one encoding, the same bytes for everybody
    for u in (alice, bob, carol, outsider):
        for c in u.clients:
            await c.quiet(0.1)  # exactly one copy each; nothing for the outsider


def test_one_outgoing_hands_the_same_bytes_object_to_every_recipient() -> None:
    out = Outgoing("message.group", {"seq": 1}, sender="1", to="9")
    frames = out.frames([0, 0, 0])
    assert frames[0] is frames[1] is frames[2]


async def test_seq_is_contiguous_and_continues_after_a_restart(tmp_path: Path, store_url: str) -> None:
    srv = Server(make_config(tmp_path, store=store_url))
    await srv.start()
    alice = await user(srv, "alice")
    bob = await user(srv, "bob")
    gid = await make_group(alice, bob)
    seqs = []
    for i in range(5):
        # a refused message between the good ones consumes no seq
        bad = await bob.c.group_send(gid, "x" * 10, f"B-{i}", type="nope")
        assert bad["action"] == "notify.error"
        seqs.append((await alice.c.group_send(gid, f"m{i}", f"A-{i}"))["data"]["seq"])
    assert seqs == [2, 3, 4, 5, 6]
    await srv.stop()

    srv2 = Server(make_config(tmp_path, store=store_url))
    await srv2.start()
    try:
        bob2 = User(bob.uid, "bob", [await connect(srv2, bob.uid, "1")])
        alice2 = User(alice.uid, "alice", [await connect(srv2, alice.uid, "1")])
        later = [(await bob2.c.group_send(gid, f"n{i}", f"N-{i}"))["data"]["seq"] for i in range(3)]
        assert later == [7, 8, 9]
        # a message acked before the restart is deduplicated after it, with its original seq
        again = await alice2.c.group_send(gid, "m0", "A-0")
        assert again["data"]["seq"] == 2
        page = await alice2.c.call("msg/group/range", {"Gid": gid, "FromSeq": 1, "ToSeq": 100})
        assert [m["Seq"] for m in page] == list(range(1, 10))
        assert len({m["Mid"] for m in page}) == 9
    finally:
        await srv2.stop()


async def test_gap_pull_returns_exactly_the_missing_range(server: Server) -> None:
    alice = await user(server, "alice")
    bob = await user(server, "bob")
    gid = await make_group(alice, bob)
    for i in range(10):
        await alice.c.group_send(gid, f"m{i}", f"c{i}")
    page = await bob.c.call("msg/group/range", {"Gid": gid, "FromSeq": 4, "ToSeq": 7})
    assert [m["Seq"] for m in page] == [4, 5, 6, 7]
    assert [m["Content"] for m in page] == ["m2", "m3", "m4", "m5"]
    assert all(m["Kind"] == 0 and m["Sender"] == alice.uid and m["Gid"] == gid for m in page)
    # the range is bounded: 100 per page, continued from the last seq + 1
    for i in range(100):
        await alice.c.group_send(gid, f"x{i}", f"x{i}")
    first = await bob.c.call("msg/group/range", {"Gid": gid, "FromSeq": 1, "ToSeq": 1000})
    assert [m["Seq"] for m in first] == list(range(1, 101))
    rest = await bob.c.call("msg/group/range", {"Gid": gid, "FromSeq": 101, "ToSeq": 1000})
    assert [m["Seq"] for m in rest] == list(range(101, 112))
    # history pages newest first
    hist = await bob.c.call("msg/group/history", {"Gid": gid, "BeforeSeq": 50, "PageSize": 5})
    assert [m["Seq"] for m in hist] == [49, 48, 47, 46, 45]
    recent = await bob.c.call("msg/group/recent", {"Gid": gid})
    assert [m["Seq"] for m in recent] == list(range(111, 91, -1))


async def test_offline_member_pulls_what_it_missed_after_reconnecting(server: Server) -> None:
    alice = await user(server, "alice")
    bob = await user(server, "bob")
    gid = await make_group(alice, bob)
    await alice.c.group_send(gid, "before", "b0")
    seen = (await bob.c.push("message.group"))["data"]["seq"]
    await bob.c.call("msg/group/read", {"Gid": gid, "Seq": seen})
    await bob.c.close()
    for i in range(4):
        await alice.c.group_send(gid, f"while away {i}", f"w{i}")
    bob.clients[0] = await connect(server, bob.uid, "1")
    state = await bob.c.call("msg/group/state", {"Gid": gid})
    assert state["LastSeq"] == seen + 4 and state["ReadSeq"] == seen and state["Unread"] == 4
    missed = await bob.c.call("msg/group/range", {"Gid": gid, "FromSeq": seen + 1, "ToSeq": state["LastSeq"]})
    assert [m["Content"] for m in missed] == [f"while away {i}" for i in range(4)]
    # and live delivery resumes with the next seq
    await alice.c.group_send(gid, "live", "l0")
    assert (await bob.c.push("message.group"))["data"]["seq"] == state["LastSeq"] + 1


async def test_duplicate_cli_mid_is_acked_again_but_stored_and_pushed_once(server: Server) -> None:
    alice = await user(server, "alice", devices=2)
    bob = await user(server, "bob")
    gid = await make_group(alice, bob)
    first = await alice.c.group_send(gid, "once", "DUP")
    await bob.c.push("message.group")
    second = await alice.clients[1].group_send(gid, "once", "DUP")
    assert second["action"] == "ack.message" and second["data"] == first["data"]
    await bob.c.quiet(0.15)
    # an empty cliMid never dedups
    a = await alice.c.group_send(gid, "anon", "")
    b = await alice.c.group_send(gid, "anon", "")
    assert b["data"]["seq"] == a["data"]["seq"] + 1
    page = await bob.c.call("msg/group/recent", {"Gid": gid})
    assert [m["Content"] for m in page].count("once") == 1


async def test_a_burst_of_sends_gets_consecutive_seqs_in_send_order(server: Server) -> None:
    alice = await user(server, "alice")
    bob = await user(server, "bob")
    gid = await make_group(alice, bob)
    seqs = [await alice.c.send("message.group", {"cliMid": f"b{i}", "content": str(i)}, to=str(gid)) for i in range(30)]
    acks = [await alice.c.reply(s) for s in seqs]
    assert [a["data"]["seq"] for a in acks] == list(range(2, 32))
    pushed = [(await bob.c.push("message.group"))["data"] for _ in range(30)]
    assert [p["seq"] for p in pushed] == list(range(2, 32))
    assert [p["content"] for p in pushed] == [str(i) for i in range(30)]


async def test_bad_input_is_refused_with_the_request_seq_and_nothing_is_stored(server: Server) -> None:
    alice = await user(server, "alice")
    bob = await user(server, "bob")
    gid = await make_group(alice, bob)
    c = alice.c
    cases: list[tuple[object, object, str]] = [
        ("abc", {"cliMid": "1", "content": "x"}, "to"),
        ("-5", {"cliMid": "2", "content": "x"}, "to"),
        ("99999999999999999999", {"cliMid": "3", "content": "x"}, "to"),
        (str(gid), {"cliMid": "4"}, "content"),
        (str(gid), {"cliMid": "5", "content": 17}, "content"),
        (str(gid), {"cliMid": "x" * 65, "content": "x"}, "cliMid"),
        (str(gid), {"cliMid": "7", "content": "x", "type": 2**40}, "type"),
        (str(gid), {"cliMid": "8", "content": "x", "sendAt": "soon"}, "sendAt"),
        (str(gid), [1, 2], "data"),
        (None, {"cliMid": "10", "content": "x"}, "to"),
        ("424242", {"cliMid": "11", "content": "x"}, "does not exist"),
    ]
    for to, data, mentions in cases:
        seq = await c.send("message.group", data, to=to)
        frame = await c.reply(seq)
        assert frame["action"] == "notify.error", (to, data, frame)
        assert mentions.lower() in str(frame["data"]).lower(), (mentions, frame)
    state = await c.call("msg/group/state", {"Gid": gid})
    assert state["LastSeq"] == 1  # only the creation notice
    await bob.c.quiet(0.1)

    # the HTTP routes: missing and malformed fields are 400 naming the field, unknown groups 404
    tok = token(server, alice.uid)
    http_cases: list[tuple[str, object, int, int, str]] = [
        ("msg/group/range", {"Gid": gid, "FromSeq": 1}, 400, 300, "toseq"),
        ("msg/group/range", {"Gid": gid, "FromSeq": 5, "ToSeq": 2}, 400, 300, "toseq"),
        ("msg/group/range", {"Gid": gid, "FromSeq": 0, "ToSeq": 2}, 400, 300, "fromseq"),
        ("msg/group/history", {"Gid": "x1"}, 400, 300, "gid"),
        ("msg/group/history", {}, 400, 300, "gid"),
        ("msg/group/history", {"Gid": 987654}, 404, 3001, "987654"),
        ("msg/group/history", {"Gid": gid, "PageSize": 101}, 400, 300, "pagesize"),
        ("group/create", {"Name": ""}, 400, 300, "name"),
        ("group/create", {"Name": "n" * 65}, 400, 300, "name"),
        ("group/create", {"Name": "ok", "Members": [10**12]}, 404, 2002, "does not exist"),
        ("group/create", {"Name": "ok", "Members": ["abc"]}, 400, 300, "members"),
        ("group/members/invite", {"Gid": gid, "Uid": []}, 400, 300, "uid"),
        ("group/members/invite", {"Gid": gid}, 400, 300, "uid"),
        ("group/members/remove", {"Gid": gid, "Uid": list(range(1, 300))}, 400, 300, "uid"),
        ("group/mute", {"Gid": gid, "Mute": "yes"}, 400, 300, "mute"),
        ("group/mute", {"Gid": gid}, 400, 300, "mute"),
        ("group/members/role", {"Gid": gid, "Uid": bob.uid, "Role": 1}, 400, 300, "role"),
        ("group/transfer", {"Gid": gid}, 400, 300, "uid"),
        ("msg/group/read", {"Gid": gid, "Seq": -1}, 400, 300, "seq"),
        ("msg/group/read", {"Gid": gid}, 400, 300, "seq"),
        ("msg/group/recall", {"Gid": gid}, 400, 300, "mid"),
        ("group/info", {}, 400, 300, "gid"),
        ("group/info", {"Gid": [True]}, 400, 300, "gid"),
    ]
    async with Http(server) as h:
        for route, body, status, code, mentions in http_cases:
            denied(await h.post(f"/api/{route}", body, tok), status, code, mentions)
        denied(await h.post("/api/group/info", {"Gid": [gid]}, None), 401, 401, "token")
        both = ok(await h.post("/api/group/info", {"Gid": [gid, 123456, str(gid)]}, tok))
        assert both == ok(await h.post("/api/group/info", {"Gid": gid}, tok)) and len(both) == 1
    assert (await c.call("msg/group/state", {"Gid": gid}))["LastSeq"] == 1


async def test_group_send_needs_login(server: Server) -> None:
    c = await GClient.connect(server)
    seq = await c.send("message.group", {"cliMid": "1", "content": "x"}, to="1")
    assert (await c.reply(seq))["action"] == "notify.unauthenticated"
