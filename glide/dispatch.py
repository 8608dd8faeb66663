"""Routes decoded envelopes to action handlers: the transport-agnostic entry of the business core.

Each connection's envelopes are handled in arrival order. Synchronous handlers run inline. A connection
whose read brought an asynchronous action becomes *ready*; every ready connection is taken together, one
round, in the next loop tick, or, when the store paces the rounds (``pace``: it committed less than its
commit gap ago, so a write would wait anyway), right before its next commit. A connection whose next
envelopes are a run of one batched action (``message.chat``, ``ack.request`` — the message path) gives that
run to the round, and each batched action reaches its *many* handler once, across connections, so one store
call and one task serve the whole round; what follows the run waits for the next round. A connection whose
next envelope is any other asynchronous action gets a drain task of its own that runs its envelopes one by
one. A connection is busy until its envelopes are handled; what it sends meanwhile waits in its ``pending``
list, in order.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from glide._native import BadMessage, Envelope, Outgoing
from glide.auth.ticket import FORBIDDEN, TICKETED_ACTIONS, send_ticket_problem
from glide.errors import GlideError
from glide.gateway.conn import Conn
from glide.limits import TokenBucket

log = logging.getLogger("glide.dispatch")

# What an idle connection has pending: one shared empty tuple (an empty list would cost 56 bytes per
# connection); a connection gets a list of its own when it becomes busy.
IDLE: tuple[()] = ()
# Envelopes one connection may have waiting before we stop reading its socket: a client that sends faster
# than the store commits is slowed down by TCP instead of growing our memory.
MAX_PENDING = 1024
# The store paces a round (runs it right before its next commit) only while rounds are smaller than this many
# connections: pacing shares a round's fixed costs among what arrives within the commit gap, which pays when
# rounds are small; a loaded server's rounds are large anyway, and there the paced wait only adds to the
# queueing (full case1 on SQLite: p99 37 -> 59 ms with every round paced at a 2 ms gap).
PACE_BELOW = 16

Handler = Callable[[Conn, Envelope], Any]
BatchHandler = Callable[[Conn, Sequence[Envelope]], Awaitable[None]]
# The envelopes of many connections at once, each connection's in its order.
ManyHandler = Callable[[list[tuple[Conn, list[Envelope]]]], Awaitable[None]]
SessionHook = Callable[[Conn], Any]
# Schedules a round; True when it waits for the store's next commit (glide.store.base.Store.pace).
Pace = Callable[[Callable[[], None]], bool]


@dataclass(frozen=True, slots=True)
class Action:
    handler: Any
    is_async: bool
    batched: bool
    login_required: bool
    many: ManyHandler | None = None


def error_frame(seq: int, message: str, action: str = "notify.error") -> Outgoing:
    return Outgoing(action, message, seq=seq)


def answer_each(requests: Iterable[tuple[Conn, Envelope, object]], message: str) -> None:
    """The same error to every request of a batch (each ``(conn, envelope, what it asked)``)."""
    for conn, env, _ in requests:
        conn.send(error_frame(env.seq, message))


class Dispatcher:
    """Action registry plus per-connection ordering; handlers talk to connections only through ``Conn``."""

    def __init__(self, *, send_rate: float = 0.0, send_burst: int = 0, limited: frozenset[str] = frozenset()) -> None:
        self._actions: dict[str, Action] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.on_session_end: list[SessionHook] = []
        # Abuse limit: envelopes of the actions in ``limited`` a connection may send per second (0: no limit).
        self.send_rate = send_rate
        self.send_burst = max(send_burst, 1)
        self.limited = limited
        self._ready: list[Conn] = []
        self._tick_scheduled = False
        # The running loop, held once known: on Python 3.11 asyncio.get_running_loop() (and ensure_future, which
        # calls it) is a getpid system call, a few per round otherwise.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._last_round = 0  # connections in the last round
        # When set (by the server, from its store): schedules a round so that it runs right before the store's
        # next commit, instead of in the next tick.
        self.pace: Pace | None = None
        # Envelopes received per known action ("unknown" / "undecodable" for the rest: hostile input must not
        # grow this), read by the metrics.
        self.received: dict[str, int] = {}

    def register(self, action: str, handler: Handler, *, login_required: bool = True) -> None:
        self._actions[action] = Action(handler, inspect.iscoroutinefunction(handler), False, login_required)

    def register_batch(self, action: str, handler: BatchHandler, *, many: ManyHandler | None = None) -> None:
        """A batched action: consecutive envelopes of one connection reach ``handler`` as one list; with
        ``many``, the envelopes of every connection ready in one tick reach it in one call."""
        self._actions[action] = Action(handler, True, True, True, many)

    def has(self, action: str) -> bool:
        return action in self._actions

    def actions(self) -> list[str]:
        """The registered action names."""
        return list(self._actions)

    def submit(self, conn: Conn, messages: Sequence[Envelope | BadMessage]) -> None:
        """Called by a driver with every message of one socket read."""
        if conn.busy:
            pending = conn.pending
            if isinstance(pending, list):
                pending.extend(messages)
            else:
                pending = conn.pending = list(messages)
            if len(pending) > MAX_PENDING and not conn.reading_paused:
                conn.pause_reading()
            return
        actions = self._actions
        for i, msg in enumerate(messages):
            known = actions.get(msg.action) if isinstance(msg, Envelope) else None
            if known is not None and known.is_async:  # admitted by the round, in order
                # (the driver hands over a list of its own: kept as it is when all of it waits)
                conn.pending = messages if i == 0 and type(messages) is list else list(messages[i:])
                conn.busy = True  # _start_drain's work, without a call per message
                self._ready.append(conn)
                if not self._tick_scheduled:
                    self._schedule_tick()
                return
            action = self._admit(conn, msg)
            if action is not None:
                self._call(conn, action, msg)  # type: ignore[arg-type]

    def session_ended(self, conn: Conn) -> None:
        for hook in self.on_session_end:
            result = hook(conn)
            if inspect.isawaitable(result):
                self._spawn(result)

    async def join(self) -> None:
        """Wait for every running drain task (used on shutdown)."""
        while self._tasks or self._tick_scheduled:
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
            else:
                await asyncio.sleep(0)  # the tick that takes the ready connections runs first

    # internals

    def _admit(self, conn: Conn, msg: Envelope | BadMessage) -> Action | None:
        """The action for ``msg``, or None after answering it with an error frame."""
        received = self.received
        if isinstance(msg, BadMessage):
            received["undecodable"] = received.get("undecodable", 0) + 1
            conn.send(error_frame(0, f"message decode error: {msg.error}"))
            return None
        action = self._actions.get(msg.action)
        if action is None:
            received["unknown"] = received.get("unknown", 0) + 1
            conn.send(Outgoing("notify.unknown.action", msg.action, seq=msg.seq))
            return None
        received[msg.action] = received.get(msg.action, 0) + 1
        if action.login_required and not conn.authenticated:
            conn.send(
                error_frame(msg.seq, "not logged in: send api.auth or authenticate first", "notify.unauthenticated")
            )
            return None
        if conn.ticket_secret is not None and msg.action in TICKETED_ACTIONS:
            problem = send_ticket_problem(conn.ticket_secret, conn.uid, msg.to, msg.ticket)
            if problem is not None:
                conn.send(error_frame(msg.seq, problem, FORBIDDEN))
                return None
        if self.send_rate and msg.action in self.limited and not self._take_sends(conn, 1):
            self._refuse_rate(conn, msg)
            return None
        return action

    def _take_sends(self, conn: Conn, n: int) -> int:
        """Take up to ``n`` tokens of the connection's send limit; how many it had."""
        bucket = conn.send_bucket
        now = time.monotonic()
        if bucket is None:
            bucket = conn.send_bucket = TokenBucket(self.send_rate, self.send_burst, now)
        return bucket.take_up_to(now, n)

    def _refuse_rate(self, conn: Conn, env: Envelope) -> None:
        conn.send(
            error_frame(
                env.seq,
                f"rate limit: at most {self.send_rate:g} messages per second per connection; this one was not sent",
            )
        )

    def _call(self, conn: Conn, action: Action, env: Envelope) -> None:
        try:
            action.handler(conn, env)
        except GlideError as e:
            conn.send(error_frame(env.seq, e.message))
        except Exception:
            log.exception("handler for %s failed", env.action)
            conn.send(error_frame(env.seq, "internal error"))

    def _start_drain(self, conn: Conn) -> None:
        conn.busy = True
        self._ready.append(conn)
        if not self._tick_scheduled:
            self._schedule_tick()

    def _schedule_tick(self) -> None:
        self._tick_scheduled = True
        if self.pace is not None and self._last_round < PACE_BELOW:
            self.pace(self._tick)
        else:
            self._running_loop().call_soon(self._tick)

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        loop = self._loop
        if loop is None or loop.is_closed():  # first use, or a dispatcher used again on a new loop
            loop = self._loop = asyncio.get_running_loop()
        return loop

    def _tick(self) -> None:
        """Every connection that became ready since the last tick: one round for all of them."""
        self._tick_scheduled = False
        ready, self._ready = self._ready, []
        self._last_round = len(ready)
        together: dict[str, list[tuple[Conn, list[Envelope]]]] = {}
        for conn in ready:
            run = self._leading_run(conn)
            if run is None:
                self._spawn(self._drain(conn))
            elif run[1]:
                together.setdefault(run[0], []).append((conn, run[1]))
            else:  # handled at once, or refused at admission: this round has nothing left for it
                self._finish(conn)
        for name, items in together.items():
            action = self._actions[name]
            assert action.many is not None
            self._spawn(self._run_many(action.many, items))

    def _leading_run(self, conn: Conn) -> tuple[str, list[Envelope]] | None:
        """This round's share of the connection's pending envelopes, in order: the synchronous ones at the
        front are handled right away; then, if the next envelope's action has a many handler, the run of
        envelopes of that action is taken and admitted (the rest waits for the next round, so the
        connection's order holds) and returned with the action's name; otherwise None: the connection
        drains on its own task."""
        pending = conn.pending
        if conn.closed:
            return None
        if not isinstance(pending, list):  # nothing pending (a busy connection's list is its own)
            conn.pending = []
            return "", []
        actions = self._actions
        i, n = 0, len(pending)
        while i < n:
            msg = pending[i]
            known = actions.get(msg.action) if isinstance(msg, Envelope) else None
            if known is not None and known.is_async:
                break
            admitted = self._admit(conn, msg)
            if admitted is not None:
                self._call(conn, admitted, msg)
            i += 1
        if i == n:
            conn.pending = []
            return "", []
        first: Envelope = pending[i]
        action = actions[first.action]
        if action.many is None:
            conn.pending = pending[i:]
            return None
        name = first.action
        j = i + 1
        while j < n:
            msg = pending[j]
            if not isinstance(msg, Envelope) or msg.action != name:
                break
            j += 1
        conn.pending = pending[j:]
        return name, self._admit_run(conn, action, name, pending[i:j])

    def _admit_run(self, conn: Conn, action: Action, name: str, run: list[Envelope]) -> list[Envelope]:
        """:meth:`_admit` for a run of one action's envelopes: what the connection allows is checked once and
        the rate limit's tokens taken for the whole run at once, with the same answers, in the same order, as
        admitting each in turn (the tokens run out at one envelope: it and all after it are refused)."""
        if (action.login_required and not conn.authenticated) or conn.ticket_secret is not None:
            return [env for env in run if self._admit(conn, env) is not None]
        received = self.received
        received[name] = received.get(name, 0) + len(run)
        if self.send_rate and name in self.limited:
            granted = self._take_sends(conn, len(run))
            if granted < len(run):
                for env in run[granted:]:
                    self._refuse_rate(conn, env)
                del run[granted:]
        return run

    async def _run_many(self, handler: ManyHandler, items: list[tuple[Conn, list[Envelope]]]) -> None:
        try:
            await handler(items)
        except GlideError as e:
            for conn, envs in items:
                for env in envs:
                    conn.send(error_frame(env.seq, e.message))
        except Exception:
            log.exception("handler for %s failed", items[0][1][0].action)
            for conn, envs in items:
                for env in envs:
                    conn.send(error_frame(env.seq, "internal error"))
        finally:
            for conn, _ in items:
                if conn.pending or conn.reading_paused:
                    self._finish(conn)
                else:  # the usual end of a round, without a call per connection
                    conn.busy = False
                    conn.pending = IDLE

    def _finish(self, conn: Conn) -> None:
        """The round of ``conn`` is done: what it sent meanwhile starts the next round, else it is idle."""
        if conn.pending and not conn.closed:
            if conn.reading_paused and len(conn.pending) <= MAX_PENDING:
                conn.resume_reading()
            conn.busy = False
            self._start_drain(conn)
            return
        conn.busy = False
        conn.pending = IDLE
        if conn.reading_paused:
            conn.resume_reading()

    def _spawn(self, aw: Awaitable[Any]) -> None:
        loop = self._running_loop()
        task = loop.create_task(aw) if inspect.iscoroutine(aw) else asyncio.ensure_future(aw, loop=loop)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _drain(self, conn: Conn) -> None:
        try:
            while conn.pending and not conn.closed:
                batch: list[Envelope | BadMessage] = conn.pending
                conn.pending = []
                await self._run(conn, batch)
                if conn.reading_paused and len(conn.pending) <= MAX_PENDING:
                    conn.resume_reading()
        finally:
            conn.busy = False
            conn.pending = IDLE
            if conn.reading_paused:
                conn.resume_reading()

    async def _run(self, conn: Conn, batch: list[Envelope | BadMessage]) -> None:
        i, n = 0, len(batch)
        while i < n:
            msg = batch[i]
            action = self._admit(conn, msg)
            if action is None:
                i += 1
                continue
            env: Envelope = msg  # type: ignore[assignment]
            if action.batched:
                group: list[Envelope] = [env]
                j = i + 1
                while j < n and isinstance(batch[j], Envelope) and batch[j].action == env.action:  # type: ignore[union-attr]
                    if self._admit(conn, batch[j]) is not None:  # each one counts against the rate limit
                        group.append(batch[j])  # type: ignore[arg-type]
                    j += 1
                await self._await(conn, group, action.handler(conn, group))
                i = j
                continue
            if action.is_async:
                await self._await(conn, (env,), action.handler(conn, env))
            else:
                self._call(conn, action, env)
            i += 1

    async def _await(self, conn: Conn, envs: Sequence[Envelope], aw: Awaitable[Any]) -> None:
        """Run a handler; if it fails, every envelope it was given is answered with the error."""
        try:
            await aw
        except GlideError as e:
            for env in envs:
                conn.send(error_frame(env.seq, e.message))
        except Exception:
            log.exception("handler for %s failed", envs[0].action)
            for env in envs:
                conn.send(error_frame(env.seq, "internal error"))
