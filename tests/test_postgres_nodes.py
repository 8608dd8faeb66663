"""Several glide nodes on one PostgreSQL database: each node is a PostgresStore with its own writer and pool.
Group seqs and user timelines stay contiguous and unique under concurrent writers, and an operation that
loses a deadlock against another node is re-run instead of failing."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from glide.errors import NotAllowed, StorageError
from glide.ids import MidGenerator
from glide.store import NewChat
from glide.store.groups import JOIN_OPEN, KIND_MESSAGE, NewGroupMessage
from glide.store.postgres import PostgresStore
from glide.store.postgres import engine as pg_engine
from glide.store.postgres.connection import WriteConn

NODES = 3


@pytest.fixture
async def nodes(pg_url: str) -> AsyncIterator[list[PostgresStore]]:
    stores = [await PostgresStore.open(pg_url, pool_size=2) for _ in range(NODES)]
    yield stores
    for store in stores:
        await store.close()


async def make_users(store: PostgresStore, n: int, prefix: str = "u") -> list[int]:
    return [
        (
            await store.users.create_user(
                account=f"{prefix}{i}", email=None, nickname="u", avatar="", password_hash="h"
            )
        ).uid
        for i in range(n)
    ]


async def test_group_seqs_are_contiguous_across_nodes(nodes: list[PostgresStore]) -> None:
    ids = [MidGenerator(node) for node in range(NODES)]
    uids = await make_users(nodes[0], 4)
    owner, *others = uids
    created = await nodes[0].groups.create_group(
        owner=owner, name="g", avatar="", members=others, mid=ids[0].next(), join_policy=JOIN_OPEN
    )
    gid = created.group.gid
    per_node = 40

    async def send(node: int) -> list[int]:
        seqs = []
        for i in range(per_node):
            sender = uids[(node + i) % len(uids)]
            m = NewGroupMessage(ids[node].next(), f"n{node}-{i}", gid, sender, 1, f"from node {node}", 0)
            seqs.append((await nodes[node].groups.store_group_message(m)).message.seq)
        return seqs

    async def churn() -> None:  # membership changes from another node take seqs from the same stream
        outsider = (await make_users(nodes[2], 1, "outsider"))[0]
        for _ in range(5):
            await nodes[2].groups.join(gid, outsider, mid=ids[2].next())
            await nodes[2].groups.leave(gid, outsider, mid=ids[2].next())

    results, _ = await asyncio.gather(asyncio.gather(*(send(n) for n in range(NODES))), churn())
    sent = [seq for seqs in results for seq in seqs]
    assert all(seqs == sorted(seqs) for seqs in results)  # each sender sees its own order
    total = 1 + NODES * per_node + 10
    group = await nodes[1].groups.group(gid)
    assert group is not None and group.last_seq == total
    stream = await nodes[1].groups.seq_range(gid, owner, from_seq=1, to_seq=total)
    stream += await nodes[1].groups.seq_range(gid, owner, from_seq=101, to_seq=total)
    assert [e.seq for e in stream] == list(range(1, total + 1))  # no gap, no repeat
    assert sorted(e.seq for e in stream if e.kind == KIND_MESSAGE) == sorted(sent)


async def test_a_member_removed_on_one_node_cannot_send_on_another(nodes: list[PostgresStore]) -> None:
    ids = MidGenerator(1)
    owner, member = await make_users(nodes[0], 2)
    gid = (
        await nodes[0].groups.create_group(owner=owner, name="g", avatar="", members=[member], mid=ids.next())
    ).group.gid
    await nodes[0].groups.remove(gid, owner, [member], mid=ids.next())
    with pytest.raises(NotAllowed, match="not a member"):
        await nodes[1].groups.store_group_message(NewGroupMessage(ids.next(), "x", gid, member, 1, "late", 0))


async def test_timelines_and_unread_counts_are_exact_across_nodes(nodes: list[PostgresStore]) -> None:
    receiver, *senders = await make_users(nodes[0], 1 + NODES)
    mids = itertools.count(1)
    per_node = 30

    async def send(node: int) -> None:
        for i in range(0, per_node, 3):  # batches of three, so each call appends several timeline entries
            batch = [NewChat(next(mids), f"{node}-{i + k}", senders[node], receiver, 1, "hi", 0) for k in range(3)]
            await nodes[node].messages.store_chats(batch)

    await asyncio.gather(*(send(n) for n in range(NODES)))
    total = NODES * per_node
    page = await nodes[0].conversations.timeline(receiver, limit=500)
    assert [e.seq for e in page.entries] == list(range(1, total + 1)) and page.head == total
    assert len({e.message.mid for e in page.entries}) == total
    for node, sender in enumerate(senders):
        conv = await nodes[node].conversations.conversation(receiver, sender)
        assert conv is not None and conv.unread == per_node
        own = await nodes[node].conversations.timeline(sender)
        assert [e.seq for e in own.entries] == list(range(1, per_node + 1))


async def test_an_operation_that_loses_a_deadlock_is_run_again(nodes: list[PostgresStore]) -> None:
    a, b = await make_users(nodes[0], 2)
    runs = {"x": 0, "y": 0}

    def crossing(first: int, second: int, name: str) -> Callable[[WriteConn], Awaitable[str]]:
        async def op(conn: WriteConn) -> str:
            runs[name] += 1
            await conn.execute("UPDATE users SET nickname = $1 WHERE uid = $2", name, first)
            await conn.execute("SELECT pg_sleep(0.3)")
            await conn.execute("UPDATE users SET nickname = $1 WHERE uid = $2", name, second)
            return name

        return op

    # Node 0 locks a then b, node 1 locks b then a: PostgreSQL aborts one of them (after deadlock_timeout).
    results = await asyncio.gather(
        nodes[0].engine.write(crossing(a, b, "x")),
        nodes[1].engine.write(crossing(b, a, "y")),
    )
    assert sorted(results) == ["x", "y"]  # both succeeded
    assert sorted(runs.values()) == [1, 2]  # the loser ran once more, after the winner committed
    winner_last = [u.nickname for u in await nodes[0].users.users([a, b])]
    assert winner_last[0] == winner_last[1]  # the re-run wrote both rows after the other node's commit


async def test_crossing_contact_requests_on_two_nodes_meet(nodes: list[PostgresStore]) -> None:
    pairs = [await make_users(nodes[0], 2, f"p{i}_") for i in range(5)]
    outcomes = await asyncio.gather(
        *(nodes[0].contacts.request_contact(a, b, remark="", comment="hi") for a, b in pairs),
        *(nodes[1].contacts.request_contact(b, a, remark="", comment="hi") for a, b in pairs),
    )
    for i, (a, b) in enumerate(pairs):
        made = [o for o in (outcomes[i], outcomes[i + len(pairs)]) if o.contacts is not None]
        assert len(made) == 1  # whichever ran second saw the first one's request
        assert await nodes[2].contacts.contact(a, b) is not None and await nodes[2].contacts.contact(b, a) is not None


async def test_one_cli_mid_sent_through_every_node_at_once_is_stored_once(nodes: list[PostgresStore]) -> None:
    """A client that sends one message through several nodes at once (a retry racing the first attempt) gets
    one mid from all of them; the logs get one entry, without a gap."""
    sender, receiver = await make_users(nodes[0], 2)
    mids = itertools.count(1)
    for round_ in range(5):
        chats = [NewChat(next(mids), f"same-{round_}", sender, receiver, 1, "hi", 0) for _ in nodes]
        results = await asyncio.gather(*(node.messages.store_chats([c]) for node, c in zip(nodes, chats, strict=True)))
        stored = [r for [r] in results if not r.duplicate]
        assert len(stored) == 1 and not stored[0].refused
        assert {r.message.mid for [r] in results} == {stored[0].message.mid}
    page = await nodes[0].conversations.timeline(receiver, limit=50)
    assert [e.seq for e in page.entries] == [1, 2, 3, 4, 5] and page.head == 5


async def nothing(conn: WriteConn) -> None:
    await conn.execute("SELECT 1")


async def test_acknowledgements_on_two_nodes_are_saved_deferred_and_merged(
    nodes: list[PostgresStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A receiver's acknowledgements count at once on the node that took them and reach the database later
    (here: when the node closes), merged with what other nodes saved (one receiver on two devices, two nodes):
    none is lost, and the cursor moves over the acknowledged prefix."""
    monkeypatch.setattr(pg_engine, "DEFERRED_S", 3600.0)  # saved at close only
    sender, receiver = await make_users(nodes[0], 2)
    stored = await nodes[0].messages.store_chats([NewChat(m, "", sender, receiver, 1, "hi", 0) for m in range(1, 6)])
    m1, m2, m3, m4, m5 = [s.message for s in stored]
    [acked] = await nodes[0].messages.ack_inboxes([(receiver, [m2.mid, m4.mid])])
    assert [m.mid for m in acked] == [2, 4]
    assert [m.mid for m in await nodes[1].messages.ack_inbox(receiver, [m1.mid])] == [1]
    await nodes[0].engine.write(nothing)  # a transaction of the node's own does not wait for them
    # Each node sees its own acknowledgements at once, and what another saved once it is saved.
    assert [m.mid for m in await nodes[0].messages.inbox(receiver)] == [1, 3, 5]
    assert [m.mid for m in await nodes[1].messages.inbox(receiver)] == [2, 3, 4, 5]
    assert [m.mid for m in await nodes[2].messages.inbox(receiver)] == [1, 2, 3, 4, 5]
    await nodes[0].close()
    assert [m.mid for m in await nodes[2].messages.inbox(receiver)] == [1, 3, 5]
    assert [m.mid for m in await nodes[1].messages.inbox(receiver)] == [3, 5]  # its own and the saved ones
    await nodes[1].close()
    assert [m.mid for m in await nodes[2].messages.inbox(receiver)] == [3, 5]
    # Acknowledged again elsewhere: not pending there any more, so nothing to notify.
    assert await nodes[2].messages.ack_inbox(receiver, [m2.mid]) == []
    assert [m.mid for m in await nodes[2].messages.ack_inbox(receiver, [m3.mid, m5.mid])] == [3, 5]
    assert await nodes[2].messages.inbox(receiver) == []
    row = await nodes[2].engine.fetchrow("SELECT cursor, acked FROM inbox_cursors WHERE uid = $1", receiver)
    assert row is not None and (row[0], list(row[1])) == (m2.receiver_seq, [m4.receiver_seq])  # 1, 2 moved it
    await nodes[2].close()
    again = await PostgresStore.open(nodes[2].engine.url)
    try:
        assert await again.messages.inbox(receiver) == []
        row = await again.engine.fetchrow("SELECT cursor, acked FROM inbox_cursors WHERE uid = $1", receiver)
        assert row is not None and (row[0], list(row[1])) == (m5.receiver_seq, [])
    finally:
        await again.close()


