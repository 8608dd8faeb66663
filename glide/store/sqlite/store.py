"""The SQLite store: every area's store on one engine (one file, one writer thread, WAL)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from glide.ids import AUTO_NODE, wall_ms
from glide.store.sqlite.contacts import Refusers, SqliteContactStore
from glide.store.sqlite.conversations import SqliteConversationStore
from glide.store.sqlite.engine import Migration, SqliteEngine
from glide.store.sqlite.groups import SqliteGroupStore
from glide.store.sqlite.message_log import open_indexes
from glide.store.sqlite.messages import SqliteMessageStore
from glide.store.sqlite.schema import MIGRATIONS
from glide.store.sqlite.users import SqliteUserStore


class SqliteStore:
    """The embedded store: users and messages in one SQLite file. Build with :meth:`open`."""

    def __init__(self, engine: SqliteEngine, clock_ms: Callable[[], int] = wall_ms) -> None:
        self.engine = engine
        self.refusers = Refusers()  # shared: the contacts' writes add to it, the message path reads it
        self.users = SqliteUserStore(engine, clock_ms)
        self.messages = SqliteMessageStore(engine, clock_ms, self.refusers)
        self.groups = SqliteGroupStore(engine, clock_ms)
        self.contacts = SqliteContactStore(engine, clock_ms, self.refusers)
        self.conversations = SqliteConversationStore(engine, clock_ms, self.messages.log)

    @classmethod
    async def open(
        cls,
        path: str | Path,
        *,
        migrations: Sequence[Migration] = MIGRATIONS,
        clock_ms: Callable[[], int] = wall_ms,
        sync: str = "normal",
    ) -> SqliteStore:
        """Open (create, migrate) the database at ``path`` and its index database (glide.store.sqlite.background:
        built from the rows when new or not matching); ``sync="full"`` also survives power loss."""
        engine = await SqliteEngine.open(Path(path), migrations, sync)
        try:
            store = cls(engine, clock_ms)
            if len(migrations) == len(MIGRATIONS):  # (an older schema, opened by a test of the migrations, has none)
                engine.prepare(open_indexes)
                engine.prepare(store.messages.log.load_keys)  # the keys of the index tables as they are now
                engine.prepare(store.refusers.loaded)
        except BaseException:
            await engine.close()
            raise
        return store

    @property
    def batches_committed(self) -> int:
        """How many group transactions the writer committed (for tests and metrics)."""
        return self.engine.batches_committed

    def wal_stats(self) -> tuple[int, int]:
        """The WAL's size in bytes and its starts-over under a hold (for metrics)."""
        return self.engine.wal_stats()

    def pace(self, round_: Callable[[], None]) -> bool:
        return self.engine.pace(round_)

    async def claim_node(self, node_id: int) -> int:
        """Nothing to hold: the database file is locked to this server while it is open (DatabaseLock)."""
        return 0 if node_id == AUTO_NODE else node_id

    async def keep_node(self) -> None:
        """The file lock cannot be lost while the process lives."""

    async def close(self) -> None:
        await self.engine.close()
