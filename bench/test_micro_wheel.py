"""10,000 timers: glide's native ``TimingWheel`` against a heapq timer queue and asyncio timer handles.

Two workloads, each round on fresh structures (``benchmark.pedantic`` with a setup, so no round inherits
another's timers):

* insert + expire: arm 10,000 timers with deadlines spread over 60 s (heartbeats, auth and ack timeouts),
  then advance past all of them and collect the expired ids in one batch. The pure-Python alternative is a
  heap of ``(deadline, id)`` popped while due. asyncio cannot take part: its handles only fire from a
  running loop, in real time.
* insert + cancel: arm the same 10,000 timers, then cancel every one (a connection that answers its
  heartbeat cancels its timeout). heapq cancels lazily with a tombstone set, as asyncio does internally;
  asyncio and uvloop create ``loop.call_at`` handles on a loop that is not running, then ``cancel()`` them.
"""

from __future__ import annotations

import asyncio
import heapq
import random
from collections.abc import Callable
from typing import Any

import pytest

from glide import _native

try:
    import uvloop

    new_uvloop: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
except ImportError:  # uvloop is not built for Windows
    new_uvloop = None

COUNT = 10_000
TICK_MS = 10
START_MS = 1_000_000
SPREAD_MS = 60_000
ROUNDS = 40

_rng = random.Random(6455)
TIMERS: list[tuple[int, int]] = [(i, START_MS + _rng.randrange(1, SPREAD_MS)) for i in range(COUNT)]
HORIZON_MS = START_MS + SPREAD_MS + TICK_MS
ALL_IDS = list(range(COUNT))


class HeapTimers:
    """The natural pure-Python timer queue: a binary heap of ``(deadline, id)``, tombstones for cancel."""

    def __init__(self) -> None:
        self.heap: list[tuple[int, int]] = []
        self.cancelled: set[int] = set()

    def insert(self, timer_id: int, deadline_ms: int) -> None:
        heapq.heappush(self.heap, (deadline_ms, timer_id))

    def cancel(self, timer_id: int) -> None:
        self.cancelled.add(timer_id)

    def advance(self, now_ms: int) -> list[int]:
        heap, cancelled, pop = self.heap, self.cancelled, heapq.heappop
        expired: list[int] = []
        while heap and heap[0][0] <= now_ms:
            timer_id = pop(heap)[1]
            if timer_id in cancelled:
                cancelled.discard(timer_id)
            else:
                expired.append(timer_id)
        return expired


# ---- insert + expire -------------------------------------------------------------------------------------


def _wheel_expire(wheel: Any) -> list[int]:
    insert = wheel.insert
    for timer_id, deadline in TIMERS:
        insert(timer_id, deadline)
    expired: list[int] = wheel.advance(HORIZON_MS)
    return expired


def _heap_expire(timers: HeapTimers) -> list[int]:
    insert = timers.insert
    for timer_id, deadline in TIMERS:
        insert(timer_id, deadline)
    return timers.advance(HORIZON_MS)


def _heap_inline_expire(heap: list[tuple[int, int]]) -> list[int]:
    # The same queue with no class around it: heappush/heappop called directly.
    push, pop = heapq.heappush, heapq.heappop
    for timer_id, deadline in TIMERS:
        push(heap, (deadline, timer_id))
    expired = []
    while heap and heap[0][0] <= HORIZON_MS:
        expired.append(pop(heap)[1])
    return expired


EXPIRE: dict[str, tuple[Callable[[], Any], Callable[[Any], list[int]]]] = {
    "ours": (lambda: _native.TimingWheel(TICK_MS, START_MS), _wheel_expire),
    "heapq class": (HeapTimers, _heap_expire),
    "heapq inline": (list, _heap_inline_expire),
}


@pytest.mark.parametrize("name", list(EXPIRE))
def test_wheel_insert_expire(benchmark: Any, name: str) -> None:
    benchmark.group = f"timers: insert {COUNT} + advance past all"
    make, run = EXPIRE[name]
    got = benchmark.pedantic(run, setup=lambda: ((make(),), {}), rounds=ROUNDS)
    assert sorted(got) == ALL_IDS


# ---- insert + cancel -------------------------------------------------------------------------------------


def _wheel_cancel(wheel: Any) -> int:
    insert, cancel = wheel.insert, wheel.cancel
    for timer_id, deadline in TIMERS:
        insert(timer_id, deadline)
    cancelled = 0
    for timer_id in ALL_IDS:
        cancelled += cancel(timer_id)
    assert len(wheel) == 0
    return cancelled


def _heap_cancel(timers: HeapTimers) -> int:
    insert, cancel = timers.insert, timers.cancel
    for timer_id, deadline in TIMERS:
        insert(timer_id, deadline)
    for timer_id in ALL_IDS:
        cancel(timer_id)
    return len(timers.cancelled)


def _noop() -> None:
    return None


def _loop_cancel(loop: asyncio.AbstractEventLoop) -> int:
    # loop.time() is seconds; the deadlines are offsets from now so they stay in the future.
    call_at, now = loop.call_at, loop.time()
    handles = [call_at(now + (deadline - START_MS) / 1000, _noop) for _timer_id, deadline in TIMERS]
    for handle in handles:
        handle.cancel()
    return sum(handle.cancelled() for handle in handles)


class _Loops:
    """Fresh event loops per round (cancelled handles stay queued until the loop runs), all closed at the end."""

    def __init__(self, factory: Callable[[], asyncio.AbstractEventLoop]) -> None:
        self.factory = factory
        self.made: list[asyncio.AbstractEventLoop] = []

    def __call__(self) -> asyncio.AbstractEventLoop:
        self.close()
        loop = self.factory()
        self.made.append(loop)
        return loop

    def close(self) -> None:
        while self.made:
            self.made.pop().close()


CANCEL: dict[str, tuple[Callable[[], Any], Callable[[Any], int]]] = {
    "ours": (lambda: _native.TimingWheel(TICK_MS, START_MS), _wheel_cancel),
    "heapq class": (HeapTimers, _heap_cancel),
    "asyncio call_at": (_Loops(asyncio.new_event_loop), _loop_cancel),
}
if new_uvloop is not None:
    CANCEL["uvloop call_at"] = (_Loops(new_uvloop), _loop_cancel)


@pytest.mark.parametrize("name", list(CANCEL))
def test_wheel_insert_cancel(benchmark: Any, name: str) -> None:
    benchmark.group = f"timers: insert {COUNT} + cancel all"
    make, run = CANCEL[name]
    try:
        got = benchmark.pedantic(run, setup=lambda: ((make(),), {}), rounds=ROUNDS)
    finally:
        if isinstance(make, _Loops):
            make.close()
    assert got == COUNT


def test_wheel_expires_in_deadline_order_batches() -> None:
    """Advancing in 1 s steps gives the same batches as the heap: nothing early, nothing lost."""
    wheel = _native.TimingWheel(TICK_MS, START_MS)
    heap = HeapTimers()
    for timer_id, deadline in TIMERS:
        wheel.insert(timer_id, deadline)
        heap.insert(timer_id, deadline)
    for now in range(START_MS, HORIZON_MS + 1000, 1000):
        assert sorted(wheel.advance(now)) == sorted(heap.advance(now))
    assert len(wheel) == 0
