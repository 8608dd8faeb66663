"""``PostgresStore``: every store area on one PostgreSQL database."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from glide.ids import wall_ms
from glide.store.postgres.connection import Migration
from glide.store.postgres.contacts import PgContactStore
from glide.store.postgres.conversations import PgConversationStore
from glide.store.postgres.engine import POOL_SIZE, PgEngine
from glide.store.postgres.groups import PgGroupStore
from glide.store.postgres.messages import PgMessageStore
from glide.store.postgres.routines import Routine
from glide.store.postgres.schema import MIGRATIONS, ROUTINES
from glide.store.postgres.users import PgUserStore


class PostgresStore:
    """Users, messages, groups, contacts and conversations in one PostgreSQL database, shared by any number
    of glide nodes (each with its own ``node_id``). Build with :meth:`open`."""

    def __init__(self, engine: PgEngine, clock_ms: Callable[[], int] = wall_ms) -> None:
        self.engine = engine
        self.users = PgUserStore(engine, clock_ms)
        self.messages = PgMessageStore(engine, clock_ms)
        self.groups = PgGroupStore(engine, clock_ms)
        self.contacts = PgContactStore(engine, clock_ms)
        self.conversations = PgConversationStore(engine, clock_ms)

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        migrations: Sequence[Migration] = MIGRATIONS,
        routines: Sequence[Routine] = ROUTINES,
        clock_ms: Callable[[], int] = wall_ms,
        pool_size: int = POOL_SIZE,
    ) -> PostgresStore:
        """Connect to ``url`` (``postgresql://user:pass@host:port/db``) and create or migrate the schema."""
        return cls(await PgEngine.open(url, migrations, routines=routines, pool_size=pool_size), clock_ms)

    @property
    def batches_committed(self) -> int:
        """How many group transactions the writer committed (for tests and metrics)."""
        return self.engine.batches_committed

    def pace(self, round_: Callable[[], None]) -> bool:
        return self.engine.pace(round_)

    async def claim_node(self, node_id: int) -> int:
        """A session-level advisory lock on ``node_id`` (with AUTO_NODE: on the first free one), held on a
        connection of its own until close: the lock goes with the connection, so a node that dies frees
        its id at once."""
        return await self.engine.claim_node(node_id)

    async def keep_node(self) -> None:
        await self.engine.keep_node()

    async def close(self) -> None:
        await self.engine.close()
