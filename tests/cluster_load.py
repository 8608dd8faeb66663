"""A small chat load over a cluster, with the bookkeeping to check it: users spread over the nodes send to
random peers, every acknowledged message is recorded, every delivery is acknowledged back and recorded
with the session that got it. A user whose node goes away reconnects to another node (and sends again what
was not acknowledged, with the same cliMid). ``check`` then says what is missing or duplicated."""

from __future__ import annotations

import asyncio
import json
import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import websockets
from websockets.exceptions import ConnectionClosed, InvalidHandshake

Frame = dict[str, Any]


@dataclass
class LoadUser:
    uid: int
    token: str
    node: int
    sessions: int = 0  # how many sockets it had so far
    home: int = -1  # the node it connected to first
    pending: dict[int, tuple[int, str, str]] = field(default_factory=dict)  # seq -> (to, cliMid, content)

    def __post_init__(self) -> None:
        self.home = self.node

    acked: dict[int, tuple[int, str]] = field(default_factory=dict)  # mid -> (receiver, content)
    # session number -> (mid, sender) received on it, in order
    received: dict[int, list[tuple[int, int]]] = field(default_factory=lambda: defaultdict(list))


class ChatLoad:
    def __init__(self, urls: Callable[[], list[str]], users: list[LoadUser], *, seed: int = 1) -> None:
        self.urls = urls  # the live nodes' ws URLs, asked again at each reconnect
        self.users = users
        self.rng = random.Random(seed)
        self.sending = True
        self.errors: list[str] = []
        self.reconnects = 0
        self.readers: list[tuple[asyncio.Future[None], websockets.ClientConnection]] = []
        self.closed = False  # the check has begun: what the sockets still get is not recorded

    async def run(self, seconds: float) -> None:
        tasks = [asyncio.ensure_future(self._user(u)) for u in self.users]
        await asyncio.sleep(seconds)
        self.sending = False
        await asyncio.gather(*tasks)

    async def _connect(self, u: LoadUser) -> tuple[websockets.ClientConnection, int]:
        while True:
            urls = self.urls()
            url = urls[u.node % len(urls)]
            try:
                ws = await websockets.connect(url, open_timeout=5)
                await ws.send(json.dumps({"action": "api.auth", "data": {"Token": u.token}, "seq": 1}))
                while True:
                    frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
                    if frame.get("seq") == 1 and frame["action"] in ("api.success", "api.failed"):
                        break
                if frame["action"] == "api.success":
                    u.sessions += 1
                    return ws, u.sessions
                await ws.close()
            except (OSError, ConnectionClosed, InvalidHandshake, TimeoutError):
                pass
            u.node += 1  # try the next node
            self.reconnects += 1
            await asyncio.sleep(0.1)

    async def _user(self, u: LoadUser) -> None:
        """Send until told to stop, then keep receiving until the others stopped too (``drain``)."""
        pending = u.pending  # sent, not answered yet
        seqs = iter(range(2, 1 << 62))
        n = 0
        while True:
            ws, session = await self._connect(u)
            try:
                for seq, (to, cli, content) in list(pending.items()):  # resend what was not acknowledged
                    await self._send(ws, seq, to, cli, content)
                reader = asyncio.ensure_future(self._read(ws, u, session, pending))
                while self.sending and not reader.done():
                    if len(pending) < 4:
                        peer = self.rng.choice([p for p in self.users if p is not u])
                        n += 1
                        seq = next(seqs)
                        content = f"{u.uid}:{n}"
                        pending[seq] = (peer.uid, f"{u.uid}-{n}", content)
                        await self._send(ws, seq, peer.uid, f"{u.uid}-{n}", content)
                    await asyncio.sleep(self.rng.uniform(0.005, 0.03))
                if not reader.done():
                    await asyncio.sleep(0)  # stopped: the reader goes on until the drain ends
                    self.readers.append((reader, ws))
                    return
                reader.result()
            except (ConnectionClosed, OSError):
                pass
            self.reconnects += 1
            u.node += 1

    @staticmethod
    async def _send(ws: websockets.ClientConnection, seq: int, to: int, cli: str, content: str) -> None:
        data = {"cliMid": cli, "content": content, "to": str(to), "type": 1}
        await ws.send(json.dumps({"action": "message.chat", "data": data, "seq": seq, "to": str(to)}))

    async def _read(
        self, ws: websockets.ClientConnection, u: LoadUser, session: int, pending: dict[int, tuple[int, str, str]]
    ) -> None:
        try:
            async for raw in ws:
                if self.closed:
                    return
                frame = json.loads(raw)
                action = frame["action"]
                if action == "ack.message":
                    sent = pending.pop(frame["seq"], None)
                    if sent is not None:
                        u.acked[frame["data"]["mid"]] = (sent[0], sent[2])
                elif action == "message.chat":
                    mid = frame["data"]["mid"]
                    u.received[session].append((mid, int(frame["data"]["from"])))
                    ack = {"action": "ack.request", "data": {"mid": mid, "from": frame["data"]["from"]}, "seq": 0}
                    await ws.send(json.dumps(ack))
                elif action == "notify.error":
                    self.errors.append(str(frame.get("data")))
                    pending.pop(frame.get("seq", 0), None)  # refused (e.g. the store was away): not acked
        except ConnectionClosed:
            pass

    async def drain(self, seconds: float) -> None:
        """Wait until every send was answered and every acknowledged message arrived (or ``seconds``
        passed), then close the sockets (what the check looks at is final from then on)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while loop.time() < deadline and any(u.pending for u in self.users):
            await asyncio.sleep(0.05)
        while loop.time() < deadline and self.missing():
            await asyncio.sleep(0.1)
        self.closed = True
        await asyncio.gather(*(ws.close() for _, ws in self.readers))
        await asyncio.gather(*(reader for reader, _ in self.readers))

    def missing(self) -> dict[int, set[int]]:
        """receiver uid -> acknowledged mids it never got."""
        got = {u.uid: {m for got in u.received.values() for m, _ in got} for u in self.users}
        out: dict[int, set[int]] = {}
        for u in self.users:
            for mid, (to, _) in u.acked.items():
                if mid not in got[to]:
                    out.setdefault(to, set()).add(mid)
        return out

    def duplicates_in_a_session(self) -> list[tuple[int, int, int]]:
        """(uid, session, mid) of every mid one socket got twice."""
        out = []
        for u in self.users:
            for session, got in u.received.items():
                seen: set[int] = set()
                for mid, _ in got:
                    if mid in seen:
                        out.append((u.uid, session, mid))
                    seen.add(mid)
        return out

    def out_of_order(self) -> list[tuple[int, int, int, int]]:
        """(uid, session, earlier mid, later mid) where one socket got a sender's messages out of send order
        (mids of one sender grow in send order: they come from its node's clock)."""
        out = []
        for u in self.users:
            for session, got in u.received.items():
                last: dict[int, int] = {}
                for mid, sender in got:
                    if mid < last.get(sender, 0):
                        out.append((u.uid, session, last[sender], mid))
                    last[sender] = max(mid, last.get(sender, 0))
        return out

    def acked_count(self) -> int:
        return sum(len(u.acked) for u in self.users)
