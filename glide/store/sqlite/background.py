"""Work on SQLite that must not hold the event loop: a thread of its own with its own connection.

A job reads what is committed (WAL: beside the writer, never blocking it) and may write a *scratch* database
(a file beside the database, attached to the worker's connection as ``scratch``, rebuilt at every start, never
synced: nothing in it outlives a crash). Its result goes back to the loop's thread, between transactions.
The engine's connection attaches the scratch file only while it reads what a job left there: a transaction
begun there (``BEGIN IMMEDIATE``) locks every attached database, and a job must be able to write it.

Only SQLite's own work runs here, with the GIL released: a job is a few statements that each do much.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from glide.errors import GlideError
from glide.store.data_dir import private_file

log = logging.getLogger("glide.store")

SCRATCH = "scratch"  # the schema name of the scratch database, on both connections
Job = Callable[[sqlite3.Connection], Any]
Done = Callable[[Any], None]  # called with the job's result, or the exception it raised


def scratch_path(path: Path) -> Path:
    return path.with_name(path.name + "-scratch")


class BackgroundWorker:
    """Runs jobs one after the other, in the order given, on a thread started with the first of them."""

    def __init__(self, path: Path, connect: Callable[[Path], sqlite3.Connection]) -> None:
        self.path = path
        self._connect = connect
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
                conn.close()

    def _open(self) -> sqlite3.Connection | None:
        scratch = scratch_path(self.path)
        try:
            conn = self._connect(self.path)
            scratch.unlink(missing_ok=True)  # whatever an earlier process left there
            private_file(scratch)
            conn.execute(f"ATTACH DATABASE ? AS {SCRATCH}", (str(scratch),))
            conn.execute(f"PRAGMA {SCRATCH}.journal_mode=OFF")
            conn.execute(f"PRAGMA {SCRATCH}.synchronous=OFF")
        except (GlideError, sqlite3.Error, OSError) as e:
            log.error("sqlite background worker cannot open the database: %s", e)
            return None
        return conn


def attach_scratch(conn: sqlite3.Connection, path: Path) -> None:
    """Attach the scratch database to ``conn`` (outside any transaction)."""
    if not scratch_attached(conn):
        conn.execute(f"ATTACH DATABASE ? AS {SCRATCH}", (str(scratch_path(path)),))


def detach_scratch(conn: sqlite3.Connection) -> None:
    """Detach it again (outside any transaction), so that a job may write it."""
    if scratch_attached(conn):
        conn.execute(f"DETACH DATABASE {SCRATCH}")


def scratch_attached(conn: sqlite3.Connection) -> bool:
    return any(row[1] == SCRATCH for row in conn.execute("PRAGMA database_list"))
