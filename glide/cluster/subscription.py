"""The connection a node listens on: subscribed to its own channel and the all-nodes one, every published
message handed to a callback straight from the read that carried it.

redis-py's ``PubSub`` reads each message through asyncio streams, a retry wrapper and a timeout context:
measured here at ~140 µs of CPU per message arriving alone (~90 without its health check), against ~37 µs
for a protocol that feeds the bytes it receives to hiredis's parser, which is what this is. Nothing about the
wire is written here: commands are packed by ``hiredis.pack_command`` and replies parsed by
``hiredis.Reader`` (the packer and parser redis-py itself uses with hiredis), and the URL means what it
means to redis-py (``redis.asyncio.connection.parse_url``: ``redis://``, ``rediss://``, ``unix://``, user and
password). A connection quiet for ``health_s`` (HEALTH_S) is pinged; one that does not answer in time is dropped, as
redis-py's health check would.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable, Sequence
from typing import Any, cast

import hiredis
from redis.asyncio.connection import RedisSSLContext, UnixDomainSocketConnection, parse_url
from redis.exceptions import AuthenticationError, ConnectionError, RedisError

HEALTH_S = 10.0  # ping a connection that received nothing for this long


def _tls(options: dict[str, Any]) -> ssl.SSLContext:
    return RedisSSLContext(
        keyfile=options.get("ssl_keyfile"),
        certfile=options.get("ssl_certfile"),
        cert_reqs=options.get("ssl_cert_reqs", "required"),
        ca_certs=options.get("ssl_ca_certs"),
        ca_path=options.get("ssl_ca_path"),
        check_hostname=bool(options.get("ssl_check_hostname", True)),
    ).get()


class Subscription(asyncio.Protocol):
    """One subscribed connection. Open with :meth:`open`; :meth:`wait_lost` returns (raises) when it is gone."""

    def __init__(self, on_message: Callable[[bytes], None], expected: int, health_s: float) -> None:
        self._on_message = on_message
        self._health_s = health_s
        self._reader = hiredis.Reader()
        self._transport: asyncio.Transport | None = None
        loop = asyncio.get_running_loop()
        self._time = loop.time
        self._ready: asyncio.Future[None] = loop.create_future()
        self._lost: asyncio.Future[None] = loop.create_future()
        self._expected = expected  # replies before the subscription stands (AUTH, one per channel)
        self._received = 0.0  # loop time of the last read

    @classmethod
    async def open(
        cls,
        url: str,
        channels: Sequence[str],
        on_message: Callable[[bytes], None],
        *,
        timeout: float,
        health_s: float = HEALTH_S,
    ) -> Subscription:
        """Connect, authenticate if the URL says so, subscribe to ``channels``; raises RedisError or OSError."""
        options: dict[str, Any] = dict(parse_url(url))
        password, username = options.get("password"), options.get("username")
        commands: list[tuple[str | bytes, ...]] = []
        if password is not None:
            commands.append(("AUTH", username, password) if username else ("AUTH", password))
        commands.append(("SUBSCRIBE", *channels))
        loop = asyncio.get_running_loop()
        sub = cls(on_message, len(commands) - 1 + len(channels), health_s)
        async with asyncio.timeout(timeout):
            if options.get("connection_class") is UnixDomainSocketConnection:
                await loop.create_unix_connection(lambda: sub, options["path"])
            else:
                tls = _tls(options) if url.startswith("rediss://") else None
                host = options.get("host", "localhost")
                await loop.create_connection(lambda: sub, host, options.get("port", 6379), ssl=tls)
            try:
                sub._send(*commands)
                await sub._ready
            except BaseException:
                sub.close()
                raise
        return sub

    async def wait_lost(self) -> None:
        """Until the connection is lost (raises ConnectionError); pings it when it is quiet."""
        quiet = self._health_s
        while True:
            try:
                await asyncio.wait_for(asyncio.shield(self._lost), quiet)
            except TimeoutError:
                if self._time() - self._received < quiet:
                    continue
                pinged = self._time()
                self._send(("PING",))
                try:
                    await asyncio.wait_for(asyncio.shield(self._lost), quiet)
                except TimeoutError:
                    if self._received < pinged:
                        self.close()
                        raise ConnectionError("Redis did not answer a ping on the subscription") from None

    def close(self) -> None:
        if self._transport is not None:
            self._transport.abort()
        self._fail(ConnectionError("subscription closed"))

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass it
        self._received = self._time()

    def data_received(self, data: bytes) -> None:
        self._received = self._time()
        self._reader.feed(data)
        try:
            while (reply := self._reader.gets()) is not False:
                if type(reply) is list and len(reply) == 3 and reply[0] == b"message":
                    self._on_message(reply[2])
                else:
                    self._control(reply)
        except hiredis.ProtocolError as e:
            self._fail(ConnectionError(f"Redis sent what is not RESP: {e}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._fail(ConnectionError(f"subscription lost: {exc or 'closed by Redis'}"))

    # internals

    def _send(self, *commands: tuple[str | bytes, ...]) -> None:
        if self._transport is None or self._transport.is_closing():
            raise ConnectionError("subscription closed")
        self._transport.write(b"".join(hiredis.pack_command(c) for c in commands))  # type: ignore[arg-type]  # its stub types a 1-tuple

    def _control(self, reply: Any) -> None:
        """A reply that is not a message: the answers that set the subscription up, a pong, or an error."""
        if isinstance(reply, hiredis.ReplyError):
            text = str(reply)
            error = AuthenticationError if "WRONGPASS" in text or "NOAUTH" in text else RedisError
            self._fail(error(f"Redis refused the subscription: {text}"))
            self.close()
        elif not self._ready.done():
            self._expected -= 1
            if self._expected <= 0:
                self._ready.set_result(None)

    def _fail(self, error: RedisError) -> None:
        for fut in (self._ready, self._lost):
            if not fut.done():
                fut.set_exception(error)
                fut.exception()  # retrieved: nobody may be waiting on this one
