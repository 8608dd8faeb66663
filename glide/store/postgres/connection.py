"""Connecting to PostgreSQL: the session settings every connection of glide gets, the errors it maps, and the
built-in migrations (one node at a time)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeAlias
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from glide.errors import ConfigError, GlideError, StorageError
from glide.store.postgres.routines import Routine

WriteConn: TypeAlias = "asyncpg.Connection[asyncpg.Record]"
Conn: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"
Migration = Callable[["asyncpg.Connection[asyncpg.Record]"], Awaitable[None]]
log = logging.getLogger("glide.store")

CONNECT_TIMEOUT_S = 10.0
MIGRATION_LOCK = 0x676C696465  # pg_advisory_lock key ("glide"): nodes starting together migrate one at a time
# plan_cache_mode: asyncpg prepares every statement once per connection, and PostgreSQL switches a prepared
# statement to a generic plan after five runs. Made while a table is still small (a new database, before
# autovacuum's first ANALYZE), that plan scans the whole table and is kept as the table grows: the message
# path fell from ~18 ms to ~190 ms p50 (p99 6 s) within seconds of a fresh start. Custom plans see the table's
# current size each time, for a few µs of planning (a statement whose plan does not depend on the length of
# its lists may run in a routine planned once instead: PLANNED_ONCE).
SERVER_SETTINGS = {"application_name": "glide", "synchronous_commit": "on", "plan_cache_mode": "force_custom_plan"}


def redact(url: str) -> str:
    """``url`` without its password, for messages and logs."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))
    except ValueError:
        return "<unparsable PostgreSQL URL>"


def storage_error(e: BaseException) -> GlideError:
    if isinstance(e, GlideError):
        return e
    if not isinstance(e, (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)):
        log.error("unexpected error in a store operation", exc_info=e)
    return StorageError(f"storage failure: {e}")


async def connect(url: str, where: str) -> WriteConn:
    try:
        return await asyncpg.connect(url, timeout=CONNECT_TIMEOUT_S, server_settings=SERVER_SETTINGS)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError, ValueError) as e:
        raise ConfigError(f"{where}: cannot connect to PostgreSQL: {e}") from None


async def migrate(
    conn: WriteConn, migrations: Sequence[Migration], where: str, routines: Sequence[Routine] = ()
) -> int:
    """Bring the schema to ``len(migrations)``, one transaction per step, and make the ``routines`` the
    database lacks; returns the final version."""
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
    try:
        try:
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_version "
                "(id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)"
            )
            current = int(await conn.fetchval("SELECT version FROM schema_version WHERE id = 1") or 0)
        except asyncpg.PostgresError as e:
            raise ConfigError(f"{where}: not a usable glide database: {e}") from None
        if current > len(migrations):
            raise ConfigError(
                f"{where}: schema version {current} is newer than this glide supports ({len(migrations)})"
            )
        for version in range(current, len(migrations)):
            async with conn.transaction():
                await migrations[version](conn)
                await conn.execute(
                    "INSERT INTO schema_version (id, version) VALUES (1, $1) "
                    "ON CONFLICT (id) DO UPDATE SET version = excluded.version",
                    version + 1,
                )
        for r in routines:
            if await conn.fetchval("SELECT to_regproc($1)", r.name) is None:
                await conn.execute(r.create)
    finally:
        with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
            await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
    return len(migrations)
