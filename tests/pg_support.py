"""Fresh PostgreSQL databases for tests, fast.

Once per test session a template database gets glide's schema (``glide_test_<session>_tmpl``); databases
for tests are cloned from it (``CREATE DATABASE … TEMPLATE``), and each test gets one in exactly the
template's state: after its test, a database is either reset (every connection to it ended, every row of
every table deleted, its sequences restarted, its schema checked against the template's fingerprint)
and handed to a later test, or, when the check fails (the test changed the schema), dropped and replaced by
a new clone. Resetting instead of dropping matters for time: every
``DROP DATABASE`` forces a checkpoint in PostgreSQL, several hundred milliseconds on a busy machine.
Background threads keep PREFETCH databases ready, so tests do not wait; the session's databases are dropped
at its end.

The server is reached as postgres/postgres on 127.0.0.1:55432 (the private instance ``bash scripts/services``
installs and starts) unless ``GLIDE_TEST_PG`` names another admin URL.
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
ADMIN_URL = os.environ.get("GLIDE_TEST_PG", "postgresql://postgres:postgres@127.0.0.1:55432/postgres")
PREFETCH = 3  # databases kept ready
TAKE_TIMEOUT_S = 120.0
Reply = queue.Queue["str | PgUnavailable"]

# Everything a test could have changed about a database besides its rows (from the catalogs: fast).
OWN = "NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND {ns} NOT LIKE 'pg_%temp%'"
FINGERPRINT = f"""
SELECT md5(string_agg(item, ';' ORDER BY item)) FROM (
    SELECT format('rel %s.%s %s', n.nspname, c.relname, c.relkind) AS item
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname {OWN.format(ns="n.nspname")}
    UNION ALL SELECT format('col %s.%s %s %s %s', a.attrelid::regclass, a.attname, format_type(a.atttypid, a.atttypmod),
                            a.attnotnull, pg_get_expr(d.adbin, d.adrelid))
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE n.nspname {OWN.format(ns="n.nspname")} AND a.attnum > 0 AND NOT a.attisdropped
    UNION ALL SELECT 'idx ' || pg_get_indexdef(i.indexrelid)
        FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname {OWN.format(ns="n.nspname")}
    UNION ALL SELECT 'con ' || conname || ' ' || pg_get_constraintdef(k.oid)
        FROM pg_constraint k JOIN pg_namespace n ON n.oid = k.connamespace WHERE n.nspname {OWN.format(ns="n.nspname")}
    UNION ALL SELECT 'ns ' || nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg_%temp%'
    UNION ALL SELECT 'fn ' || p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname {OWN.format(ns="n.nspname")}
    UNION ALL SELECT 'trg ' || tgname FROM pg_trigger WHERE NOT tgisinternal
    UNION ALL SELECT 'version ' || id || ' ' || version FROM schema_version
    UNION ALL SELECT 'setting ' || array_to_string(setconfig, ',') FROM pg_db_role_setting
) AS fingerprint
"""
# Every row of every table gone (DELETE: cheaper than TRUNCATE for a test's few rows; foreign keys are not
# checked meanwhile, the end state has no rows at all), sequences restarted.
RESET = """DO $$
DECLARE t text;
BEGIN
    PERFORM set_config('session_replication_role', 'replica', true);
    FOR t IN SELECT format('%I.%I', schemaname, tablename) FROM pg_tables
             WHERE schemaname = 'public' AND tablename <> 'schema_version' LOOP
        EXECUTE 'DELETE FROM ' || t;
    END LOOP;
    PERFORM setval(c.oid, s.seqstart, false) FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid;
