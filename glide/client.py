"""An asyncio client of glide's protocol (JSON envelopes over a WebSocket, with ``websockets``: the ``client``
extra): log in with a token, send with acknowledgements and automatic resend, receive typed events, and
reconnect after a lost connection (the server replays what was missed; nothing is handed over twice).

    async with GlideClient("ws://127.0.0.1:8080/ws", token) as client:
        mid = await client.send_chat(to=2, content="hello")
        async for event in client.events():
            if isinstance(event, Chat):
                print(event.sender, event.content)
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import secrets
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from ssl import SSLContext
from types import TracebackType
from typing import Any

import websockets
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from glide.group.wire import WORLD_CHANNEL

KICKED_OUT = 4001  # a newer login of the same device: reconnecting would kick that one out in turn
SEEN_LIMIT = 10_000  # mids remembered to drop a message replayed after a reconnect


class ClientError(Exception):
    """The server refused a request (its message), or the client gave up."""


@dataclass(frozen=True)
class Chat:
    """A 1:1 message (acknowledged to the server when handed out)."""

    mid: int
    sender: int
    to: int
    type: int
    content: str
    send_at: int
    cli_mid: str


@dataclass(frozen=True)
class GroupMessage:
    gid: int
    mid: int
    seq: int
    sender: int
    type: int
    content: str
    send_at: int


@dataclass(frozen=True)
class Delivered:
    """A 1:1 message this user sent reached the receiver (``ack.notify`` with ``from``), or nobody of the
    receiver is online and it waits in the inbox (``stored_only``)."""

    mid: int
    stored_only: bool


@dataclass(frozen=True)
class Recalled:
    mid: int
    by: int


@dataclass(frozen=True)
class Custom:
    """A ``message.cli`` frame (typing, signalling) from ``sender``: its data as sent."""

    sender: int
    data: Any


@dataclass(frozen=True)
class Notice:
    """Any other push: group notices, contact events, operator broadcasts, the world channel's messages."""

    action: str
    data: Any


@dataclass(frozen=True)
class Closed:
    """The session ended and will not come back by itself (kicked out by a newer login, or given up)."""

    code: int | None
    reason: str


Event = Chat | GroupMessage | Delivered | Recalled | Custom | Notice | Closed


