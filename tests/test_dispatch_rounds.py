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


async def test_a_run_past_the_rate_limit_is_refused_from_where_the_tokens_ran_out() -> None:
    """A run of a limited action is admitted in one take of the bucket: the first ``burst`` envelopes reach the
    handler, every later one is answered with the rate-limit error, in order, as when taken one by one."""
    handled: list[int] = []

    async def many(items: list[tuple[Any, list[Envelope]]]) -> None:
        handled.extend(e.seq for _, envs in items for e in envs)

    d = Dispatcher(send_rate=0.01, send_burst=3, limited=frozenset(["send"]))  # a token per 100 s
    d.register_batch("send", many, many=many)
    (c,) = conns(1)
    d.submit(c, frames(*[("send", i) for i in range(1, 7)]))  # type: ignore[arg-type]
    await d.join()
    assert handled == [1, 2, 3]
    refused = [json.loads(o.frame(TCP_JSON)[4:]) for o in c.sent]
    assert [f["seq"] for f in refused] == [4, 5, 6] and all("rate limit" in f["data"] for f in refused)
    assert d.received["send"] == 6 and not c.busy
    # The bucket kept its debt: a later run gets nothing until tokens come back.
    d.submit(c, frames(("send", 7)))  # type: ignore[arg-type]
    await d.join()
    assert handled == [1, 2, 3] and json.loads(c.sent[-1].frame(TCP_JSON)[4:])["seq"] == 7


async def test_a_run_from_a_connection_not_logged_in_is_answered_envelope_by_envelope() -> None:
    async def many(items: list[tuple[Any, list[Envelope]]]) -> None:
        raise AssertionError("nothing is admitted")

    d = Dispatcher()
    d.register_batch("send", many, many=many)
    (c,) = conns(1)
    c.authenticated = False
    d.submit(c, frames(("send", 1), ("send", 2)))  # type: ignore[arg-type]
    await d.join()
    sent = [json.loads(o.frame(TCP_JSON)[4:]) for o in c.sent]
    assert [(f["action"], f["seq"]) for f in sent] == [("notify.unauthenticated", 1), ("notify.unauthenticated", 2)]
