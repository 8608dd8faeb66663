"""Group sends are batch-shaped end to end: the ``message.group`` requests of every connection ready in one loop
tick reach the store in one call, on either store, and each sender's acknowledgement and every member's
pushes follow the seqs that call gave (each connection's requests in their order)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from test_limits import _Conn

from glide._native import TCP_JSON, decode_json
from glide.errors import GlideError
from glide.store.groups import NewGroupMessage, StoredGroupMessage


def sent(conn: _Conn, action: str) -> list[dict[str, Any]]:
    frames = [json.loads(out.frame(TCP_JSON)[4:]) for out in conn.sent]  # 4-byte length, then the envelope
    return [f for f in frames if f["action"] == action]


async def test_a_ticks_group_sends_are_one_store_call(
    servers: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    srv = await servers(driver="asyncio")  # the connections below are doubles, which only the asyncio hub calls
    store = srv.ctx.store
    uids = []
    for i in range(5):
        user = await store.users.create_user(account=f"u{i}", email=None, nickname="", avatar="", password_hash="x")
        uids.append(user.uid)
    *members, outsider = uids
    created = await store.groups.create_group(
        owner=members[0], name="g", avatar="", members=members[1:], mid=srv.ctx.ids.next()
    )
    gid = created.group.gid  # its notice is seq 1
    conns = {}
    for i, uid in enumerate(uids):
        conn = conns[uid] = _Conn()
        conn.id, conn.uid = i + 1, uid
        srv.gateway.hub.bind(conn)
    calls: list[int] = []
    real = store.groups.store_group_messages

    async def counted(messages: Sequence[NewGroupMessage]) -> list[StoredGroupMessage | GlideError]:
        calls.append(len(messages))
        return await real(messages)

    monkeypatch.setattr(store.groups, "store_group_messages", counted)
    for uid, conn in conns.items():  # all in one tick: two requests each, the outsider's refused
        frames = [
            b'{"action":"message.group","seq":%d,"to":"%d","data":{"cliMid":"%d-%d","content":"hi","type":1}}'
            % (seq, gid, uid, seq)
            for seq in (1, 2)
        ]
        srv.dispatcher.submit(conn, [decode_json(f) for f in frames])  # type: ignore[arg-type]

    async def answered() -> None:
        while any(len(sent(c, "ack.message")) < 2 for u, c in conns.items() if u != outsider):
            await asyncio.sleep(0.01)

    await asyncio.wait_for(answered(), 10)
    assert calls == [10]
    acks = {uid: [f["data"]["seq"] for f in sent(conn, "ack.message")] for uid, conn in conns.items()}
    assert acks.pop(outsider) == []
    assert [f["seq"] for f in sent(conns[outsider], "notify.error")] == [1, 2]
    assert all(first < second for first, second in acks.values())  # each connection's order
    assert sorted(s for pair in acks.values() for s in pair) == list(range(2, 10))  # contiguous after the notice
    for uid in members:  # every member got every message once, in seq order
        pushes = sent(conns[uid], "message.group")
        assert [p["data"]["seq"] for p in pushes] == list(range(2, 10))
    assert sent(conns[outsider], "message.group") == []
