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
    """The store ``config.store`` names: SQLite at ``config.sqlite_path`` (the default)."""
    if config.store.startswith(("postgresql://", "postgres://")):
        raise ConfigError("store: PostgreSQL is not available in this version; leave store empty to use SQLite")
    return await SqliteStore.open(config.sqlite_path)
