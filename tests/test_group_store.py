"""The GroupStore contract on every backend: contiguous seqs under concurrency and failure, dedup, checks,
read state; and on SQLite, that every query of the group path is served by an index."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from glide.errors import BadRequest, NotAllowed, NotFound, StorageError, UserNotFound
from glide.ids import MidGenerator
from glide.store import SqliteStore, Store
from glide.store.groups import (
    JOIN_OPEN,
    KIND_NOTICE,
    MAX_GROUP_MEMBERS,
    MAX_UIDS_PER_CALL,
    ROLE_ADMIN,
    GroupNotFound,
    MemberExists,
    NewGroupMessage,
)
from glide.store.sqlite import groups_sql as q

ids = MidGenerator(3)


async def users(store: Store, *names: str) -> list[int]:
    out = []
    for n in names:
        u = await store.users.create_user(account=n, email=None, nickname=n, avatar="", password_hash="x")
        out.append(u.uid)
    return out


def msg(gid: int, sender: int, cli_mid: str = "", content: str = "hi", **kw: object) -> NewGroupMessage:
    fields: dict[str, object] = {
        "mid": ids.next(),
        "cli_mid": cli_mid,
        "gid": gid,
        "sender": sender,
        "type": 1,
        "content": content,
        "send_at": 1,
    }
    fields.update(kw)
    return NewGroupMessage(**fields)  # type: ignore[arg-type]


async def test_concurrent_writers_get_contiguous_unique_seqs(store: Store) -> None:
    a, b, c = await users(store, "a", "b", "c")
    g = store.groups
    gid = (
        await g.create_group(owner=a, name="g", avatar="", members=[b], mid=ids.next(), join_policy=JOIN_OPEN)
    ).group.gid
    sends = [g.store_group_message(msg(gid, (a, b)[i % 2], f"c{i}")) for i in range(40)]
    joins = [g.join(gid, c, mid=ids.next())]
    results = await asyncio.gather(*sends, *joins, return_exceptions=True)
    stored = [r for r in results[:40] if not isinstance(r, BaseException)]
    assert len(stored) == 40
    join = results[40]
    assert not isinstance(join, BaseException) and join.notice is not None
    seqs = sorted([s.message.seq for s in stored] + [join.notice.seq])
    assert seqs == list(range(2, 43))
    assert all(s.recipients in ((a, b), (a, b, c)) for s in stored)
    assert (await g.group(gid)).last_seq == 42  # type: ignore[union-attr]


async def test_a_failed_or_refused_write_consumes_no_seq(store: Store) -> None:
    a, b = await users(store, "a", "b")
    g = store.groups
    gid = (await g.create_group(owner=a, name="g", avatar="", members=[b], mid=ids.next())).group.gid
    first = await g.store_group_message(msg(gid, a, "x"))
    assert first.message.seq == 2 and first.recipients == (a, b) and not first.duplicate
    with pytest.raises(StorageError):  # a reused mid fails the insert after the seq was bumped: rolled back
        await g.store_group_message(msg(gid, a, "y", mid=first.message.mid))
    await g.mute_members(gid, a, [b], True, mid=ids.next())  # seq 3
    with pytest.raises(NotAllowed):
        await g.store_group_message(msg(gid, b, "z"))
    with pytest.raises(BadRequest):
        await g.store_group_message(msg(gid, a, "w", content="x" * 70_000))
    nxt = await g.store_group_message(msg(gid, a, "v"))
    assert nxt.message.seq == 4
    dup = await g.store_group_message(msg(gid, a, "x"))
    assert dup.duplicate and dup.recipients == () and dup.message == first.message
    page = await g.seq_range(gid, a, from_seq=1, to_seq=10)
    assert [m.seq for m in page] == [1, 2, 3, 4]
    assert [m.kind for m in page] == [KIND_NOTICE, 0, KIND_NOTICE, 0]


async def test_a_batch_decides_each_message_in_order(store: Store) -> None:
    """One call stores a tick's group messages: each gets what it would get alone (its group's next seq in the
    batch's order, the duplicate of a key stored before or earlier in the batch, or its own error), a refused
    one takes no seq, and each group's head and each sender's read position follow the batch."""
    a, b, c, d = await users(store, "a", "b", "c", "d")
    g = store.groups
    g1 = (await g.create_group(owner=a, name="g1", avatar="", members=[b, c], mid=ids.next())).group.gid  # seq 1
    g2 = (await g.create_group(owner=b, name="g2", avatar="", members=[a], mid=ids.next())).group.gid  # seq 1
    await g.mute_members(g1, a, [c], True, mid=ids.next())  # g1 seq 2
    before = await g.store_group_message(msg(g1, b, "k0"))  # g1 seq 3
    batch = [
        msg(g1, a, "k1"),  # g1 seq 4
        msg(g2, b, "k1"),  # g2 seq 2: the same cliMid in another group is another key
        msg(g1, c, "k2"),  # muted
        msg(g1, d, "k3"),  # not a member
        msg(987654321, a, "k4"),  # no such group
        msg(g1, a, "k5", content="x" * 70_000),  # too long
        msg(g1, b, "k0"),  # stored before
        msg(g1, a, "k1"),  # earlier in this batch
        msg(g1, b, ""),  # g1 seq 5: an empty cliMid never dedups
        msg(g2, a, "k6"),  # g2 seq 3
    ]
    results = await g.store_group_messages(batch)
    assert len(results) == len(batch)
    kinds = [type(r).__name__ for r in results]
    assert kinds[2:6] == ["NotAllowed", "NotAllowed", "GroupNotFound", "BadRequest"], kinds
    stored = {i: r for i, r in enumerate(results) if not isinstance(r, BaseException)}
    assert {i: (r.message.gid, r.message.seq, r.duplicate) for i, r in stored.items()} == {
        0: (g1, 4, False),
        1: (g2, 2, False),
        6: (g1, 3, True),
        7: (g1, 4, True),
        8: (g1, 5, False),
        9: (g2, 3, False),
    }
    assert stored[6].message == before.message and stored[7].message == stored[0].message
    assert stored[0].message.mid == batch[0].mid and stored[6].recipients == stored[7].recipients == ()
    assert stored[0].recipients == stored[8].recipients == tuple(sorted((a, b, c)))
    assert stored[1].recipients == stored[9].recipients == tuple(sorted((a, b)))
    head1, head2 = await g.group(g1), await g.group(g2)
    assert head1 is not None and (head1.last_seq, head1.last_mid) == (5, batch[8].mid)
    assert head2 is not None and (head2.last_seq, head2.last_mid) == (3, batch[9].mid)
    page = await g.seq_range(g1, a, from_seq=1, to_seq=10)
    assert [(m.seq, m.mid) for m in page][2:] == [(3, before.message.mid), (4, batch[0].mid), (5, batch[8].mid)]
    assert [(s.gid, s.read_seq) for s in await g.read_states(a)] == sorted([(g1, 4), (g2, 3)])
    assert [(s.gid, s.read_seq) for s in await g.read_states(b)] == sorted([(g1, 5), (g2, 2)])
    assert await g.store_group_messages([]) == []


async def test_a_batch_that_fails_in_the_store_stores_nothing(store: Store) -> None:
    """A failure of the store itself (here a mid already used) fails the whole call: no row, no seq taken."""
    a, b = await users(store, "a", "b")
    g = store.groups
    gid = (await g.create_group(owner=a, name="g", avatar="", members=[b], mid=ids.next())).group.gid
    first = await g.store_group_message(msg(gid, a, "x"))
    with pytest.raises(StorageError):
        await g.store_group_messages([msg(gid, b, "y"), msg(gid, a, "z", mid=first.message.mid)])
    assert (await g.group(gid)).last_seq == 2  # type: ignore[union-attr]
    nxt = await g.store_group_message(msg(gid, b, "y"))  # not a duplicate: nothing of the batch was stored
    assert (nxt.message.seq, nxt.duplicate) == (3, False)


async def test_seq_and_last_mid_survive_reopening(open_test_store: Callable[..., Awaitable[Store]]) -> None:
    store = await open_test_store()
    a, b = await users(store, "a", "b")
    gid = (await store.groups.create_group(owner=a, name="g", avatar="", members=[b], mid=ids.next())).group.gid
    last = (await store.groups.store_group_message(msg(gid, b, "1"))).message
    await store.close()
    again = await open_test_store()
    assert await again.groups.last_mid() == last.mid
    nxt = await again.groups.store_group_message(msg(gid, a, "2"))
    assert nxt.message.seq == last.seq + 1


async def test_input_checks(store: Store) -> None:
    a, b = await users(store, "a", "b")
    g = store.groups
    gid = (await g.create_group(owner=a, name="g", avatar="", members=[], mid=ids.next())).group.gid
    bad_messages = [
        msg(gid, a, type=2**31),
        msg(gid, a, cli_mid="c" * 65),
        msg(gid, a, content="\ud800"),
        msg(gid, a, content=None),
        msg(gid, a, mid=0),
        msg(gid, 0),
    ]
    for m in bad_messages:
        with pytest.raises(BadRequest):
            await g.store_group_message(m)
    for gid_bad in (0, -1, 2**63, 987654):
        with pytest.raises(GroupNotFound):
            await g.store_group_message(msg(gid_bad, a))
        with pytest.raises(GroupNotFound):
            await g.history(gid_bad, a)
        assert await g.group(gid_bad) is None
        assert await g.members(gid_bad) == []
    with pytest.raises(BadRequest):
        await g.create_group(owner=a, name=" ", avatar="", members=[], mid=ids.next())
    with pytest.raises(BadRequest):
        await g.create_group(owner=a, name="g", avatar="", members=list(range(1, MAX_GROUP_MEMBERS + 2)), mid=1)
    with pytest.raises(UserNotFound):
        await g.create_group(owner=a, name="g", avatar="", members=[b, 10**9], mid=ids.next())
    with pytest.raises(BadRequest):
        await g.invite(gid, a, list(range(1, MAX_UIDS_PER_CALL + 2)), mid=ids.next())
    with pytest.raises(BadRequest):
        await g.invite(gid, a, [], mid=ids.next())
    with pytest.raises(BadRequest):
        await g.seq_range(gid, a, from_seq=3, to_seq=2)
    with pytest.raises(BadRequest):
        await g.set_role(gid, a, b, 1, mid=ids.next())
    with pytest.raises(MemberExists):
        await g.join(gid, a, mid=ids.next())
    with pytest.raises(NotFound):
        await g.remove(gid, a, [b], mid=ids.next())
    assert (await g.group(gid)).last_seq == 1  # type: ignore[union-attr]


async def test_members_order_and_read_state(store: Store) -> None:
    a, b, c, d = await users(store, "a", "b", "c", "d")
    g = store.groups
    gid = (await g.create_group(owner=a, name="g", avatar="", members=[d, c, b], mid=ids.next())).group.gid
    await g.set_role(gid, a, c, ROLE_ADMIN, mid=ids.next())  # seq 2
    assert [(m.uid, m.role) for m in await g.members(gid)] == [(a, 1), (c, 2), (b, 3), (d, 3)]  # same joined_at: by uid
    assert await g.member_uids(gid) == sorted([a, b, c, d])
    assert await g.user_groups(b) == [gid]
    for _ in range(3):
        await g.store_group_message(msg(gid, c))  # seqs 3..5; c has read its own
    (state,) = await g.read_states(b, [gid, gid])
    assert (state.last_seq, state.read_seq, state.unread) == (5, 1, 4)
    assert (await g.read_states(c))[0].unread == 0
    assert (await g.mark_read(gid, b, 100)).read_seq == 5
    assert (await g.mark_read(gid, b, 2)).read_seq == 5
    other = (await g.create_group(owner=d, name="h", avatar="", members=[], mid=ids.next())).group.gid
    with pytest.raises(NotAllowed):
        await g.read_states(b, [gid, other])
    with pytest.raises(GroupNotFound):
        await g.read_states(b, [987654])
    with pytest.raises(NotAllowed):
        await g.mark_read(other, b, 1)


def test_sqlite_group_queries_use_indexes(tmp_path: Path) -> None:
    async def make() -> None:
        store = await SqliteStore.open(tmp_path / "g.db")
        await store.close()

    asyncio.run(make())
    conn = sqlite3.connect(tmp_path / "g.db")
    queries = {name: sql for name, sql in vars(q).items() if name.startswith("SQL_")}
    assert len(queries) >= 12
    for name, sql in queries.items():
        params = (1,) * sql.count("?")
        plan = [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params)]
        assert not [step for step in plan if step.startswith("SCAN")], (name, plan)
        assert not [step for step in plan if "TEMP B-TREE" in step], (name, plan)
    conn.close()
