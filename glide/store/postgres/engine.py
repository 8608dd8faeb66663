"""PostgreSQL plumbing: one writer task with group commit and a pool for reads (connecting and migrations:
glide.store.postgres.connection; the node id: glide.store.postgres.nodes).

Writes are async closures queued to the writer task. It takes everything pending and runs it as ONE
transaction on its own connection (BEGIN with the advisory locks of every key, the closures, COMMIT;
``synchronous_commit=on``: the commit is durable when it returns), then resolves the batch's futures. When a
closure fails, the batch runs again with each closure behind a SAVEPOINT (a failing one rolls back only
itself; one that lost a deadlock against another node's transaction is re-run in the next batch). A batch
whose only write can be one statement taking its own locks (a tick of chats) runs as that statement: one
round trip instead of three. A batch of nothing but single reading statements queued behind the writes
(what acknowledgements need) runs without a transaction; writes that may wait (the cursors those
acknowledgements moved) are deferred and saved a few times a second, with whatever else is written then.
Reads use a connection pool and see every write whose future has resolved. The dispatcher's rounds wait for
the writer's next transaction when it could not start one now (``pace``), so that what arrives while a
transaction and the commit gap run is one round.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias, TypeVar

import asyncpg

from glide.errors import ConfigError, GlideError, StorageError
from glide.store.postgres.connection import (
    CONNECT_TIMEOUT_S,
    SERVER_SETTINGS,
    Conn,
    Migration,
    WriteConn,
    connect,
    migrate,
    redact,
    storage_error,
)
from glide.store.postgres.nodes import NodeLease
from glide.store.postgres.routines import Routine

T = TypeVar("T")
log = logging.getLogger("glide.store")

# At most one transaction per this long while writes keep coming (as glide.store.sqlite.engine does): a busy
# writer that started one just now waits the rest of the gap, so each transaction, and its fixed statements,
# serves more writes; a quiet one starts at once. What a node pays per batch (its round trips, its Redis round,
# its wake-ups) is shared by the messages of a gap: with the chats planned once, 2 ms halved the batches of a
# cluster at 3,400 msg/s and its nodes paid 17 % more per cross-node message; at 4 ms, 8 % more there and 10-13 %
# less at 720 msg/s, while the machine's CPU per message fell by a third or more (bench/RESULTS.md).
COMMIT_GAP_S = 0.004
DEFERRED_S = 0.1  # how long a deferred write (acknowledgements) may wait for the next transaction
# The longest a paced dispatcher round waits for the writer (see pace): a writer stuck on an unreachable
# database must not hold up what needs no write.
PACE_LIMIT_S = 0.05
MAX_BATCH = 256  # ops per transaction: each is a subtransaction, and many of them slow other sessions down
MAX_RETRIES = 5  # re-runs of an op that lost a deadlock or a serialization race
POOL_SIZE = 8
_RETRYABLE = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)
# Advisory transaction locks on keys in ascending order (the sorted subquery fixes the order of the calls).
_SQL_LOCK_KEYS = "SELECT count(pg_advisory_xact_lock(k)) FROM (SELECT unnest('{%s}'::bigint[]) AS k ORDER BY 1) AS s"
# The same for a statement that takes its own locks (keys given as its parameter ``$n``).
LOCK_KEYS_AT_PARAM = "SELECT count(pg_advisory_xact_lock(k)) FROM (SELECT unnest(${n}::bigint[]) AS k ORDER BY 1) AS s"


def begin_locked(keys: list[int]) -> str:
    """BEGIN and the advisory locks of ``keys`` (ascending) as one simple query: one round trip. The keys are
    written into the text (ints only: nothing to escape), since a simple query takes no parameters."""
    if not keys:
        return "BEGIN"
    return "BEGIN; " + _SQL_LOCK_KEYS % ",".join(str(int(k)) for k in keys)


_STOP = object()
_DEFERRED = object()  # wakes the writer when deferred writes are due and nothing else comes
_PACED = object()  # wakes the writer when rounds are paced and nothing else comes


async def _keep_session(conn: Conn) -> None:
    """The pool's reset of a connection it gets back: nothing (asyncpg's default is a query, a round trip per
    read). Reads only read: no SET, LISTEN, cursor or session lock to undo; an open transaction is rolled back
    by asyncpg before this is called."""


@dataclass(eq=False)
class _Op:
    fn: Callable[[WriteConn], Awaitable[Any]]
    fut: asyncio.Future[Any]
    keys: Sequence[int] = ()
    attempts: int = field(default=0)
    combined: _Combined | None = None
    reads: bool = False  # one statement that only reads: alone, it needs no transaction


_Answer: TypeAlias = tuple[_Op, Any, BaseException | None]  # an op, its value, or the error that failed it
RunMany: TypeAlias = Callable[[WriteConn, list[Any]], Awaitable[list[Any]]]
# write_many's ``alone``: (conn, items, keys ascending) -> one result per item, or None when it cannot.
RunAlone: TypeAlias = Callable[[WriteConn, list[Any], list[int]], Awaitable[list[Any] | None]]


@dataclass(eq=False)
class _Combined:
    """The calls of one kind (:meth:`PgEngine.write_many`) queued while none of them started: one op over
    all their items; each caller gets the results of its own."""

    kind: str
    run: RunMany
    alone: RunAlone | None = None
    items: list[Any] = field(default_factory=list)
    keys: list[int] = field(default_factory=list)
    calls: list[tuple[int, int, asyncio.Future[list[Any]]]] = field(default_factory=list)

    def settle(self, done: asyncio.Future[list[Any]]) -> None:
        error = done.exception()
        for start, end, fut in self.calls:
            _resolve(fut, None if error else done.result()[start:end], error)

    def run_alone(self, conn: WriteConn) -> Awaitable[list[Any] | None]:
        """The op as its own statement (:meth:`PgEngine.write_many`'s ``alone``), with every key it locks."""
        assert self.alone is not None
        return self.alone(conn, self.items, sorted(set(self.keys)))

    def apart(self, op: _Op) -> list[_Op]:
        """One op per call, each answering its caller (when the op of all failed: one call's failure must
        fail that call alone)."""
        if len(self.calls) == 1:
            return [op]
        return [_Op(self._part(start, end), fut, self.keys, op.attempts) for start, end, fut in self.calls]

    def _part(self, start: int, end: int) -> Callable[[WriteConn], Awaitable[list[Any]]]:
        items = self.items[start:end]
        return lambda conn: self.run(conn, items)


class _BatchAborted(Exception):
    """The transaction is gone (connection lost, COMMIT failed): no operation of the batch survives."""


@dataclass(eq=False)
class DeferredWrite:
    """A deferred write (:meth:`PgEngine.defer`): ``fn`` runs in a transaction with the advisory locks of
    ``keys`` (as :meth:`PgEngine.write`); ``settled`` gets None once it is committed, or the error that failed
    it (its batch failed: nothing of it was stored)."""

    fn: Callable[[WriteConn], Awaitable[Any]]
    keys: Sequence[int]
    settled: Callable[[BaseException | None], None]

    def done(self, fut: asyncio.Future[Any]) -> None:
        if fut.cancelled():
            return
        error = fut.exception()
        if error is not None:
            log.warning("a deferred write failed (it is deferred again): %s", error)
        self.settled(error)


def _resolve(fut: asyncio.Future[Any], value: Any, error: BaseException | None) -> None:
    if fut.done():  # the caller was cancelled; the write happened anyway
        return
    if error is None:
        fut.set_result(value)
    else:
        fut.set_exception(error)


class PgEngine:
    """Owns the writer connection and task and the read pool. Build with :meth:`open`."""

    def __init__(self, url: str, where: str, conn: WriteConn, pool: asyncpg.Pool[asyncpg.Record]) -> None:
        self.url = url
        self.where = where
        self.batches_committed = 0
        self.ops_committed = 0  # operations in them (a combined call of write_many counts once)
        # Called whenever writes are rolled back (one operation, or a whole batch), so that a backend's caches
        # of what it wrote can forget what they saw (as glide.store.sqlite.engine does).
        self.on_rollback: list[Callable[[], None]] = []
        self._conn: WriteConn | None = conn
        self._pool = pool
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._retry: list[_Op] = []
        self._open: dict[str, _Combined] = {}  # write_many's ops not taken by the writer yet, by kind
        self._last_batch = 0.0  # when the writer started its last transaction (loop time)
        self._closed = False
        self._writer: asyncio.Task[None] | None = None
        self._node = NodeLease(url, where)
        # Writes that may wait a little (acknowledgements): the first transaction DEFERRED_S after the first of
        # them takes them all (one started for them when nothing else comes); each made when it is taken.
        self._deferred: dict[object, Callable[[], DeferredWrite]] = {}
        self._deferred_timer: asyncio.TimerHandle | None = None
        self._deferred_due = False  # DEFERRED_S passed since the first of them: the next transaction takes them
        # Dispatcher rounds waiting for the writer's next transaction (pace), and whether the writer waits for work.
        self._paced: list[Callable[[], None]] = []
        self._pace_timer: asyncio.TimerHandle | None = None
        self._writer_idle = False

    @classmethod
    async def open(
        cls,
        url: str,
        migrations: Sequence[Migration],
        *,
        routines: Sequence[Routine] = (),
        pool_size: int = POOL_SIZE,
    ) -> PgEngine:
        """Connect, create or migrate the schema (and the ``routines``), start the writer."""
        where = redact(url)
        conn = await connect(url, where)
        try:
            await migrate(conn, migrations, where, routines)
            pool = await asyncpg.create_pool(
                url,
                min_size=1,
                max_size=pool_size,
                timeout=CONNECT_TIMEOUT_S,
                server_settings=SERVER_SETTINGS,
                reset=_keep_session,
            )
        except BaseException as e:
            await conn.close()
            if isinstance(e, (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)):
                raise ConfigError(f"{where}: cannot open the store: {e}") from None
            raise
        engine = cls(url, where, conn, pool)
        engine._writer = asyncio.create_task(engine._write_loop(), name=f"glide-pg-writer:{where}")
        return engine

    # public operations

    async def write(self, fn: Callable[[WriteConn], Awaitable[T]], *, keys: Sequence[int] = ()) -> T:
        """Run ``await fn(conn)`` in the writer's next group transaction; returns once committed (durable).

        ``keys``: the users and groups (ids never equal, glide.store.groups) whose rows ``fn`` locks. A
        transaction first takes an advisory lock on every key of its operations, in ascending order, so the
        group transactions of different nodes wait for each other instead of deadlocking (each operation
        locks its rows in order, but a transaction runs many)."""
        if self._closed:
            raise StorageError("store is closed")
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Op(fn, fut, keys))
        return await fut

    async def write_many(
        self,
        kind: str,
        items: Sequence[Any],
        run: RunMany,
        *,
        keys: Sequence[int] = (),
        reads: bool = False,
        alone: RunAlone | None = None,
    ) -> list[Any]:
        """:meth:`write` for calls that combine: ``await run(conn, items)`` returns one result per item, and
        the calls of one ``kind`` queued while the writer is busy run as one op over all their items, in
        order (so a tick's worth of small calls costs the statements of one). If that op fails, each call
        runs again alone: one call's failure fails only that call.

        ``reads``: ``run`` is one statement that only reads, queued here to see every write committed before
        it and to be answered with the writes of its batch; a batch of nothing else runs it without a
        transaction (one round trip).

        ``alone``: the same op as one statement that takes the advisory locks of the keys it is given itself,
        run outside a transaction (it commits on its own: one round trip instead of BEGIN, the op and COMMIT)
        when it is the only write of its batch; it returns None when it cannot (then the batch is a
        transaction as usual). A PostgreSQL error out of it must mean that its statement failed and changed
        nothing: the batch runs again as a transaction, which answers each call. What fails once the
        statement has committed is raised as a GlideError: the op's calls get it, and nothing runs again."""
        if self._closed:
            raise StorageError("store is closed")
        loop = asyncio.get_running_loop()
        combined = self._open.get(kind)
        if combined is None:
            combined = self._open[kind] = _Combined(kind, run, alone)
            done: asyncio.Future[list[Any]] = loop.create_future()
            done.add_done_callback(combined.settle)
            c = combined
            self._queue.put_nowait(_Op(lambda conn: c.run(conn, c.items), done, c.keys, combined=c, reads=reads))
        fut: asyncio.Future[list[Any]] = loop.create_future()
        start = len(combined.items)
        combined.items.extend(items)
        combined.keys.extend(keys)
        combined.calls.append((start, len(combined.items), fut))
        return await fut

    def defer(self, key: object, take: Callable[[], DeferredWrite]) -> None:
        """Run the write ``take()`` makes in a transaction DEFERRED_S from now (once per ``key``: what is deferred
        meanwhile joins it; ``take`` runs when the writer takes it), with whatever else is written then. Not
        durable until then, and nobody awaits it: for writes whose loss in a crash only means doing something
        again (an acknowledgement: the message is delivered once more), and which are cheaper saved a few
        times a second than in every transaction."""
        if self._closed:
            return
        self._deferred[key] = take
        if self._deferred_timer is None and not self._deferred_due:
            self._deferred_timer = asyncio.get_running_loop().call_later(DEFERRED_S, self._deferred_ready)

    def pace(self, round_: Callable[[], None]) -> bool:
        """Run ``round_`` (a dispatcher round, whose writes this engine takes) right before the writer takes its
        next transaction: in the next tick if it could start one now; else when the one running and the commit
        gap are over (within PACE_LIMIT_S). True when it waits. A write made meanwhile waits for that anyway;
        what arrives meanwhile then makes one round, not one per tick."""
        loop = asyncio.get_running_loop()
        if self._closed or (self._writer_idle and self._last_batch + COMMIT_GAP_S <= loop.time()):
            loop.call_soon(round_)
            return False
        self._paced.append(round_)
        if len(self._paced) == 1:
            if self._writer_idle:
                self._queue.put_nowait(_PACED)
            self._pace_timer = loop.call_later(PACE_LIMIT_S, self._release_paced)
        return True

    def _release_paced(self) -> None:
        if self._pace_timer is not None:
            self._pace_timer.cancel()  # (a no-op when it is the timer that calls)
            self._pace_timer = None
        paced, self._paced = self._paced, []
        for round_ in paced:
            round_()

    async def _run_paced(self) -> None:
        """The paced rounds, then one step of the loop: their tasks queue their writes for this batch."""
        self._release_paced()
        await asyncio.sleep(0)

    async def read(self, fn: Callable[[Conn], Awaitable[T]]) -> T:
        """Run ``await fn(conn)`` on a pooled connection (each statement sees the latest commits)."""
        if self._closed:
            raise StorageError("store is closed")
        try:
            async with self._pool.acquire() as conn:
                return await fn(conn)
        except GlideError:
            raise
        except Exception as e:
            raise storage_error(e) from None

    async def fetch(self, sql: str, *args: object) -> list[asyncpg.Record]:
        return await self.read(lambda conn: conn.fetch(sql, *args))

    async def fetchrow(self, sql: str, *args: object) -> asyncpg.Record | None:
        return await self.read(lambda conn: conn.fetchrow(sql, *args))

    async def fetchval(self, sql: str, *args: object) -> Any:
        return await self.read(lambda conn: conn.fetchval(sql, *args))

    async def claim_node(self, node_id: int) -> int:
        """Hold ``node_id`` (AUTO_NODE: the first free id) while the store is open: glide.store.postgres.nodes."""
        return await self._node.claim(node_id)

    async def keep_node(self) -> None:
        """Take the node id again if the connection holding it died (glide.store.postgres.nodes)."""
        if not self._closed:
            await self._node.keep()

    async def close(self) -> None:
        """Flush queued writes, stop the writer, close the connections. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._release_paced()
        if self._writer is not None:
            if self._deferred:
                self._queue.put_nowait(_DEFERRED)
            self._queue.put_nowait(_STOP)
            await asyncio.shield(self._writer)
        await self._node.release()
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close(timeout=5)
            self._conn = None
        try:
            await asyncio.wait_for(self._pool.close(), 10)
        except (TimeoutError, asyncpg.InterfaceError, OSError):
            self._pool.terminate()

    # the writer task

    async def _write_loop(self) -> None:
        loop = asyncio.get_running_loop()
        stopping = False
        while not stopping or self._retry:
            batch: list[_Op] = self._retry[:MAX_BATCH]
            del self._retry[:MAX_BATCH]
            if not batch and not stopping:
                if self._paced:  # paced while this batch ran
                    item = _PACED
                else:
                    self._writer_idle = True
                    try:
                        item = await self._queue.get()
                    finally:
                        self._writer_idle = False
                if item is _STOP:
                    stopping = True
                else:
                    wait = self._last_batch + COMMIT_GAP_S - loop.time()
                    if wait > 0:
                        await asyncio.sleep(wait)  # not taken yet: calls of its kind still join it
                    self._take(item, batch)
            if self._paced:
                await self._run_paced()
            while len(batch) < MAX_BATCH and not self._queue.empty():
                item = self._queue.get_nowait()
                if item is _STOP:
                    stopping = True
                else:
                    self._take(item, batch)
            if self._deferred and (self._deferred_due or stopping):
                batch.extend(self._take_deferred())
            if not batch:
                continue
            self._last_batch = loop.time()
            try:
                self._retry.extend(await self._run_batch(batch))
            except Exception as e:  # a bug here must not strand the callers: fail their futures
                log.exception("postgres writer failed on a batch of %d writes", len(batch))
                for op in batch:
                    _resolve(op.fut, None, storage_error(e))

    def _take(self, item: Any, batch: list[_Op]) -> None:
        if item is not _DEFERRED and item is not _PACED:  # (wake-ups: the deferred writes, the paced rounds)
            batch.append(self._taken(item))

    def _deferred_ready(self) -> None:
        self._deferred_timer = None
        self._deferred_due = True
        self._queue.put_nowait(_DEFERRED)

    def _take_deferred(self) -> list[_Op]:
        if self._deferred_timer is not None:
            self._deferred_timer.cancel()
            self._deferred_timer = None
        self._deferred_due = False
        deferred, self._deferred = self._deferred, {}
        loop = asyncio.get_running_loop()
        ops = []
        for take in deferred.values():
            write = take()
            fut: asyncio.Future[Any] = loop.create_future()
            fut.add_done_callback(write.done)  # nobody awaits it
            ops.append(_Op(write.fn, fut, write.keys))
        return ops

    def _taken(self, op: _Op) -> _Op:
        """An op the writer takes: a combined one takes no more calls (its keys are final before they lock)."""
        if op.combined is not None and self._open.get(op.combined.kind) is op.combined:
            del self._open[op.combined.kind]
        return op

    async def _connection(self) -> WriteConn:
        if self._conn is None or self._conn.is_closed():
            self._conn = None
            self._conn = await connect(self.url, self.where)
        return self._conn

    async def _run_batch(self, ops: list[_Op]) -> list[_Op]:
        """Run ``ops`` in one transaction; returns those to run again in the next batch.

        First in the fewest round trips: BEGIN with the key locks (one simple query), the ops, COMMIT. When an
        op fails, that transaction is rolled back and the batch runs again op by op behind savepoints, so one
        op's failure costs only that op (ops are functions of the transaction alone: running one twice is
        running it once)."""
        try:
            conn = await self._connection()
        except GlideError as e:
            for op in ops:
                _resolve(op.fut, None, StorageError(f"storage failure, nothing of this batch was stored: {e}"))
            return []
        if all(op.reads for op in ops):
            return await self._run_reads(conn, ops)
        writes = [op for op in ops if not op.reads]
        if len(writes) == 1 and await self._run_alone(conn, ops, writes[0]):
            return []
        keys = sorted({k for op in ops for k in op.keys})
        try:
            await conn.execute(begin_locked(keys))
            try:
                values = [await op.fn(conn) for op in ops]
            except Exception as e:
                if conn.is_closed():
                    raise _BatchAborted(str(e)) from e
                await conn.execute("ROLLBACK")
                self._rolled_back()
                return await self._run_batch_apart(conn, ops, keys)
            await conn.execute("COMMIT")
            self.batches_committed += 1
            self.ops_committed += len(ops)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, _BatchAborted) as e:
            await self._fail(conn, ops, e)
            return []
        for op, value in zip(ops, values, strict=True):
            _resolve(op.fut, value, None)
        return []

    async def _run_alone(self, conn: WriteConn, ops: list[_Op], write: _Op) -> bool:
        """The batch's one write as its own statement (write_many's ``alone``), then its reads; False when the
        op cannot or its statement failed (rolled back on its own): the batch is then run as a transaction."""
        combined = write.combined
        if combined is None or combined.alone is None:
            return False
        try:
            value = await combined.run_alone(conn)
        except GlideError as e:  # it committed; what followed failed
            self.batches_committed += 1
            await self._run_reads(conn, [op for op in ops if op is not write], [(write, None, e)])
            return True
        except asyncpg.PostgresError as e:
            if conn.is_closed():
                await self._fail(conn, ops, e)
                return True
            self._rolled_back()
            return False
        except (asyncpg.InterfaceError, OSError) as e:
            await self._fail(conn, ops, e)
            return True
        if value is None:
            return False
        self.batches_committed += 1
        self.ops_committed += 1
        await self._run_reads(conn, [op for op in ops if op is not write], [(write, value, None)])
        return True

    async def _run_reads(self, conn: WriteConn, ops: list[_Op], answered: Sequence[_Answer] = ()) -> list[_Op]:
        """A batch of single reading statements: each on its own, no transaction. Every op is answered at
        the end, with the ``answered`` ones before them: callers woken together send together (one round of
        deliveries in a cluster, not one per statement)."""
        results = list(answered)
        for i, op in enumerate(ops):
            try:
                value = await op.fn(conn)
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as e:
                if conn.is_closed():
                    await self._fail(conn, ops[i:], e)
                    break
                results.append((op, None, storage_error(e)))
                continue
            results.append((op, value, None))
        for op, value, error in results:
            _resolve(op.fut, value, error)
        return []

    def _rolled_back(self) -> None:
        for hook in self.on_rollback:
            hook()

    async def _fail(self, conn: WriteConn, ops: list[_Op], e: BaseException) -> None:
        await self._abandon(conn)
        self._rolled_back()
        log.error("postgres batch of %d writes failed: %s", len(ops), e)
        failure = StorageError(f"storage failure, nothing of this batch was stored: {e}")
        for op in ops:
            _resolve(op.fut, None, failure)

    async def _run_batch_apart(self, conn: WriteConn, ops: list[_Op], keys: list[int]) -> list[_Op]:
        """The batch again, each op (each call of a combined one) behind a savepoint: a failing op is rolled
        back alone (and run again in the next batch if it lost a deadlock or a serialization race)."""
        ops = [part for op in ops for part in (op.combined.apart(op) if op.combined is not None else (op,))]
        results: list[_Answer] = []
        retry: list[_Op] = []
        try:
            await conn.execute(begin_locked(keys))
            await conn.execute("SAVEPOINT op")
            for i, op in enumerate(ops):
                try:
                    value = await op.fn(conn)
                except Exception as e:
                    if conn.is_closed():
                        raise _BatchAborted(str(e)) from e
                    await conn.execute("ROLLBACK TO SAVEPOINT op")
                    self._rolled_back()
                    if isinstance(e, _RETRYABLE) and op.attempts < MAX_RETRIES:
                        op.attempts += 1
                        retry.append(op)
                    else:
                        results.append((op, None, storage_error(e)))
                    continue
                if i + 1 < len(ops):
                    await conn.execute("RELEASE SAVEPOINT op; SAVEPOINT op")
                results.append((op, value, None))
            await conn.execute("COMMIT")
            self.batches_committed += 1
            self.ops_committed += sum(error is None for _, _, error in results)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, _BatchAborted) as e:
            await self._fail(conn, ops, e)
            return []
        for op, value, error in results:
            _resolve(op.fut, value, error)
        return retry

    async def _abandon(self, conn: WriteConn) -> None:
        """Roll back what is left of the transaction, or drop a connection in an unknown state."""
        if conn.is_closed():
            return
        try:
            await asyncio.wait_for(conn.execute("ROLLBACK"), 5)
        except Exception:
            conn.terminate()
