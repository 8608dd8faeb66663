"""SQLite plumbing: writes grouped into one transaction per event-loop tick, built-in migrations.

Everything runs on the event loop's thread, on one connection: SQLite's own work per batch is tens of
microseconds, far less than handing each batch to another thread and back (a wake-up and a GIL hand-over
each way), and nothing else writes the file (one server per database, glide.store.data_dir). Writes are
closures: ``write`` queues one and the first write of a tick schedules the flush, which runs every closure
queued by then within ONE transaction, commits once, then resolves the futures. Within COMMIT_GAP_S of the
last commit the flush waits for the gap to end; a dispatcher round paced by the store (``pace``) waits for
PACED_GAP_S and runs right before the commit, so that what every connection sent meanwhile is one round and
one transaction. A failing closure rolls the transaction back and the batch runs again with each closure
behind a SAVEPOINT, so it fails only itself (no savepoint per closure while nothing fails). WAL with
``synchronous=NORMAL`` (the default) makes a commit survive the process being killed, which is the
``ack.message`` guarantee; ``FULL`` adds an fsync per commit so it also survives power loss. Reads run at once
on the same connection, between transactions: they see every write whose future has resolved, and nothing
uncommitted.

Checkpoints (copying the WAL back into the database file, with its fsync) run on a thread of their own, so
that the loop never waits for them, and so does the upkeep of what is derived from the rows (``background``:
the message log's index tables, in an index database only that thread writes, glide.store.sqlite.background);
transactions begin deferred, so that the loop's take the write lock of the database only, never the index
database's, which its connection reads. A writer lock held by another process fails a batch within
``WRITE_BUSY_TIMEOUT_MS`` instead of stalling the loop. SQLite starts the WAL over only when a transaction
begins with every frame copied back, which a server committing every millisecond never gives a checkpoint
running beside it: its WAL would grow without end (1.5 GB in 45 s of full case1, every write extending the
file). So once the WAL is big the checkpointer catches up with the writer, then asks the loop to hold its
commits for the last short copy (``hold``); the next transaction starts the WAL over and trims the file to
``WAL_LIMIT_BYTES``.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from glide.errors import ConfigError, GlideError, StorageError
from glide.store.data_dir import DatabaseLock, private_dir, private_file
from glide.store.sqlite.background import BackgroundWorker, Done, Job, attach_indexes

T = TypeVar("T")
Migration = Callable[[sqlite3.Connection], None]
Op = Callable[[sqlite3.Connection], Any]
log = logging.getLogger("glide.store")

BUSY_TIMEOUT_MS = 10_000  # connections that may wait (migrations, the checkpointer)
WRITE_BUSY_TIMEOUT_MS = 20  # the loop's connection: another process's lock fails the batch quickly
MMAP_BYTES = 1 << 30
CACHE_KIB = 64 * 1024
DEFERRED_S = 0.1  # how long a deferred write (an acknowledgement) may wait for the next transaction
# At most one commit per this long while writes keep coming.
COMMIT_GAP_S = 0.001
# The gap a paced round waits for (pace; the dispatcher paces rounds while they are small): what a round and a
# commit cost is shared by what arrives within it. case1 at --scale 0.1 (1,400 msg/s) on the native driver:
# 1 ms cost 255 µs of server CPU per message at a p99 of 2.9 ms, 2 ms 212 µs at 4.3 ms, 4 ms 185 µs at 7.7 ms.
# A loaded server's rounds are large and not paced: there a 2 ms gap made full case1's p99 worse (37 -> 59 ms).
PACED_GAP_S = 0.002
CHECKPOINT_INTERVAL_S = 1.0
# The WAL is started over once it holds this many frames (pages, 256 MiB): the checkpointer copies it back, again
# and again, each copy taking what was committed during the one before, until one takes at most HOLD_FRAMES (or
# CATCH_UP_ROUNDS were not enough: the next interval tries again); what was committed during that one is copied
# with the loop's commits held (at most HOLD_LIMIT_S), so the next transaction finds every frame copied. The hold
# lasts the copy's two fsyncs (0.9-36 ms measured here under full case1, a few ended by HOLD_LIMIT_S), so it
# comes once per RESTART_FRAMES (every ~7-10 s of full case1), not per checkpoint; a server that pauses between
# commits starts over without it.
RESTART_FRAMES = 65536
CATCH_UP_ROUNDS = 8
HOLD_FRAMES = 256
HOLD_LIMIT_S = 0.05
WAL_LIMIT_BYTES = 256 << 20  # the WAL file is trimmed to this when it starts over


class _BatchAborted(Exception):
    """SQLite rolled the whole transaction back (e.g. disk full): no operation of the batch survives."""


SYNC_MODES = ("normal", "full")


def connect(path: Path, sync: str = "normal", busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit) with the durability settings."""
    try:
        conn = sqlite3.connect(path, isolation_level=None, timeout=busy_timeout_ms / 1000, check_same_thread=False)
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    except sqlite3.DatabaseError as e:
        raise ConfigError(f"{path}: cannot open as a SQLite database: {e}") from None
    if str(mode).lower() != "wal":
        conn.close()
        raise ConfigError(f"{path}: SQLite refused WAL journal mode (got {mode!r}); use a local file system")
    conn.execute(f"PRAGMA synchronous={ {'full': 'FULL', 'off': 'OFF'}.get(sync, 'NORMAL') }")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
    # The pages a busy server touches stay in memory: read through a mapping (no read call per page) and
    # kept in a page cache big enough for the indexes of its active users.
    conn.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
    conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
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


