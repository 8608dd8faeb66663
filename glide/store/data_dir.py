"""The files a store keeps on this machine: private to the server's user, and one server at a time.

The data dir holds password hashes, ticket secrets and every message, so it is created 0700 and the
database files 0600. A SQLite database is locked (``flock`` on ``<db>.lock``) for as long as a server has
it open: a second server on the same file would share its node id and so its message ids.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from glide.errors import ConfigError

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> None:
    """Create ``path`` (and missing parents) with mode 0700; an existing directory is left as it is."""
    try:
        path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    except OSError as e:
        raise ConfigError(f"{path}: cannot create the data directory: {e.strerror or e}") from None


def private_file(path: Path) -> None:
    """Create ``path`` empty with mode 0600 if missing, else make it 0600. SQLite gives its ``-wal`` and
    ``-shm`` files the mode of the database file."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE)
        try:
            os.fchmod(fd, FILE_MODE)
        finally:
            os.close(fd)
        for suffix in ("-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.chmod(f"{path}{suffix}", FILE_MODE)
    except OSError as e:
        raise ConfigError(f"{path}: cannot create the database file: {e.strerror or e}") from None


class DatabaseLock:
    """An exclusive lock on one database file, held until :meth:`release` (or the process ends)."""

    def __init__(self, db: Path) -> None:
        self.path = Path(f"{db}.lock")
        try:
            self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT, FILE_MODE)
        except OSError as e:
            raise ConfigError(f"{self.path}: cannot create the lock file: {e.strerror or e}") from None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(self._fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(self._fd)
            self._fd = None
            raise ConfigError(
                f"{db}: another glide server (pid {holder}) is using this database; "
                "stop it, or give this one its own --data-dir"
            ) from None
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"{os.getpid()}\n".encode(), 0)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None
