"""Fresh PostgreSQL databases for tests, fast.

A background thread creates, once per test session, a template database with glide's schema, then keeps a
few clones of it ready (``CREATE DATABASE … TEMPLATE``, about 0.1 s each) and drops used ones after their
test, so a test waits for neither. The server is reached as postgres/postgres on 127.0.0.1:5432 unless
``GLIDE_TEST_PG`` names another admin URL; ``bash scripts/services`` installs and starts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import secrets
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from glide.store.postgres import PostgresStore

T = TypeVar("T")
ADMIN_URL = os.environ.get("GLIDE_TEST_PG", "postgresql://postgres:postgres@127.0.0.1:5432/postgres")
PREFETCH = 2  # clones kept ready
TAKE_TIMEOUT_S = 120.0
Reply = queue.Queue["str | PgUnavailable"]


def database_url(name: str, admin_url: str = ADMIN_URL) -> str:
    """``admin_url`` pointing at database ``name``."""
    return urlunsplit(urlsplit(admin_url)._replace(path="/" + name))


class PgUnavailable(Exception):
    """PostgreSQL could not be reached or could not create a database; the message says how to fix it."""


class PgDatabases:
    """Creates the session's template on :meth:`start`; :meth:`take` a fresh clone, :meth:`release` it after."""

    def __init__(self, admin_url: str = ADMIN_URL) -> None:
        self.admin_url = admin_url
        self.prefix = f"glide_test_{secrets.token_hex(4)}"
        self.template = f"{self.prefix}_tmpl"
        self._ready: queue.Queue[str | PgUnavailable] = queue.Queue()
        self._commands: queue.Queue[tuple[str, str, Reply | None]] = queue.Queue()
        self._started = threading.Event()
        self._error: PgUnavailable | None = None
        self._count = 0
        self._thread = threading.Thread(target=self._main, name="glide-test-pg", daemon=True)

    def start(self) -> None:
        """Connect and build the template; raises PgUnavailable with a clear message if that fails."""
        self._thread.start()
        self._started.wait()
        if self._error is not None:
            self._thread.join()
            raise self._error

    def take(self) -> str:
        """The name of a fresh database with glide's schema, for this test only."""
        try:
            item = self._ready.get(timeout=TAKE_TIMEOUT_S)
        except queue.Empty:
            raise PgUnavailable(f"no fresh PostgreSQL database within {TAKE_TIMEOUT_S:.0f} s") from None
        if isinstance(item, PgUnavailable):
            self._ready.put(item)  # every later test fails the same way
            raise item
        self._commands.put(("refill", "", None))
        return item

    def empty(self) -> str:
        """The name of a fresh database without any schema (for migration tests)."""
        reply: Reply = queue.Queue()
        self._commands.put(("empty", "", reply))
        item = reply.get(timeout=TAKE_TIMEOUT_S)
        if isinstance(item, PgUnavailable):
            raise item
        return item

    def release(self, name: str) -> None:
        """Drop ``name`` soon (in the background)."""
        self._commands.put(("drop", name, None))

    def url(self, name: str) -> str:
        return database_url(name, self.admin_url)

    def stop(self) -> None:
        """Drop every database of this session, the template last."""
        if self._thread.is_alive():
            self._commands.put(("stop", "", None))
            self._thread.join(60)

    # the background thread

    def _name(self) -> str:
        self._count += 1
        return f"{self.prefix}_{self._count}"

    def _main(self) -> None:
        loop = asyncio.new_event_loop()

        def run(coro: Coroutine[Any, Any, T]) -> T:
            return loop.run_until_complete(coro)

        try:
            conn: asyncpg.Connection[asyncpg.Record] = run(asyncpg.connect(self.admin_url, timeout=10))
        except Exception as e:
            self._error = PgUnavailable(
                f"PostgreSQL is not reachable at {urlsplit(self.admin_url).netloc.split('@')[-1]} "
                f"as {urlsplit(self.admin_url).username}: {e!r}. The PostgreSQL tests need it: run "
                "`bash scripts/services` (installs and starts it), or set GLIDE_TEST_PG to an admin URL."
            )
            self._started.set()
            loop.close()
            return
        try:
            run(conn.execute(f'CREATE DATABASE "{self.template}"'))
            store = run(PostgresStore.open(self.url(self.template)))
            run(store.close())
        except Exception as e:
            self._error = PgUnavailable(f"PostgreSQL could not build the test template database: {e!r}")
            self._started.set()
            run(self._drop(conn, self.template))
            run(conn.close())
            loop.close()
            return
        self._started.set()
        made: list[str] = []
        try:
            while True:
                while self._ready.qsize() < PREFETCH:
                    name = self._name()
                    try:
                        run(conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"'))
                    except Exception as e:
                        self._ready.put(PgUnavailable(f"PostgreSQL could not create a test database: {e!r}"))
                        break
                    made.append(name)
                    self._ready.put(name)
                kind, arg, reply = self._commands.get()
                if kind == "stop":
                    break
                if kind == "drop":
                    run(self._drop(conn, arg))
                    if arg in made:
                        made.remove(arg)
                elif kind == "empty" and reply is not None:
                    name = self._name()
                    try:
                        run(conn.execute(f'CREATE DATABASE "{name}"'))
                        made.append(name)
                        reply.put(name)
                    except Exception as e:
                        reply.put(PgUnavailable(f"PostgreSQL could not create an empty test database: {e!r}"))
        finally:
            for name in [*made, self.template]:
                run(self._drop(conn, name))
            run(conn.close())
            loop.close()

    @staticmethod
    async def _drop(conn: asyncpg.Connection[asyncpg.Record], name: str) -> None:
        # A leftover database is harmless: its name is unique to its session.
        with contextlib.suppress(asyncpg.PostgresError, OSError):
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
