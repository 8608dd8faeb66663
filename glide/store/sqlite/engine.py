"""SQLite plumbing: one writer thread with group commit, one reader thread, built-in migrations.

Writes are closures queued to the writer thread. It takes everything pending, runs each closure inside
its own SAVEPOINT within ONE transaction (a failing closure rolls back only itself), commits once, then
resolves all the batch's futures with one ``call_soon_threadsafe`` per event loop. WAL with
``synchronous=NORMAL`` (the default) makes a returned commit survive the process being killed, which is the
``ack.message`` guarantee; ``FULL`` adds an fsync per commit so it also survives power loss. Reads run on a
second connection in a reader thread; WAL lets them proceed while the writer commits, and they see every
write whose future has resolved.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from glide.errors import ConfigError, GlideError, StorageError
from glide.store.data_dir import DatabaseLock, private_dir, private_file

T = TypeVar("T")
Migration = Callable[[sqlite3.Connection], None]
Op = Callable[[sqlite3.Connection], Any]
log = logging.getLogger("glide.store")

MAX_BATCH = 1024
BUSY_TIMEOUT_MS = 10_000
_STOP = object()


class _BatchAborted(Exception):
    """SQLite rolled the whole transaction back (e.g. disk full): no operation of the batch survives."""


SYNC_MODES = ("normal", "full")


def connect(path: Path, sync: str = "normal") -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit) with the durability settings."""
    try:
        conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    except sqlite3.DatabaseError as e:
        raise ConfigError(f"{path}: cannot open as a SQLite database: {e}") from None
    if str(mode).lower() != "wal":
        conn.close()
        raise ConfigError(f"{path}: SQLite refused WAL journal mode (got {mode!r}); use a local file system")
    conn.execute(f"PRAGMA synchronous={ {'full': 'FULL', 'off': 'OFF'}.get(sync, 'NORMAL') }")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    return conn


