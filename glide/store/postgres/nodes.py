"""A node's id on PostgreSQL: held as a session advisory lock on a connection of its own, so that two live
nodes never issue mids with the same node id, and taken again when that connection dies."""

from __future__ import annotations

import contextlib
import logging

import asyncpg

from glide.errors import ConfigError, StorageError
from glide.ids import AUTO_NODE, MAX_NODE
from glide.store.postgres.connection import CONNECT_TIMEOUT_S, SERVER_SETTINGS, WriteConn, connect

log = logging.getLogger("glide.store")
NODE_LOCK = 0x676C6E64  # pg_advisory_lock(NODE_LOCK, node_id): the live node holding that id ("glnd")


class NodeLease:
    """The node id this server holds, and the connection holding it."""

    def __init__(self, url: str, where: str) -> None:
        self.url = url
        self.where = where
        self._conn: WriteConn | None = None
        self._node_id = AUTO_NODE

    async def claim(self, node_id: int) -> int:
        """Hold the advisory lock of ``node_id`` (AUTO_NODE: of the first free id) on a dedicated connection;
        ConfigError if a live node has it (or every id)."""
        conn = await connect(self.url, self.where)
        try:
            for candidate in range(MAX_NODE + 1) if node_id == AUTO_NODE else (node_id,):
                if await conn.fetchval("SELECT pg_try_advisory_lock($1, $2)", NODE_LOCK, candidate):
                    break
            else:
                problem = await self._problem(conn, node_id)
                raise ConfigError(problem)
        except BaseException:
            await conn.close()
            raise
        if self._conn is not None:
            await self._conn.close()
        self._conn = conn
        self._node_id = candidate
        return candidate

    async def keep(self) -> None:
        """Take the node id again on a new connection if the one holding it died. StorageError while the
        database cannot be reached (try again later); ConfigError if another node took the id meanwhile (two
        nodes must never issue ids with the same node id)."""
        if self._node_id == AUTO_NODE:
            return
        failures = (TimeoutError, asyncpg.PostgresError, OSError, asyncpg.InterfaceError)
        conn = self._conn
        if conn is not None:
            try:
                await conn.fetchval("SELECT 1", timeout=5)
                return
            except failures:
                log.warning("the connection holding node id %d was lost; taking the id again", self._node_id)
            with contextlib.suppress(Exception):
                conn.terminate()
            self._conn = None
        fresh: WriteConn | None = None
        try:
            fresh = await asyncpg.connect(self.url, timeout=CONNECT_TIMEOUT_S, server_settings=SERVER_SETTINGS)
            held = await fresh.fetchval("SELECT pg_try_advisory_lock($1, $2)", NODE_LOCK, self._node_id)
        except failures as e:
            if fresh is not None:
                fresh.terminate()
            raise StorageError(f"{self.where}: node id {self._node_id} not taken again yet: {e}") from None
        if not held:
            await fresh.close()
            raise ConfigError(f"{self.where}: node id {self._node_id} was taken by another node meanwhile")
        self._conn = fresh

    async def release(self) -> None:
        """Close the connection holding the id (the lock goes with it)."""
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close(timeout=5)
            self._conn = None

    async def _problem(self, conn: WriteConn, node_id: int) -> str:
        if node_id == AUTO_NODE:
            return f"{self.where}: every node id (0..{MAX_NODE}) is held by a live glide node"
        holder = await conn.fetchval(
            "SELECT a.client_addr::text || ' pid ' || a.pid FROM pg_locks l JOIN pg_stat_activity a "
            "ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.classid = $1 AND l.objid = $2 "
            "AND l.granted LIMIT 1",
            NODE_LOCK,
            node_id,
        )
        return (
            f"{self.where}: node_id {node_id} is held by another live glide node"
            f" ({holder or 'backend unknown'}); give each node its own node_id, or leave it unset"
        )