def _deferred_done(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled() and fut.exception() is not None:
        log.warning("a deferred write failed (it will be redone): %s", fut.exception())


class SqliteEngine:
    """Owns the connection, the write queue of the current tick and the checkpointer. Build with :meth:`open`."""

    def __init__(self, path: Path, conn: sqlite3.Connection, sync: str = "normal") -> None:
        # The loop it serves, held: on Python 3.11 every asyncio.get_running_loop() is a getpid system call
        # (its check for a fork), several per round on the message path.
        self._loop = asyncio.get_running_loop()
        self.path = path
        self.sync = sync
        self.batches_committed = 0
        self._conn: sqlite3.Connection | None = conn
        self._pending: list[tuple[Op, asyncio.Future[Any]]] = []
        self._flush_scheduled = False
        self._paced: list[Callable[[], None]] = []
        self._last_commit = 0.0
        self._lock: DatabaseLock | None = None
        # Called whenever writes are rolled back (one operation, or a whole batch), so that a backend's caches
        # of what it wrote (log heads, inbox cursors) can forget what they saw.
        self.on_rollback: list[Callable[[], None]] = []
        # Writes that may wait a little (acknowledgements' cursors): run in a transaction DEFERRED_S after the
        # first of them, even when nothing else is written.
        self._deferred: dict[object, Op] = {}
        self._riders: dict[object, Op] = {}  # with_next: the next transaction takes them, or DEFERRED_S does
        self._deferred_timer: asyncio.TimerHandle | None = None
        self._deferred_due = False  # DEFERRED_S passed (or closing): the next flush takes them, writes or not
        self._hold: object | None = None  # the checkpointer's hold on commits, while it copies the WAL's last frames
        self._hold_timer: asyncio.TimerHandle | None = None
        self._checkpointer = _Checkpointer(path)
        self._worker = BackgroundWorker(path, self._worker_connection)

    @classmethod
    async def open(cls, path: Path, migrations: Sequence[Migration], sync: str = "normal") -> SqliteEngine:
        """Create the parent directory, open (creating or migrating) the database, start the checkpointer."""
        private_dir(path.parent)
        lock = DatabaseLock(path)  # before anything touches the file: one server per database
        try:
            private_file(path)
            conn = connect(path, sync)
            try:
                migrate(conn, migrations, path)
            except BaseException:
                conn.close()
                raise
        except BaseException:
            lock.release()
            raise
        # From here on a held lock fails a batch rather than stalling the loop; the checkpointer, not the
        # committing connection, moves the WAL back into the file.
        conn.execute(f"PRAGMA busy_timeout={WRITE_BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA wal_autocheckpoint=0")
        conn.execute(f"PRAGMA journal_size_limit={WAL_LIMIT_BYTES}")
        try:
            attach_indexes(conn, path, sync, CACHE_KIB, MMAP_BYTES)
        except (sqlite3.Error, GlideError) as e:
            conn.close()
            lock.release()
            raise ConfigError(f"{path}: cannot open its index database: {e}") from None
        engine = cls(path, conn, sync)
        engine._lock = lock
        engine._checkpointer.start(engine._loop, engine)
        return engine

    # public operations

    def wal_stats(self) -> tuple[int, int]:
        """The WAL file's size in bytes, and how many times the checkpointer held commits to start it over."""
        try:
            size = self.path.with_name(self.path.name + "-wal").stat().st_size
        except OSError:  # not there (closed, or never written)
            size = 0
        return size, self._checkpointer.restarts

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` in this tick's transaction; returns once committed (durable)."""
        if self._conn is None:
            raise StorageError("store is closed")
        loop = self._loop
        fut: asyncio.Future[T] = loop.create_future()
        self._pending.append((fn, fut))
        if not self._flush_scheduled:
            self._schedule_flush(COMMIT_GAP_S)
        return await fut

    def pace(self, round_: Callable[[], None]) -> bool:
        """Run ``round_`` (a dispatcher round, whose writes this store takes) when a commit can next happen:
        in the next tick if one can now (False), else when the commit gap ends, just before that commit
        (True). A write made within the gap waits for its end anyway; what arrives meanwhile then makes one
        round and one transaction, not one of each per tick."""
        loop = self._loop
        if not self._flush_scheduled and self._last_commit + PACED_GAP_S <= loop.time():
            loop.call_soon(round_)
            return False
        self._paced.append(round_)
        if not self._flush_scheduled:
            self._schedule_flush(PACED_GAP_S)
        return True

    def _schedule_flush(self, gap: float) -> None:
        # Group commit: a busy server commits at most once per gap, so each commit (and its pages) serves
        # more writes; a quiet one commits in the next tick.
        self._flush_scheduled = True
        loop = self._loop
        wait = self._last_commit + gap - loop.time()
        if wait > 0:
            loop.call_later(wait, self._commit_due)
        else:
            loop.call_soon(self._commit_due)

    def _commit_due(self) -> None:
        """The gap is over: the paced rounds first (their tasks write on their first step, queued before the
        flush), then the transaction."""
        if not self._paced:
            self._flush()
            return
        paced, self._paced = self._paced, []
        for round_ in paced:
            round_()
        self._loop.call_soon(self._flush)

    def defer(self, key: object, fn: Op) -> None:
        """Run ``fn(conn)`` in a transaction DEFERRED_S from now (once per ``key``: what is deferred meanwhile
        joins it), with whatever else is written then. Not durable until then: for writes whose loss in a crash
        only means doing something again (an acknowledgement: the message is delivered once more), and which
        are cheaper saved a few times a second than in every transaction (a cursor's page is written once)."""
        if self._conn is None:
            return
        self._deferred[key] = fn
        self._deferred_soon()

    def with_next(self, key: object, fn: Op) -> None:
        """Run ``fn(conn)`` in the next transaction (once per ``key``), at the latest DEFERRED_S from now: work
        done a step per transaction (the log's indexing), that adds no transaction of its own while others
        come."""
        if self._conn is None:
            return
        self._riders[key] = fn
        self._deferred_soon()

    def _deferred_soon(self) -> None:
        if self._deferred_timer is None and not self._deferred_due:
            self._deferred_timer = self._loop.call_later(DEFERRED_S, self._flush_deferred)

    def background(self, job: Job, done: Done) -> None:
        """Run ``job(conn)`` on the background worker's thread and connection (glide.store.sqlite.background: the
        only writer of the index database), after the jobs given before; ``done(result or exception)`` then runs
        on the loop's thread, between transactions, unless the engine was closed meanwhile."""
        if self._conn is None:
            return

        def finished(result: object) -> None:
            if self._conn is not None:
                done(result)

        self._worker.submit(job, finished)

    def _worker_connection(self) -> sqlite3.Connection:
        conn = connect(self.path, self.sync)
        try:
            attach_indexes(conn, self.path, self.sync, CACHE_KIB, MMAP_BYTES)
        except BaseException:
            conn.close()
            raise
        return conn

    def prepare(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` at once, before the store serves anything: it may write the index database (no
        background job runs yet) in transactions of its own."""
        if self._conn is None:
            raise StorageError("store is closed")
        return fn(self._conn)

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` now, outside any transaction (it sees everything committed)."""
        conn = self._conn
        if conn is None:
            raise StorageError("store is closed")
        try:
            return fn(conn)
        except GlideError:
            raise
        except Exception as e:
            raise _storage_error(e) from None

    async def close(self) -> None:
        """Flush queued writes, stop the checkpointer, close the connection. Idempotent."""
        if self._conn is None:
            return
        self._deferred_due = True
        self._hold = None
        self._flush()
        conn, self._conn = self._conn, None
        self._checkpointer.stop()
        self._worker.stop()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._checkpointer.join)
        await loop.run_in_executor(None, self._worker.join)
        conn.close()
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    # the tick's transaction

    def hold(self, token: object) -> None:
        """The checkpointer's request (on the loop's thread, so between transactions): no commit until
        ``release(token)`` or HOLD_LIMIT_S, whichever comes first. Writes queue meanwhile."""
        self._hold = token
        self._hold_timer = self._loop.call_later(HOLD_LIMIT_S, self.release, token)

    def release(self, token: object) -> None:
        """End the hold ``token`` (if it is still the one) and commit what queued meanwhile."""
        if self._hold is not token:
            return
        self._hold = None
        if self._hold_timer is not None:
            self._hold_timer.cancel()
            self._hold_timer = None
        if self._flush_scheduled:
            self._loop.call_soon(self._commit_due)

    def _flush(self) -> None:
        if self._hold is not None:  # release() flushes; until then writes queue without scheduling their own
            self._flush_scheduled = True
            return
        self._flush_scheduled = False
        try:
            self._commit()
        finally:
            if self._paced and not self._flush_scheduled:  # paced after the rounds of this commit ran
                self._schedule_flush(PACED_GAP_S)

    def _commit(self) -> None:
        """Every write queued until now, the riders and, when due, the deferred ones, in one transaction; then
        their answers. The riders alone wait for DEFERRED_S (a round that only indexed costs no transaction)."""
        ops, self._pending = self._pending, []
        due, self._deferred_due = self._deferred_due, False
        later: list[Op] = []
        if self._riders and (ops or due):
            later += self._riders.values()
            self._riders = {}
        if self._deferred and due:
            later += self._deferred.values()
            self._deferred = {}
        if later:
            if not self._riders and not self._deferred and self._deferred_timer is not None:
                self._deferred_timer.cancel()
                self._deferred_timer = None
            loop = self._loop
            for fn in later:
                fut: asyncio.Future[Any] = loop.create_future()
                fut.add_done_callback(_deferred_done)  # nobody awaits it: a failure is logged here
                ops.append((fn, fut))
        conn = self._conn
        if not ops or conn is None:
            return
        try:
            results = self._run_batch(conn, ops)
        except Exception as e:  # a bug here must not strand the callers: fail their futures
            log.exception("sqlite batch of %d writes failed", len(ops))
            results = [(fut, None, _storage_error(e)) for _, fut in ops]
        for fut, value, error in results:
            if fut.done():  # the caller was cancelled; the write happened anyway
                continue
            if error is None:
                fut.set_result(value)
            else:
                fut.set_exception(error)
        self._checkpointer.wrote()

    def _flush_deferred(self) -> None:
        self._deferred_timer = None
        self._deferred_due = True
        if not self._flush_scheduled:  # else the commit already due takes them: no transaction of their own
            self._flush()

    def _run_batch(
        self, conn: sqlite3.Connection, ops: list[tuple[Op, asyncio.Future[Any]]]
    ) -> list[tuple[asyncio.Future[Any], Any, BaseException | None]]:
        """Run ``ops`` in one transaction: first plainly, BEGIN, the ops, COMMIT. When an op fails, that
        transaction is rolled back and the batch runs again op by op behind savepoints (:meth:`_run_batch_apart`),
        so one op's failure costs only that op; the rollback hooks make the backends forget what the first
        attempt left in their caches (ops are functions of the transaction: running one twice is running it
        once)."""
        try:
            conn.execute("BEGIN")
            try:
                values = [fn(conn) for fn, _ in ops]
            except Exception as e:
                if not conn.in_transaction:
                    raise _BatchAborted(str(e)) from e
                conn.execute("ROLLBACK")
                self._rolled_back()
                return self._run_batch_apart(conn, ops)
            conn.execute("COMMIT")
            self._committed()
        except (sqlite3.Error, _BatchAborted) as e:
            return self._failed(conn, ops, e)
        return [(fut, value, None) for (_, fut), value in zip(ops, values, strict=True)]

    def _run_batch_apart(
        self, conn: sqlite3.Connection, ops: list[tuple[Op, asyncio.Future[Any]]]
    ) -> list[tuple[asyncio.Future[Any], Any, BaseException | None]]:
        """The batch again, each op behind a savepoint: a failing op is rolled back alone."""
        results: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        try:
            conn.execute("BEGIN")
            for fn, fut in ops:
                value, error = self._run_op(conn, fn)
                results.append((fut, value, error))
            conn.execute("COMMIT")
            self._committed()
        except (sqlite3.Error, _BatchAborted) as e:
            return self._failed(conn, ops, e)
        return results

    def _committed(self) -> None:
        self.batches_committed += 1
        self._last_commit = self._loop.time()

    def _failed(
        self, conn: sqlite3.Connection, ops: list[tuple[Op, asyncio.Future[Any]]], e: BaseException
    ) -> list[tuple[asyncio.Future[Any], Any, BaseException | None]]:
        """SQLite gave up on the transaction: every op of the batch fails, none was stored."""
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        self._rolled_back()
        failure = StorageError(f"storage failure, nothing of this batch was stored: {e}")
        log.error("sqlite batch of %d writes failed: %s", len(ops), e)
        return [(fut, None, failure) for _, fut in ops]

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