def migrate(conn: sqlite3.Connection, migrations: Sequence[Migration], path: Path) -> int:
    """Bring the schema to ``len(migrations)``, one transaction per step; returns the final version."""
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version "
            "(id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)"
        )
        row = conn.execute("SELECT version FROM schema_version WHERE id = 1").fetchone()
    except sqlite3.DatabaseError as e:
        raise ConfigError(f"{path}: not a usable SQLite database: {e}") from None
    current = int(row[0]) if row else 0
    if current > len(migrations):
        raise ConfigError(f"{path}: schema version {current} is newer than this glide supports ({len(migrations)})")
    for version in range(current, len(migrations)):
        conn.execute("BEGIN IMMEDIATE")
        try:
            migrations[version](conn)
            conn.execute(
                "INSERT INTO schema_version (id, version) VALUES (1, ?) "
                "ON CONFLICT (id) DO UPDATE SET version = excluded.version",
                (version + 1,),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return len(migrations)


def _storage_error(e: BaseException) -> GlideError:
    if isinstance(e, GlideError):
        return e
    if not isinstance(e, sqlite3.Error):
        log.error("unexpected error in a store operation", exc_info=e)
    return StorageError(f"storage failure: {e}")


def _resolve(results: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    for fut, value, error in results:
        if fut.done():  # the caller was cancelled; the write happened anyway
            continue
        if error is None:
            fut.set_result(value)
        else:
            fut.set_exception(error)


class SqliteEngine:
    """Owns the two connections and their threads. Build with :meth:`open`."""

    def __init__(self, path: Path, sync: str = "normal") -> None:
        self.path = path
        self.sync = sync
        self.batches_committed = 0
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._closed = False
        self._writer = threading.Thread(target=self._writer_main, name=f"glide-sqlite-writer:{path.name}", daemon=True)
        self._reader = ThreadPoolExecutor(1, thread_name_prefix="glide-sqlite-reader", initializer=self._open_reader)
        self._reader_local = threading.local()
        self._reader_used = False
        self._ready: asyncio.Future[None] | None = None
        self._stopped: asyncio.Future[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._migrations: Sequence[Migration] = ()
        self._lock: DatabaseLock | None = None
        # Called on the writer thread whenever writes are rolled back (one operation, or a whole batch), so
        # that a backend's caches of the writer's state (log heads, inbox cursors) can forget what they saw.
        self.on_rollback: list[Callable[[], None]] = []

    @classmethod
    async def open(cls, path: Path, migrations: Sequence[Migration], sync: str = "normal") -> SqliteEngine:
        """Create the parent directory, open (creating or migrating) the database, start the threads."""
        private_dir(path.parent)
        lock = DatabaseLock(path)  # before anything touches the file: one server per database
        try:
            private_file(path)
        except BaseException:
            lock.release()
            raise
        engine = cls(path, sync)
        engine._lock = lock
        engine._migrations = migrations
        loop = asyncio.get_running_loop()
        engine._loop = loop
        engine._ready = loop.create_future()
        engine._stopped = loop.create_future()
        engine._writer.start()
        try:
            await engine._ready
            await engine.read(lambda conn: conn.execute("SELECT 1").fetchone())
        except BaseException:
            await engine.close()
            raise
        return engine

    # public operations

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` in the writer's next group transaction; returns once committed (durable)."""
        if self._closed:
            raise StorageError("store is closed")
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        self._queue.put((fn, fut, loop))
        return await fut

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` on the reader connection."""
        if self._closed:
            raise StorageError("store is closed")
        self._reader_used = True
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._reader, self._run_read, fn)
        except RuntimeError as e:  # executor shut down under us
            raise StorageError(f"store is closed ({e})") from None

    async def close(self) -> None:
        """Flush queued writes, stop the threads, close the connections. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._writer.is_alive():
            self._queue.put(_STOP)
            assert self._stopped is not None
            await asyncio.shield(self._stopped)
        if self._reader_used:
            with contextlib.suppress(RuntimeError):  # the reader thread is already broken
                await asyncio.get_running_loop().run_in_executor(self._reader, self._close_reader)
        self._reader.shutdown(wait=False)
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    # reader thread

    def _open_reader(self) -> None:
        conn = connect(self.path, self.sync)
        conn.execute("PRAGMA query_only=1")
        self._reader_local.conn = conn

    def _run_read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn: sqlite3.Connection | None = getattr(self._reader_local, "conn", None)
        if conn is None:
            raise StorageError("store is closed")
        try:
            return fn(conn)
        except GlideError:
            raise
        except Exception as e:
            raise _storage_error(e) from None

    def _close_reader(self) -> None:
        conn = getattr(self._reader_local, "conn", None)
        if conn is not None:
            conn.close()
            self._reader_local.conn = None

    # writer thread

    def _signal(self, fut: asyncio.Future[None] | None, error: BaseException | None = None) -> None:
        def done() -> None:
            if fut is not None and not fut.done():
                if error is None:
                    fut.set_result(None)
                else:
                    fut.set_exception(error)

        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(done)

    def _writer_main(self) -> None:
        try:
            conn = connect(self.path, self.sync)
            migrate(conn, self._migrations, self.path)
        except BaseException as e:
            self._signal(self._ready, e if isinstance(e, GlideError) else _storage_error(e))
            self._signal(self._stopped)
            return
        self._signal(self._ready)
        try:
            self._write_loop(conn)
        finally:
            conn.close()
            self._fail_pending()
            self._signal(self._stopped)

    def _write_loop(self, conn: sqlite3.Connection) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            ops = [item for item in batch if item is not _STOP]
            if ops:
                try:
                    self._run_batch(conn, ops)
                except Exception as e:  # a bug here must not strand the callers: fail their futures
                    log.exception("sqlite writer failed on a batch of %d writes", len(ops))
                    self._deliver([(fut, loop, None, _storage_error(e)) for _, fut, loop in ops])
            if len(ops) != len(batch):
                return

    def _run_batch(self, conn: sqlite3.Connection, ops: list[tuple[Op, asyncio.Future[Any], Any]]) -> None:
        results: list[tuple[Op, asyncio.Future[Any], Any, Any, BaseException | None]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for fn, fut, loop in ops:
                value, error = self._run_op(conn, fn)
                results.append((fn, fut, loop, value, error))
            conn.execute("COMMIT")
            self.batches_committed += 1
        except (sqlite3.Error, _BatchAborted) as e:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            self._rolled_back()
            failure = StorageError(f"storage failure, nothing of this batch was stored: {e}")
            log.error("sqlite batch of %d writes failed: %s", len(ops), e)
            results = [(fn, fut, loop, None, failure) for fn, fut, loop in ops]
        self._deliver([(fut, loop, value, error) for _, fut, loop, value, error in results])

    @staticmethod
    def _deliver(results: list[tuple[asyncio.Future[Any], Any, Any, BaseException | None]]) -> None:
        """One call_soon_threadsafe per event loop for the whole batch."""
        by_loop: dict[Any, list[tuple[asyncio.Future[Any], Any, BaseException | None]]] = {}
        for fut, loop, value, error in results:
            by_loop.setdefault(loop, []).append((fut, value, error))
        for loop, items in by_loop.items():
            with contextlib.suppress(RuntimeError):  # that event loop is closed: nobody is waiting any more
                loop.call_soon_threadsafe(_resolve, items)

    def _rolled_back(self) -> None:
        for hook in self.on_rollback:
            hook()

    def _run_op(self, conn: sqlite3.Connection, fn: Op) -> tuple[Any, BaseException | None]:
        conn.execute("SAVEPOINT op")
        try:
            value = fn(conn)
        except Exception as e:
            if not conn.in_transaction:
                raise _BatchAborted(str(e)) from e
            conn.execute("ROLLBACK TO op")
            conn.execute("RELEASE op")
            self._rolled_back()
            return None, _storage_error(e)
        conn.execute("RELEASE op")
        return value, None

    def _fail_pending(self) -> None:
        closed = StorageError("store is closed")
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not _STOP:
                _, fut, loop = item
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(_resolve, [(fut, None, closed)])
