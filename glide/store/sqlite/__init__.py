"""The SQLite backend (the embedded default): one file, one writer thread with group commit, WAL."""

from glide.store.sqlite.store import SqliteStore

__all__ = ["SqliteStore"]
