"""Lean Redis connections for a node's two hot paths: the flusher's round (:class:`Commands`) and the
subscription it listens on (glide.cluster.subscription). Everything else a node asks Redis goes through
redis-py.

redis-py's asyncio client costs ~150 µs of CPU per round trip here (a pipeline of one ROUND script) against
~60 µs for a protocol that writes the packed commands to the transport and feeds what it reads to hiredis's
parser, and its ``PubSub`` ~140 µs per message arriving alone against ~55 (``bench/cluster_redis.py``).
Nothing about the wire is written here: commands are packed by ``hiredis.pack_command`` and replies parsed by
``hiredis.Reader`` (the packer and parser redis-py itself uses with hiredis), and a URL means what it means to
redis-py (``redis.asyncio.connection.parse_url``: ``redis://``, ``rediss://``, ``unix://``, user, password,
database). Errors are redis-py's: ConnectionError, AuthenticationError, ResponseError.
"""

from __future__ import annotations

import abc
import asyncio
import ssl
from collections import deque
from collections.abc import Sequence
from typing import Any, cast

import hiredis
from redis.asyncio.connection import RedisSSLContext, UnixDomainSocketConnection, parse_url
from redis.exceptions import AuthenticationError, ConnectionError, RedisError, ResponseError

Command = tuple[str | bytes | int, ...]


def _tls(options: dict[str, Any]) -> ssl.SSLContext:
    return RedisSSLContext(
        keyfile=options.get("ssl_keyfile"),
        certfile=options.get("ssl_certfile"),
        cert_reqs=options.get("ssl_cert_reqs", "required"),
        ca_certs=options.get("ssl_ca_certs"),
        ca_path=options.get("ssl_ca_path"),
        check_hostname=bool(options.get("ssl_check_hostname", True)),
    ).get()


def refusal(reply: hiredis.ReplyError) -> RedisError:
    text = str(reply)
    if text.startswith(("WRONGPASS", "NOAUTH")) or "invalid password" in text:
        return AuthenticationError(text)
    return ResponseError(text)


async def connect(url: str, protocol: RespProtocol, *, select_db: bool) -> int:
    """Connect ``protocol`` to the Redis of ``url`` and send its AUTH (and SELECT with ``select_db``) as the
    first commands; returns how many were sent (their replies come first)."""
    options: dict[str, Any] = dict(parse_url(url))
    loop = asyncio.get_running_loop()
    if options.get("connection_class") is UnixDomainSocketConnection:
        await loop.create_unix_connection(lambda: protocol, options["path"])
    else:
        tls = _tls(options) if url.startswith("rediss://") else None
        host = options.get("host", "localhost")
        await loop.create_connection(lambda: protocol, host, options.get("port", 6379), ssl=tls)
    setup: list[Command] = []
    password, username = options.get("password"), options.get("username")
    if password is not None:
        setup.append(("AUTH", username, password) if username else ("AUTH", password))
    if select_db and options.get("db"):
        setup.append(("SELECT", int(options["db"])))
    protocol.send(setup)
    return len(setup)


class RespProtocol(asyncio.Protocol, abc.ABC):
    """A connection's transport, parser and end; subclasses say what a reply is for (:meth:`on_reply`)."""

    def __init__(self) -> None:
        self.reader = hiredis.Reader()
        self.transport: asyncio.Transport | None = None
        loop = asyncio.get_running_loop()
        self.time = loop.time
        self.received = 0.0  # loop time of the last read
        self.lost: asyncio.Future[None] = loop.create_future()

    def send(self, commands: Sequence[Command]) -> None:
        if self.transport is None or self.transport.is_closing():
            raise ConnectionError("the connection to Redis is closed")
        if commands:
            self.transport.write(b"".join(hiredis.pack_command(c) for c in commands))  # type: ignore[arg-type]  # its stub types a 1-tuple

    def close(self, error: RedisError | None = None) -> None:
        if self.transport is not None:
            self.transport.abort()
        self.fail(error or ConnectionError("the connection to Redis was closed"))

    def fail(self, error: RedisError) -> None:
        if not self.lost.done():
            self.lost.set_exception(error)
            self.lost.exception()  # retrieved: nobody may be waiting on it

    @abc.abstractmethod
    def on_reply(self, reply: Any) -> None:
        """One parsed reply, in the order Redis sent them."""

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass it
        self.received = self.time()

    def data_received(self, data: bytes) -> None:
        self.received = self.time()
        self.reader.feed(data)
        try:
            while (reply := self.reader.gets()) is not False:
                self.on_reply(reply)
        except hiredis.ProtocolError as e:
            self.close(ConnectionError(f"Redis sent what is not RESP: {e}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.fail(ConnectionError(f"the connection to Redis was lost: {exc or 'closed by Redis'}"))


class _Call:
    __slots__ = ("fut", "left", "replies")

    def __init__(self, fut: asyncio.Future[list[Any]], count: int) -> None:
        self.fut = fut
        self.left = count
        self.replies: list[Any] = []


class Commands(RespProtocol):
    """One connection for commands, pipelined: :meth:`call` writes its commands at once and returns their
    replies in order (a command Redis refused: its ResponseError in place). Open with :meth:`open`."""

    def __init__(self) -> None:
        super().__init__()
        self._calls: deque[_Call] = deque()

    @classmethod
    async def open(cls, url: str, *, timeout: float) -> Commands:
        conn = cls()
        async with asyncio.timeout(timeout):
            try:
                if await connect(url, conn, select_db=True):  # AUTH, SELECT: the one call queued so far
                    for reply in await conn._calls[-1].fut:
                        if isinstance(reply, RedisError):
                            raise reply
            except BaseException:
                conn.close()
                raise
        return conn

    @property
    def closed(self) -> bool:
        return self.lost.done()

    def send(self, commands: Sequence[Command]) -> None:
        super().send(commands)
        if commands:
            self._calls.append(_Call(asyncio.get_running_loop().create_future(), len(commands)))

    async def call(self, commands: Sequence[Command]) -> list[Any]:
        """Every reply of ``commands``; ConnectionError if the connection goes before they all came."""
        if not commands:
            return []
        self.send(commands)
        return await self._calls[-1].fut

    def on_reply(self, reply: Any) -> None:
        if not self._calls:
            self.close(ConnectionError("Redis sent a reply nobody asked for"))
            return
        call = self._calls[0]
        call.replies.append(refusal(reply) if isinstance(reply, hiredis.ReplyError) else reply)
        call.left -= 1
        if call.left == 0:
            self._calls.popleft()
            if not call.fut.done():  # its caller may have given up (timeout, cancellation)
                call.fut.set_result(call.replies)

    def fail(self, error: RedisError) -> None:
        super().fail(error)
        while self._calls:
            fut = self._calls.popleft().fut
            if not fut.done():
                fut.set_exception(error)