async def test_a_deferred_acknowledgement_outlives_a_failed_batch_and_is_saved_at_close(
    nodes: list[PostgresStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pg_engine, "DEFERRED_S", 3600.0)  # due when the test says so (its timer's callback)
    sender, receiver = await make_users(nodes[0], 2)
    [s1, s2] = await nodes[0].messages.store_chats([NewChat(m, "", sender, receiver, 1, "hi", 0) for m in (1, 2)])
    await nodes[0].messages.ack_inbox(receiver, [s1.message.mid])
    started, release = asyncio.Event(), asyncio.Event()

    async def held(conn: WriteConn) -> None:
        started.set()
        await release.wait()

    async def killed(conn: WriteConn) -> None:
        await conn.execute("SELECT pg_terminate_backend(pg_backend_pid())")

    hold = asyncio.ensure_future(nodes[0].engine.write(held))
    await started.wait()  # the writer is in a transaction: what comes now waits for the next one
    nodes[0].engine._deferred_ready()  # the save is due: it joins the next transaction...
    failing = asyncio.ensure_future(nodes[0].engine.write(killed))
    release.set()
    await hold
    with pytest.raises(StorageError, match="nothing of this batch was stored"):
        await failing  # ... which the lost connection fails whole: the save is deferred again
    assert [m.mid for m in await nodes[1].messages.inbox(receiver)] == [1, 2]
    assert [m.mid for m in await nodes[0].messages.inbox(receiver)] == [2]  # still acknowledged on its node
    nodes[0].engine._deferred_ready()
    await nodes[0].engine.write(nothing)
    assert [m.mid for m in await nodes[1].messages.inbox(receiver)] == [2]
    # Closing a node saves what it acknowledged since.
    await nodes[1].messages.ack_inbox(receiver, [s2.message.mid])
    await nodes[1].close()
    assert await nodes[2].messages.inbox(receiver) == []
