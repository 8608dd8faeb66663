"""Schema v8 moves every group id above GROUP_ID_BASE (no group id may equal a user id) on both backends:
the group, its members, entries, read state, departures and join requests move together, notices name the
new id, and new groups are numbered after the moved ones, never on the world channel's id."""

from __future__ import annotations

from pathlib import Path

import pytest

from glide.store import SqliteStore, Store
from glide.store.groups import GROUP_ID_BASE, JOIN_APPROVAL, WORLD_GID, NewGroupMessage
from glide.store.postgres import MIGRATIONS as PG_MIGRATIONS
from glide.store.postgres import PostgresStore
from glide.store.sqlite.schema import MIGRATIONS as SQLITE_MIGRATIONS

V7 = 7


async def open_at(backend: str, tmp_path: Path, request: pytest.FixtureRequest, version: int | None) -> Store:
    if backend == "sqlite":
        path = tmp_path / "v7.db"
        return await SqliteStore.open(path, **({"migrations": SQLITE_MIGRATIONS[:version]} if version else {}))
    url = request.getfixturevalue("empty_pg_url")
    return await PostgresStore.open(url, **({"migrations": PG_MIGRATIONS[:version]} if version else {}))


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_v8_moves_groups_above_every_user_id(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    old = await open_at(backend, tmp_path, request, V7)
    a, b, c = [
        (await old.users.create_user(account=n, email=None, nickname=n, avatar="", password_hash="h")).uid
        for n in "abc"
    ]
    first = (await old.groups.create_group(owner=a, name="one", avatar="", members=[b], mid=100)).group
    second = (
        await old.groups.create_group(owner=b, name="two", avatar="", members=[], mid=101, join_policy=JOIN_APPROVAL)
    ).group
    assert first.gid == 1 and second.gid == 2  # v7 numbered groups like users: 1, 2, ...
    await old.groups.store_group_message(NewGroupMessage(102, "x", first.gid, b, 1, "hello", 1000))
    await old.groups.mark_read(first.gid, a, 2)
    await old.groups.join(second.gid, c, mid=103)  # a pending request: the group wants approval
    await old.close()

    store = await open_at(backend, tmp_path, request, None)
    try:
        g1, g2 = GROUP_ID_BASE + 1, GROUP_ID_BASE + 2
        assert [g.name for g in await store.groups.groups([g1, g2])] == ["one", "two"]
        assert await store.groups.group(1) is None and await store.groups.group(2) is None
        assert sorted(await store.groups.member_uids(g1)) == [a, b]
        assert sorted(await store.groups.user_groups(b)) == [g1, g2]
        entries = await store.groups.history(g1, a)
        assert [(e.gid, e.seq, e.mid) for e in entries] == [(g1, 2, 102), (g1, 1, 100)]
        assert entries[0].content == "hello"
        assert f'"gid":{g1}' in entries[1].content  # the creation notice names the new id
        [state] = await store.groups.read_states(a, [g1])
        assert (state.gid, state.read_seq, state.unread) == (g1, 2, 0)
        assert [(r.gid, r.uid) for r in await store.groups.join_requests(g2, b)] == [(g2, c)]
        # New groups come after the moved ones; the world channel keeps GROUP_ID_BASE.
        third = (await store.groups.create_group(owner=c, name="three", avatar="", members=[], mid=104)).group
        assert third.gid == GROUP_ID_BASE + 3
        world = await store.groups.ensure_channel(WORLD_GID, "the_world_channel")
        assert world.gid == WORLD_GID and await store.groups.enroll(WORLD_GID, [a, b, c]) == 3
        assert min(g1, g2, third.gid, WORLD_GID) > max(a, b, c)
    finally:
        await store.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_a_new_database_numbers_groups_above_the_world_channel(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    store = await open_at(backend, tmp_path, request, None)
    try:
        uid = (await store.users.create_user(account="a", email=None, nickname="a", avatar="", password_hash="h")).uid
        gids = [
            (await store.groups.create_group(owner=uid, name=f"g{i}", avatar="", members=[], mid=10 + i)).group.gid
            for i in range(3)
        ]
        assert gids == [GROUP_ID_BASE + 1, GROUP_ID_BASE + 2, GROUP_ID_BASE + 3]
        assert await store.groups.group(WORLD_GID) is None  # until the server ensures the channel
    finally:
        await store.close()