class GlideClient:
    """One session (the token's uid and device). Not thread-safe; one event loop."""

    def __init__(
        self,
        ws_url: str,
        token: str,
        *,
        ack_timeout_s: float = 5.0,
        resends: int = 2,
        reconnect: bool = True,
        max_backoff_s: float = 5.0,
        ssl: SSLContext | None = None,
    ) -> None:
        """``ssl``: for a ``wss://`` server whose certificate the system does not trust (self-signed)."""
        self.ws_url = ws_url
        self.ssl = ssl
        self.token = token
        self.ack_timeout_s = ack_timeout_s
        self.resends = resends
        self.reconnect = reconnect
        self.max_backoff_s = max_backoff_s
        self.uid = 0
        self.reconnects = 0
        self._ws: Any = None
        self._seq = itertools.count(1)
        self._replies: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._events: asyncio.Queue[Event] = asyncio.Queue()
        self._seen: OrderedDict[int, None] = OrderedDict()
        self._online = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        self._sending: set[asyncio.Task[None]] = set()  # acknowledgements in flight (kept from the GC)
        self._closing = False

    async def __aenter__(self) -> GlideClient:
        await self.connect()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # connection

    async def connect(self) -> None:
        """Connect and log in; raises ClientError if the server refuses the token."""
        await self._open()
        self._reader = asyncio.get_running_loop().create_task(self._read_loop())

    async def _open(self) -> None:
        tls: dict[str, Any] = {"ssl": self.ssl} if self.ssl is not None else {}  # None would mean "no TLS"
        ws = await websockets.connect(self.ws_url, max_size=None, open_timeout=self.ack_timeout_s, **tls)
        try:
            hello = json.loads(await asyncio.wait_for(ws.recv(), self.ack_timeout_s))
            if hello.get("action") != "hello":
                raise ClientError(f"expected hello, got {hello.get('action')!r}")
            seq = next(self._seq)
            await ws.send(json.dumps({"action": "api.auth", "seq": seq, "data": {"Token": self.token}}))
            while True:
                reply = json.loads(await asyncio.wait_for(ws.recv(), self.ack_timeout_s))
                if reply.get("seq") == seq and reply.get("action") in ("api.success", "api.failed"):
                    break
                self._dispatch(reply)  # a push before the answer (a heartbeat, usually)
            if reply["action"] != "api.success":
                raise ClientError(f"login refused: {reply.get('data')}")
        except BaseException:
            await ws.close()
            raise
        self.uid = int(reply["data"]["Uid"])
        self._ws = ws
        self._online.set()

    async def close(self) -> None:
        self._closing = True
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._ws is not None:
            await self._ws.close()
        self._fail_pending(ClientError("client closed"))

    async def _read_loop(self) -> None:
        backoff = 0.1
        while not self._closing:
            try:
                async for raw in self._ws:
                    self._dispatch(json.loads(raw))
                code, reason = self._ws.close_code, self._ws.close_reason or ""
            except ConnectionClosed as e:
                code, reason = (e.rcvd.code, e.rcvd.reason) if e.rcvd else (None, "connection lost")
            self._online.clear()
            self._fail_pending(ClientError(f"connection closed ({code}): requests in flight are resent"))
            if self._closing:
                return
            if code == KICKED_OUT or not self.reconnect:
                self._events.put_nowait(Closed(code, reason))
                return
            while not self._closing:
                await asyncio.sleep(backoff)
                try:
                    await self._open()
                except (OSError, ConnectionClosed, TimeoutError, InvalidHandshake):
                    backoff = min(backoff * 2, self.max_backoff_s)
                    continue
                except ClientError as e:  # the token no longer works: nothing to retry
                    self._events.put_nowait(Closed(None, str(e)))
                    return
                self.reconnects += 1
                backoff = 0.1
                break

    def _fail_pending(self, error: Exception) -> None:
        replies, self._replies = self._replies, {}
        for fut in replies.values():
            if not fut.done():
                fut.set_exception(error)

    # requests

    async def _request(self, action: str, data: Any, to: str | None = None) -> dict[str, Any]:
        """Send and wait for the answer with the same seq; resends (a fresh seq) after a timeout or a lost
        connection, ``resends`` times."""
        error: Exception = ClientError(f"{action}: no answer")
        for _ in range(self.resends + 1):
            try:
                await asyncio.wait_for(self._online.wait(), self.ack_timeout_s)
            except TimeoutError:
                error = ClientError(f"{action}: not connected")
                continue
            seq = next(self._seq)
            fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
            self._replies[seq] = fut
            frame: dict[str, Any] = {"action": action, "seq": seq, "data": data}
            if to is not None:
                frame["to"] = to
            try:
                await self._ws.send(json.dumps(frame))
                return await asyncio.wait_for(fut, self.ack_timeout_s)
            except (TimeoutError, ConnectionClosed, ClientError) as e:
                error = e if isinstance(e, ClientError) else ClientError(f"{action}: {e!r}")
            finally:
                self._replies.pop(seq, None)
        raise error

    async def send_chat(self, to: int, content: str, *, msg_type: int = 1, cli_mid: str = "") -> int:
        """Send a 1:1 message; returns its mid once the server stored it. Resent with the same ``cli_mid``
        after a timeout or a reconnect, so it is stored and delivered once."""
        cli_mid = cli_mid or secrets.token_hex(12)
        data = {"cliMid": cli_mid, "content": content, "type": msg_type, "to": str(to)}
        reply = await self._request("message.chat", data, to=str(to))
        if reply["action"] != "ack.message":
            raise ClientError(f"message.chat refused: {reply.get('data')}")
        return int(reply["data"]["mid"])

    async def send_group(self, gid: int, content: str, *, msg_type: int = 1, cli_mid: str = "") -> tuple[int, int]:
        """Send to a group; returns ``(mid, seq)`` once stored (resent with the same ``cli_mid`` as above)."""
        cli_mid = cli_mid or secrets.token_hex(12)
        data = {"cliMid": cli_mid, "content": content, "type": msg_type}
        reply = await self._request("message.group", data, str(gid))
        if reply["action"] != "ack.message":
            raise ClientError(f"message.group refused: {reply.get('data')}")
        return int(reply["data"]["mid"]), int(reply["data"]["seq"])

    async def send_custom(self, to: int, data: Any) -> None:
        """A ``message.cli`` frame (never stored): best effort, no answer."""
        await asyncio.wait_for(self._online.wait(), self.ack_timeout_s)
        await self._ws.send(json.dumps({"action": "message.cli", "to": str(to), "data": data}))

    async def call(self, route: str, data: Any = None) -> Any:
        """An API route over the socket (``user/info`` → ``api.user.info``); returns its ``Data``."""
        reply = await self._request("api." + route.strip("/").replace("/", "."), data if data is not None else {})
        return _answer(reply, route)

    async def request(self, action: str, data: Any = None) -> Any:
        """Any action answered by ``api.success`` (an embedding application's own, say); returns its data,
        raises ClientError with the reason of an ``api.failed``."""
        return _answer(await self._request(action, data), action)

    # receiving

    async def events(self) -> AsyncIterator[Event]:
        """Every event in arrival order; ends after a ``Closed``."""
        while True:
            event = await self._events.get()
            yield event
            if isinstance(event, Closed):
                return

    async def next_event(self, timeout: float | None = None) -> Event:
        return await asyncio.wait_for(self._events.get(), timeout)

    def _dispatch(self, frame: dict[str, Any]) -> None:
        action, data, seq = frame.get("action"), frame.get("data"), frame.get("seq")
        if seq and seq in self._replies:
            fut = self._replies.pop(seq)
            if not fut.done():
                fut.set_result(frame)
            return
        if action == "heartbeat":
            return
        try:
            event = self._event(action, data, frame)
        except (KeyError, TypeError, ValueError):  # not what this client knows the frame as: handed out as it is
            event = Notice(str(action), data)
        if event is not None:
            self._events.put_nowait(event)

    def _event(self, action: Any, data: Any, frame: dict[str, Any]) -> Event | None:
        if action == "message.chat" and isinstance(data, dict):
            mid = int(data["mid"])
            # acknowledged at once (the server keeps it for the other devices of this user meanwhile)
            self._spawn_send({"action": "ack.request", "data": {"mid": mid, "from": data.get("from")}})
            if self._remember(mid):
                return None
            return Chat(
                mid,
                int(data.get("from") or 0),
                int(data.get("to") or 0),
                int(data.get("type") or 0),
                str(data.get("content", "")),
                int(data.get("sendAt") or 0),
                str(data.get("cliMid", "")),
            )
        if action == "message.group" and isinstance(data, dict) and frame.get("to") != WORLD_CHANNEL:
            return GroupMessage(
                int(data.get("to") or frame.get("to") or 0),
                int(data["mid"]),
                int(data.get("seq") or 0),
                int(data.get("from") or 0),
                int(data.get("type") or 0),
                str(data.get("content", "")),
                int(data.get("sendAt") or 0),
            )
        if action == "ack.notify" and isinstance(data, dict):
            return Delivered(int(data["mid"]), "from" not in data)
        if action == "message.chat.recall" and isinstance(data, dict):
            return Recalled(int(data["mid"]), int(data.get("recallBy") or 0))
        if action == "message.cli":
            return Custom(int(frame.get("from") or 0), data)
        if action == "group.notify":
            return None  # the same notice also comes as message.group.notify
        return Notice(str(action), data)

    def _remember(self, mid: int) -> bool:
        """Whether ``mid`` was handed out already (a replay after a reconnect)."""
        if mid in self._seen:
            return True
        self._seen[mid] = None
        if len(self._seen) > SEEN_LIMIT:
            self._seen.popitem(last=False)
        return False

    def _spawn_send(self, frame: dict[str, Any]) -> None:
        ws = self._ws

        async def send() -> None:
            with contextlib.suppress(ConnectionClosed):
                await ws.send(json.dumps(frame))

        task = asyncio.get_running_loop().create_task(send())
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)


def _answer(reply: dict[str, Any], what: str) -> Any:
    if reply["action"] != "api.success":
        raise ClientError(f"{what}: {reply.get('data')}")
    return reply["data"]
