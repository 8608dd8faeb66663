"""Bounded memory: a consumer too slow to keep up is disconnected (its messages wait in the store), and a
client that sends faster than we commit is slowed down by TCP instead of queueing in our memory."""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

import websockets
from helpers import Client, make_user, online

from glide._native import Envelope, decode_json
from glide.dispatch import MAX_PENDING, Dispatcher


async def test_slow_consumer_is_disconnected_and_loses_nothing(servers) -> None:  # type: ignore[no-untyped-def]
    # alice pipelines 3,000 messages at once: far past the default burst of the message rate limit
    server = await servers(send_buffer_limit=256 * 1024, message_rate=0)
    _, alice = await online(server, "alice")
    bob_uid, bob_token = await make_user(server, "bob")

    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", server.ws_port))
    slow = await websockets.connect(f"ws://127.0.0.1:{server.ws_port}/ws", sock=sock, max_queue=1)
    await slow.recv()  # hello
    await slow.send(json.dumps({"action": "api.auth", "seq": 1, "data": {"Token": bob_token}}))
    await slow.recv()  # api.success; from now on bob never reads

    n, window, body = 3000, 100, "x" * 2000

    # alice keeps up (a window of 100 messages in flight, her acks read as they come), so only bob is too slow
    for start in range(0, n, window):
        for i in range(start, start + window):
            await alice.send("message.chat", {"cliMid": f"s{i}", "content": f"{i} {body}"}, to=str(bob_uid))
        acked = 0
        while acked < window:  # ack.notify frames come too, once bob has been dropped
            acked += (await alice.recv(30))["action"] == "ack.message"
    for _ in range(500):
        if not server.gateway.hub.is_online(bob_uid):
            break
        await asyncio.sleep(0.01)
    assert not server.gateway.hub.is_online(bob_uid), "the slow consumer should have been dropped"
    assert server.gateway.transport_stats()["slow_consumers"] == 1  # what glide_slow_consumers_dropped reports
    slow.transport.abort()

    bob = await Client.connect(server)
    await bob.login(bob_token)
    got = [int((await bob.expect("message.chat", timeout=30))["data"]["content"].split()[0]) for _ in range(n)]
    assert got == list(range(n))


async def test_the_asyncio_driver_writes_a_ticks_frames_at_once(servers) -> None:  # type: ignore[no-untyped-def]
    """Frames a tick gives one connection go out in one socket write, in order: 40 chats read in one burst
    reach their receiver (and their acks the sender) in far fewer writes than frames."""
    server = await servers(driver="asyncio", message_rate=0)
    _, alice = await online(server, "alice")
    bob_uid, bob = await online(server, "bob")
    gateway = server.gateway
    frames, writes = gateway.frames_out, gateway.writes
    n = 40
    # websockets frames the chats; they leave in one write, so the server reads them together
    protocol = alice.ws.protocol
    for i in range(n):
        chat = {
            "action": "message.chat",
            "seq": 10 + i,
            "to": str(bob_uid),
            "data": {"cliMid": f"b{i}", "content": str(i)},
        }
        protocol.send_text(json.dumps(chat).encode())
    alice.ws.transport.write(b"".join(protocol.data_to_send()))
    got = [int((await bob.expect("message.chat"))["data"]["content"]) for _ in range(n)]
    assert got == list(range(n))
    acks = [(await alice.expect("ack.message"))["seq"] for _ in range(n)]
    assert acks == [10 + i for i in range(n)]
    sent = gateway.frames_out - frames
    assert sent == 2 * n
    assert gateway.writes - writes <= sent // 4, (gateway.writes - writes, sent)


class _Conn:
    """A connection double for the dispatcher alone: it records what the dispatcher asks of the socket."""

    def __init__(self) -> None:
        self.id, self.uid, self.device, self.device_name, self.wire = 1, 1, "1", "", 0
        self.authenticated, self.closed, self.syncing, self.busy = True, False, False, False
        self.reading_paused = False
        self.pending: list[Any] = []
        self.held: dict[int, Any] | None = None
        self.send_bucket: Any = None
        self.ticket_secret: str | None = None
        self.inbox_replayed = 0
        self.paused = 0
        self.resumed = 0
        self.sent: list[Any] = []

    def send(self, out: Any) -> None:
        self.sent.append(out)

    def close(self, code: int = 1000, reason: str = "") -> None:
        self.closed = True

    async def drained(self) -> None:
        return None

    def pause_reading(self) -> None:
        self.paused += 1
        self.reading_paused = True

    def resume_reading(self) -> None:
        self.resumed += 1
        self.reading_paused = False


async def test_reading_pauses_while_too_much_is_pending_and_resumes_after() -> None:
    gate = asyncio.Event()
    handled: list[int] = []

    async def slow_handler(conn: Any, env: Envelope) -> None:
        await gate.wait()
        handled.append(env.seq)

    dispatcher = Dispatcher()
    dispatcher.register("slow", slow_handler)
    conn = _Conn()
    frames = [decode_json(json.dumps({"action": "slow", "seq": i}).encode()) for i in range(3 * MAX_PENDING)]
    for start in range(0, len(frames), 100):  # socket reads of 100 envelopes each
        dispatcher.submit(conn, frames[start : start + 100])  # type: ignore[arg-type]
    await asyncio.sleep(0)
    assert conn.paused == 1 and conn.resumed == 0
    assert len(conn.pending) <= 3 * MAX_PENDING
    gate.set()
    await dispatcher.join()
    assert handled == list(range(3 * MAX_PENDING))
    assert conn.resumed >= 1 and not conn.busy and not conn.pending
