"""The dispatcher's rounds: every connection that became ready in one loop tick is taken together; those
whose envelopes are all of one batched action reach its many-handler in one call (each connection's in
order), the others drain on their own, and what a busy connection sends meanwhile runs after, in order."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from test_limits import _Conn

from glide._native import TCP_JSON, Envelope, decode_json
from glide.dispatch import IDLE, Dispatcher


def frames(*specs: tuple[str, int]) -> list[Envelope]:
    return [decode_json(json.dumps({"action": a, "seq": s}).encode()) for a, s in specs]  # type: ignore[misc]


def conns(n: int) -> list[_Conn]:
    out = []
    for i in range(n):
        c = _Conn()
        c.id = c.uid = i + 1
        out.append(c)
    return out


async def test_connections_ready_in_one_tick_share_one_call() -> None:
    calls: list[list[tuple[int, list[int]]]] = []
    gate = asyncio.Event()

    async def one(conn: Any, envs: Any) -> None:
        raise AssertionError("the many handler serves uniform batches")

    async def many(items: list[tuple[Any, list[Envelope]]]) -> None:
        calls.append([(c.uid, [e.seq for e in envs]) for c, envs in items])
        await gate.wait()

    d = Dispatcher()
    d.register_batch("send", one, many=many)
    cs = conns(5)
    for c in cs:
        d.submit(c, frames(("send", c.uid * 10), ("send", c.uid * 10 + 1)))  # type: ignore[arg-type]
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert calls == [[(c.uid, [c.uid * 10, c.uid * 10 + 1]) for c in cs]]
    # Busy connections queue what they send next; it runs in a later round, in order.
    d.submit(cs[0], frames(("send", 99)))  # type: ignore[arg-type]
    assert cs[0].pending and cs[0].busy
    gate.set()
    await d.join()
    assert calls[1] == [(1, [99])]
    assert all(not c.busy and c.pending is IDLE for c in cs)  # idle: the shared empty tuple, no list each


async def test_mixed_envelopes_drain_on_their_own_in_order() -> None:
    order: list[tuple[str, int]] = []

    async def batch(conn: Any, envs: list[Envelope]) -> None:
        order.extend(("send", e.seq) for e in envs)

    async def many(items: list[tuple[Any, list[Envelope]]]) -> None:
        for c, envs in items:
            await batch(c, envs)

    async def other(conn: Any, env: Envelope) -> None:
        order.append(("other", env.seq))

    d = Dispatcher()
    d.register_batch("send", batch, many=many)
    d.register("other", other)
    (c,) = conns(1)
    d.submit(c, frames(("send", 1), ("other", 2), ("send", 3), ("send", 4)))  # type: ignore[arg-type]
    await d.join()
    assert order == [("send", 1), ("other", 2), ("send", 3), ("send", 4)]


async def test_a_failing_many_handler_answers_every_envelope() -> None:
    async def one(conn: Any, envs: Any) -> None: ...

    async def many(items: list[tuple[Any, list[Envelope]]]) -> None:
        raise RuntimeError("boom")

    d = Dispatcher()
    d.register_batch("send", one, many=many)
    cs = conns(3)
    for c in cs:
        d.submit(c, frames(("send", 1), ("send", 2)))  # type: ignore[arg-type]
    await d.join()
    for c in cs:
        sent = [json.loads(o.frame(TCP_JSON)[4:]) for o in c.sent]  # 4-byte length, then the envelope
        assert [f["seq"] for f in sent] == [1, 2] and all(f["data"] == "internal error" for f in sent)
        assert not c.busy