END $$"""


def database_url(name: str, admin_url: str = ADMIN_URL) -> str:
    """``admin_url`` pointing at database ``name``."""
    return urlunsplit(urlsplit(admin_url)._replace(path="/" + name))


class PgUnavailable(Exception):
    """PostgreSQL could not be reached or could not create a database; the message says how to fix it."""


class PgDatabases:
    """Builds the session's template on :meth:`start`; :meth:`take` a database, :meth:`release` it after.

    Two background threads, each with its own admin connection: the maker clones the template whenever
    fewer than PREFETCH databases are ready; the recycler resets released databases (or drops them).
    """

    def __init__(self, admin_url: str = ADMIN_URL) -> None:
        self.admin_url = admin_url
        self.prefix = f"glide_test_{secrets.token_hex(4)}"
        self.template = f"{self.prefix}_tmpl"
        self._ready: queue.Queue[str | PgUnavailable] = queue.Queue()
        self._commands: queue.Queue[tuple[str, Reply | None]] = queue.Queue()
        self._released: queue.Queue[str | None] = queue.Queue()
        self._started = threading.Event()
        self._error: PgUnavailable | None = None
        self._fingerprint = ""
        self._count = 0
        self._lock = threading.Lock()
        self._clones: set[str] = set()  # made from the template: recycled after use
        self._others: set[str] = set()  # empty ones: dropped after use
        self._resetting = 0  # released clones not back in the ready queue yet
        self._maker = threading.Thread(target=self._make_main, name="glide-test-pg-maker", daemon=True)
        self._recycler = threading.Thread(target=self._recycle_main, name="glide-test-pg-recycler", daemon=True)

    def start(self) -> None:
        """Connect and build the template; raises PgUnavailable with a clear message if that fails."""
        self._maker.start()
        self._started.wait()
        if self._error is not None:
            self._maker.join()
            raise self._error
        self._recycler.start()

    def take(self) -> str:
        """The name of a database in the template's state (glide's schema, no rows), for this test only."""
        try:
            item = self._ready.get(timeout=TAKE_TIMEOUT_S)
        except queue.Empty:
            raise PgUnavailable(f"no fresh PostgreSQL database within {TAKE_TIMEOUT_S:.0f} s") from None
        if isinstance(item, PgUnavailable):
            self._ready.put(item)  # every later test fails the same way
            raise item
        self._commands.put(("refill", None))
        return item

    def empty(self) -> str:
        """The name of a new database without any schema (for migration tests)."""
        reply: Reply = queue.Queue()
        self._commands.put(("empty", reply))
        item = reply.get(timeout=TAKE_TIMEOUT_S)
        if isinstance(item, PgUnavailable):
            raise item
        return item

    def release(self, name: str) -> None:
        """The test is done with ``name``: reset it for another test, or drop it (in the background)."""
        with self._lock:
            self._resetting += name in self._clones
        self._released.put(name)

    def url(self, name: str) -> str:
        return database_url(name, self.admin_url)

    def stop(self) -> None:
        """Drop every database of this session, the template last."""
        if self._maker.is_alive():
            self._commands.put(("stop", None))
            self._maker.join(60)
        self._released.put(None)
        if self._recycler.is_alive():
            self._recycler.join(120)

    # the background threads

    def _connect(self, loop: asyncio.AbstractEventLoop, name: str = "") -> asyncpg.Connection[asyncpg.Record]:
        url = self.url(name) if name else self.admin_url
        return loop.run_until_complete(asyncpg.connect(url, timeout=10))

    def _make_main(self) -> None:
        loop = asyncio.new_event_loop()

        def run(coro: Coroutine[Any, Any, T]) -> T:
            return loop.run_until_complete(coro)

        try:
            conn = self._connect(loop)
        except Exception as e:
            where = urlsplit(self.admin_url)
            self._error = PgUnavailable(
                f"PostgreSQL is not reachable at {where.netloc.split('@')[-1]} as {where.username}: {e!r}. "
                "The PostgreSQL tests need it: run `bash scripts/services` (installs and starts it), "
                "or set GLIDE_TEST_PG to an admin URL."
            )
            self._started.set()
            loop.close()
            return
        try:
            run(conn.execute(f'CREATE DATABASE "{self.template}"'))
            run(run(PostgresStore.open(self.url(self.template))).close())
            template = self._connect(loop, self.template)
            self._fingerprint = str(run(template.fetchval(FINGERPRINT)))
            run(template.close())
        except Exception as e:
            self._error = PgUnavailable(f"PostgreSQL could not build the test template database: {e!r}")
            run(self._drop(conn, self.template))
        self._started.set()
        try:
            while self._error is None:
                # Clones on their way back count: a reset is quicker than a new clone and its later drop.
                while self._ready.qsize() + self._resetting < PREFETCH:
                    self._ready.put(run(self._create(conn, self._clones, f'TEMPLATE "{self.template}"')))
                kind, reply = self._commands.get()
                if kind == "stop":
                    break
                if kind == "empty" and reply is not None:
                    reply.put(run(self._create(conn, self._others, "")))
        finally:
            run(conn.close())
            loop.close()

    def _recycle_main(self) -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._recycle())
        finally:
            loop.close()

    async def _recycle(self) -> None:
        try:
            conn = await asyncpg.connect(self.admin_url, timeout=10)
        except Exception:
            return  # nothing to clean up with; the names are unique, leftovers harm no one
        drops: set[asyncio.Task[None]] = set()  # in the background: a drop waits for a checkpoint
        try:
            loop = asyncio.get_running_loop()
            while (name := await loop.run_in_executor(None, self._released.get)) is not None:
                with self._lock:
                    clone = name in self._clones
                reset = clone and await self._reset(conn, name)
                if reset:
                    self._ready.put(name)
                else:
                    self._forget(name)
                    drops.add(asyncio.create_task(self._drop_all([name])))
                with self._lock:
                    self._resetting -= clone
                if not reset:
                    self._commands.put(("refill", None))
            await asyncio.gather(*drops)
            with self._lock:
                leftovers = [*self._clones, *self._others]
            await self._drop_all(leftovers)
            await self._drop(conn, self.template)
        finally:
            await conn.close()

    async def _create(self, conn: asyncpg.Connection[asyncpg.Record], kind: set[str], options: str) -> Any:
        self._count += 1
        name = f"{self.prefix}_{self._count}"
        try:
            await conn.execute(f'CREATE DATABASE "{name}" {options}')
        except Exception as e:
            return PgUnavailable(f"PostgreSQL could not create a test database: {e!r}")
        with self._lock:
            kind.add(name)
        return name

    async def _reset(self, admin: asyncpg.Connection[asyncpg.Record], name: str) -> bool:
        """Bring ``name`` back to the template's state; False if that cannot be vouched for."""
        try:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                name,
            )
            conn = await asyncpg.connect(self.url(name), timeout=10)
            try:
                await conn.execute(RESET)
                return bool(await conn.fetchval(FINGERPRINT) == self._fingerprint)
            finally:
                await conn.close()
        except (asyncpg.PostgresError, OSError, TimeoutError):
            return False

    async def _drop_all(self, names: list[str]) -> None:
        """Drop ``names`` at once: each drop waits for a checkpoint, and concurrent drops share one."""

        async def drop(name: str) -> None:
            with contextlib.suppress(asyncpg.PostgresError, OSError, TimeoutError):
                conn = await asyncpg.connect(self.admin_url, timeout=10)
                try:
                    await self._drop(conn, name)
                finally:
                    await conn.close()

        await asyncio.gather(*map(drop, names))

    def _forget(self, name: str) -> None:
        with self._lock:
            self._clones.discard(name)
            self._others.discard(name)

    async def _drop(self, conn: asyncpg.Connection[asyncpg.Record], name: str) -> None:
        self._forget(name)
        # A leftover database is harmless: its name is unique to its session.
        with contextlib.suppress(asyncpg.PostgresError, OSError):
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
