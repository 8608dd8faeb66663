"""Work on SQLite that must not hold the event loop: a thread of its own with its own connection, and the
*index database* only that thread writes.

The index database is a file beside the database (``<db>-indexes``, attached to both the loop's connection
and the worker's as ``indexes``) holding what is derived from the database's rows and rebuilt from them when
it is missing or does not match (the message log's index tables). The worker's jobs read what is committed in
the database (WAL: beside the writer, never blocking it) and write the index database in transactions of
their own, which take the write lock of that file only (``BEGIN`` deferred locks what it writes); the loop's
connection only reads it, so neither ever waits for the other. Results go back to the loop's thread, between
transactions.

Only SQLite's own work runs here, with the GIL released: a job is a few statements that each do much.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from glide.errors import GlideError
from glide.store.data_dir import private_file

log = logging.getLogger("glide.store")

INDEXES = "indexes"  # the schema name of the index database, on both connections
# The worker's thread runs at this much lower a CPU priority (Linux: a thread's own nice value), as RocksDB's
# compaction threads do: on a machine whose cores the event loop shares with it, a job of a few hundred
# milliseconds then delays the loop less; the job still gets its share, just later.
WORKER_NICE = 10
Job = Callable[[sqlite3.Connection], Any]
Done = Callable[[Any], None]  # called with the job's result, or the exception it raised


def indexes_path(path: Path) -> Path:
    return path.with_name(path.name + "-" + INDEXES)


def attach_indexes(conn: sqlite3.Connection, path: Path, sync: str, cache_kib: int, mmap_bytes: int) -> None:
    """Attach the index database of the database at ``path`` to ``conn`` (created 0600 if missing), in WAL mode
    with the same durability and memory settings as the database's."""
    target = indexes_path(path)
    private_file(target)
    conn.execute(f"ATTACH DATABASE ? AS {INDEXES}", (str(target),))
    conn.execute(f"PRAGMA {INDEXES}.journal_mode=WAL")
    conn.execute(f"PRAGMA {INDEXES}.synchronous={ {'full': 'FULL', 'off': 'OFF'}.get(sync, 'NORMAL') }")
    conn.execute(f"PRAGMA {INDEXES}.cache_size=-{cache_kib}")
    conn.execute(f"PRAGMA {INDEXES}.mmap_size={mmap_bytes}")
    private_file(target)  # its -wal and -shm files, now that they exist


class BackgroundWorker:
    """Runs jobs one after the other, in the order given, on a thread started with the first of them; its
    connection has the index database attached (``open`` makes it). At the end the index database's WAL is
    copied back and emptied."""

    def __init__(self, path: Path, open_: Callable[[], sqlite3.Connection]) -> None:
        self.path = path
        self._open_conn = open_
        self._jobs: queue.SimpleQueue[tuple[asyncio.AbstractEventLoop, Job, Done] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def submit(self, job: Job, done: Done) -> None:
        """Run ``job(conn)`` there; then ``done(result)`` on the calling loop's thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"glide-sqlite-worker:{self.path.name}", daemon=True)
            self._thread.start()
        self._jobs.put((asyncio.get_running_loop(), job, done))

    def stop(self) -> None:
        """No job after those already given; the thread ends once they are done (``join``)."""
        self._jobs.put(None)

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        with contextlib.suppress(OSError, AttributeError):  # elsewhere it runs at the process's priority
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WORKER_NICE)
        conn = self._open()
        try:
            while (item := self._jobs.get()) is not None:
                loop, job, done = item
                result: Any
                try:
                    if conn is None:
                        raise GlideError(f"{self.path}: the background connection could not be opened")
                    result = job(conn)
                except Exception as e:  # handed to `done`: the caller decides
                    if conn is not None and conn.in_transaction:
                        conn.execute("ROLLBACK")
                    result = e
                with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits for it
                    loop.call_soon_threadsafe(done, result)
        finally:
            if conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute(f"PRAGMA {INDEXES}.wal_checkpoint(TRUNCATE)")
                conn.close()

    def _open(self) -> sqlite3.Connection | None:
        try:
            return self._open_conn()
        except (GlideError, sqlite3.Error, OSError) as e:
            log.error("sqlite background worker cannot open the database: %s", e)
            return None
