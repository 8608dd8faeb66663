"""The test databases themselves (tests/pg_support.py): a database handed to a test is in the template's
state even when an earlier test used it, one whose schema a test changed is never handed out again, and
the session leaves no database behind."""

from __future__ import annotations

import asyncio

import asyncpg
from pg_support import PgDatabases

from glide.store import NewChat
from glide.store.groups import GROUP_ID_BASE
from glide.store.postgres import PostgresStore


async def _fill(url: str) -> None:
    store = await PostgresStore.open(url)
    try:
        a = await store.users.create_user(account="a", email=None, nickname="a", avatar="", password_hash="h")
        b = await store.users.create_user(account="b", email=None, nickname="b", avatar="", password_hash="h")
        await store.messages.store_chats([NewChat(1, "c", a.uid, b.uid, 1, "hi", 0)])
        await store.groups.create_group(owner=a.uid, name="g", avatar="", members=[b.uid], mid=2)
        await store.contacts.request_contact(a.uid, b.uid, remark="", comment="")
    finally:
        await store.close()


async def _state(url: str) -> tuple[int, int, int]:
    """(rows in all tables but schema_version, the next uid, the next gid)"""
    store = await PostgresStore.open(url)
    conn = await asyncpg.connect(url)
    try:
        tables = [r[0] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        rows = sum([await conn.fetchval(f'SELECT count(*) FROM "{t}"') for t in tables if t != "schema_version"])
        uid = (await store.users.create_user(account="x", email=None, nickname="", avatar="", password_hash="")).uid
        gid = (await store.groups.create_group(owner=uid, name="g", avatar="", members=[], mid=9)).group.gid
        return rows, uid, gid
    finally:
        await conn.close()
        await store.close()


async def _databases(admin: str, prefix: str) -> set[str]:
    conn = await asyncpg.connect(admin)
    try:
        return {r[0] for r in await conn.fetch("SELECT datname FROM pg_database WHERE datname LIKE $1", prefix + "%")}
    finally:
        await conn.close()


def _take(dbs: PgDatabases, wanted: str, tries: int = 12) -> bool:
    """Take databases until ``wanted`` comes back (releasing the others); False if it never does."""
    for _ in range(tries):
        name = dbs.take()
        if name == wanted:
            return True
        dbs.release(name)
    return False


def test_used_databases_come_back_pristine_and_changed_ones_never(pg_databases: PgDatabases) -> None:
    dbs = PgDatabases(pg_databases.admin_url)  # a session of its own, to see its reuse and its clean-up
    dbs.start()
    try:
        used = dbs.take()
        asyncio.run(_fill(dbs.url(used)))
        dbs.release(used)
        assert _take(dbs, used)
        # no rows left, identities restarted (groups above every user id: GROUP_ID_BASE + 1)
        assert asyncio.run(_state(dbs.url(used))) == (0, 1, GROUP_ID_BASE + 1)

        changed = dbs.take()

        async def alter() -> None:
            conn = await asyncpg.connect(dbs.url(changed))
            await conn.execute("ALTER TABLE users ADD COLUMN extra int")
            await conn.close()

        asyncio.run(alter())
        dbs.release(changed)
        assert not _take(dbs, changed)  # dropped (in the background) instead
    finally:
        dbs.stop()
    assert asyncio.run(_databases(dbs.admin_url, dbs.prefix)) == set()  # the used, the changed, the template