class _Checkpointer:
    """Copies the WAL back into the database file on its own thread and connection, every
    CHECKPOINT_INTERVAL_S while there are writes: a page written by many commits meanwhile is copied (and
    synced) once. PASSIVE checkpoints never block the writer; once the WAL holds RESTART_FRAMES the last
    frames are copied with the engine's commits held, so that it starts over. A last TRUNCATE checkpoint at
    shutdown leaves the WAL empty."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.restarts = 0  # times the WAL was copied back whole under a hold (it starts over at the next commit)
        self._wake = threading.Event()
        self._stop = False
        self._dirty = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._engine: SqliteEngine | None = None
        self._thread = threading.Thread(target=self._run, name=f"glide-sqlite-checkpoint:{path.name}", daemon=True)

    def start(self, loop: asyncio.AbstractEventLoop, engine: SqliteEngine) -> None:
        self._loop, self._engine = loop, engine
        self._thread.start()

    def wrote(self) -> None:
        self._dirty = True

    def stop(self) -> None:
        self._stop = True
        self._wake.set()

    def join(self) -> None:
        self._thread.join()

    def _run(self) -> None:
        try:
            conn = connect(self.path)
        except GlideError as e:
            log.error("sqlite checkpointer cannot open the database: %s", e.message)
            return
        try:
            while not self._stop:
                self._wake.wait(CHECKPOINT_INTERVAL_S)
                self._wake.clear()
                if self._dirty and not self._stop:
                    self._dirty = False
                    self._copy_back(conn)
            self._checkpoint(conn, "TRUNCATE")
        finally:
            conn.close()

    def _copy_back(self, conn: sqlite3.Connection) -> None:
        """A PASSIVE checkpoint; when the WAL is big, more of them (each copies what was committed during the
        one before) until one is short, then the last one under a hold of the engine's commits."""
        frames, copied = self._checkpoint(conn, "PASSIVE")
        if frames < RESTART_FRAMES:
            return
        for _ in range(CATCH_UP_ROUNDS):
            if self._stop:
                return
            start = copied
            frames, copied = self._checkpoint(conn, "PASSIVE")
            if frames < 0:
                return
            if frames - start <= HOLD_FRAMES:  # a short copy: what was committed during it is shorter still
                self._copy_held(conn)
                return

    def _copy_held(self, conn: sqlite3.Connection) -> None:
        loop, engine = self._loop, self._engine
        if loop is None or engine is None:
            return
        token = threading.Event()  # set by the loop once the hold is on
        if not _call_on(loop, _hold, engine, token):
            return
        if not token.wait(HOLD_LIMIT_S):  # the loop is busy: no hold this time (nor a late one)
            _call_on(loop, engine.release, token)
            return
        try:
            frames, copied = self._checkpoint(conn, "PASSIVE")
            self.restarts += frames > 0 and frames == copied
        finally:
            _call_on(loop, engine.release, token)

    def _checkpoint(self, conn: sqlite3.Connection, mode: str) -> tuple[int, int]:
        """Frames in the WAL, and how many of them are copied back (both -1 when it failed)."""
        try:
            _, frames, copied = conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
        except sqlite3.Error as e:  # e.g. the disk is full: the WAL grows, the writes still commit
            log.warning("sqlite checkpoint failed: %s", e)
            return -1, -1
        return int(frames), int(copied)


def _hold(engine: SqliteEngine, token: threading.Event) -> None:
    """On the loop's thread: put the hold on, then tell the checkpointer."""
    engine.hold(token)
    token.set()


def _call_on(loop: asyncio.AbstractEventLoop, fn: Callable[..., None], *args: object) -> bool:
    """``fn(*args)`` on the loop's thread; False when the loop is closed (the server is stopping)."""
    try:
        loop.call_soon_threadsafe(fn, *args)
    except RuntimeError:
        return False
    return True
