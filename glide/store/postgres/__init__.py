"""The PostgreSQL backend of the store interfaces (``--store postgresql://…``), through asyncpg."""

from __future__ import annotations

from glide.store.postgres.schema import MIGRATIONS
from glide.store.postgres.store import PostgresStore

__all__ = ["MIGRATIONS", "PostgresStore"]
