"""Storage by business area (users, messages), behind Protocols; SQLite is the embedded backend."""

from __future__ import annotations

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
    """The store ``config.store`` names: PostgreSQL for a ``postgresql://`` (or ``postgres://``) URL, else
    SQLite at ``config.sqlite_path`` (the default)."""
    if config.store.startswith(("postgresql://", "postgres://")):
        try:  # asyncpg is an optional dependency (the "postgres" extra)
            from glide.store.postgres import PostgresStore
        except ImportError as e:
            raise ConfigError(f"store: PostgreSQL needs asyncpg (pip install 'glide-im[postgres]'): {e}") from None
        return await PostgresStore.open(config.store)
    return await SqliteStore.open(config.sqlite_path, sync=config.sqlite_sync)
