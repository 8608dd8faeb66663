"""Storage by business area (users, messages), behind Protocols; SQLite is the embedded backend."""

from __future__ import annotations

import os
import tempfile

from glide.config import Config
from glide.errors import ConfigError
from glide.store.base import (
    ChatMessage,
    MessageStore,
    NewChat,
    Store,
    StoredChat,
    User,
    UserStore,
)
from glide.store.sqlite import SqliteStore

__all__ = [
    "ChatMessage",
    "MessageStore",
    "NewChat",
    "SqliteStore",
    "Store",
    "StoredChat",
    "User",
    "UserStore",
    "open_store",
]


async def open_store(config: Config) -> Store:
    """The store ``config.store`` names: PostgreSQL for a ``postgresql://`` (or ``postgres://``) URL,
    ``memory`` for a throwaway store held in RAM, else SQLite at ``config.sqlite_path`` (the default)."""
    if config.store == "memory":
        return await _open_memory_store()
    if config.store.startswith(("postgresql://", "postgres://")):
        try:  # asyncpg is an optional dependency (the "postgres" extra)
            from glide.store.postgres import PostgresStore
        except ImportError as e:
            raise ConfigError(f"store: PostgreSQL needs asyncpg (pip install 'glide-im[postgres]'): {e}") from None
        return await PostgresStore.open(config.store)
    return await SqliteStore.open(config.sqlite_path, sync=config.sqlite_sync)


async def _open_memory_store() -> Store:
    """The same SQLite store in a RAM-backed file (``/dev/shm`` where there is one), no fsync, deleted when
    the store closes: for benchmarks and tests, never for data that must survive a restart."""
    directory = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    fd, name = tempfile.mkstemp(prefix="glide-memory-", suffix=".db", dir=directory)
    os.close(fd)
    os.unlink(name)
    store = await SqliteStore.open(name, sync="off")
    store.discard_on_close = True
    return store
