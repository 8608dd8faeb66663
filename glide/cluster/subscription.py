"""The connection a node listens on: subscribed to its own channel and the all-nodes one, every published
message handed to a callback straight from the read that carried it (a lean connection of
glide.cluster.resp: redis-py's ``PubSub`` costs ~140 µs of CPU per message arriving alone, this ~55). A
connection quiet for ``health_s`` (HEALTH_S) is pinged; one that does not answer in time is dropped, as
redis-py's health check would.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import hiredis
from redis.exceptions import ConnectionError, RedisError

from glide.cluster.resp import RespProtocol, connect, refusal

HEALTH_S = 10.0  # ping a connection that received nothing for this long


class Subscription(RespProtocol):
    """One subscribed connection. Open with :meth:`open`; :meth:`wait_lost` returns (raises) when it is gone."""

    def __init__(self, on_message: Callable[[bytes], None], channels: int, health_s: float) -> None:
        super().__init__()
        self._on_message = on_message
        self._health_s = health_s
        self._ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._expected = channels  # replies before the subscription stands: one per channel, AUTH's if sent

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
        sub = cls(on_message, len(channels), health_s)
        async with asyncio.timeout(timeout):
            try:
                sub._expected += await connect(url, sub, select_db=False)  # channels are not in a database
                sub.send([("SUBSCRIBE", *channels)])
                await sub._ready
            except BaseException:
                sub.close()
                raise
        return sub

    async def wait_lost(self) -> None:
        """Until the connection is lost (raises ConnectionError); pings it when it is quiet."""
        quiet = self._health_s
        pinged: float | None = None  # when the ping now out was sent
        while True:
            try:
                await asyncio.wait_for(asyncio.shield(self.lost), quiet)
            except TimeoutError:
                if pinged is not None and self.received < pinged:
                    error = ConnectionError("Redis did not answer a ping on the subscription")
                    self.close(error)
                    raise error from None
                pinged = None
                if self.time() - self.received >= quiet:
                    self.send([("PING",)])
                    pinged = self.time()

    def on_reply(self, reply: Any) -> None:
        if type(reply) is list and len(reply) == 3 and reply[0] == b"message":
            self._on_message(reply[2])
        elif isinstance(reply, hiredis.ReplyError):  # a refused password: nothing else is refused here
            self.close(refusal(reply))
        elif not self._ready.done():  # AUTH's OK, one confirmation per channel (later: a pong)
            self._expected -= 1
            if self._expected == 0:
                self._ready.set_result(None)

    def fail(self, error: RedisError) -> None:
        super().fail(error)
        if not self._ready.done():
            self._ready.set_exception(error)
            self._ready.exception()
