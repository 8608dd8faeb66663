"""Message ids: unique, strictly increasing per node, time-ordered across nodes, always below 2**53.

Layout (53 bits, so JavaScript clients that parse ids as doubles see them exactly)::

    ms since 2025-01-01 UTC (41 bits) | node id (4 bits) | counter (8 bits)

Up to 256 ids per millisecond and node; a burst beyond that borrows the next millisecond (a logical
clock), and a wall clock that steps backwards never makes ids go backwards. The 41-bit clock lasts
until the year 2094.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from glide.errors import GlideError

EPOCH_MS = 1_735_689_600_000  # 2025-01-01T00:00:00Z
NODE_BITS = 4
COUNTER_BITS = 8
TIME_BITS = 41
MAX_NODE = (1 << NODE_BITS) - 1
AUTO_NODE = -1  # node_id setting: the first id no live node holds
MAX_COUNTER = (1 << COUNTER_BITS) - 1
MAX_TICK = (1 << TIME_BITS) - 1
_SHIFT = NODE_BITS + COUNTER_BITS


def wall_ms() -> int:
    """Unix time in milliseconds."""
    return time.time_ns() // 1_000_000


def mid_time_ms(mid: int) -> int:
    """The Unix time (ms) encoded in ``mid`` (the logical clock: may run ahead of the wall clock briefly)."""
    return (mid >> _SHIFT) + EPOCH_MS


def mid_node(mid: int) -> int:
    """The node id encoded in ``mid``."""
    return (mid >> COUNTER_BITS) & MAX_NODE


class MidGenerator:
    """Issues message ids for one node. Not thread-safe: one generator per process, used from one loop.

    ``after``: ids already issued (e.g. the largest stored mid); every new id is greater, which keeps ids
    unique across a restart even when the wall clock went backwards in between.
    """

    __slots__ = ("_clock", "_counter", "_node", "_tick")

    def __init__(self, node_id: int, clock_ms: Callable[[], int] = wall_ms, *, after: int = 0) -> None:
        if not 0 <= node_id <= MAX_NODE:
            raise ValueError(f"node_id must be between 0 and {MAX_NODE}, got {node_id}")
        self._node = node_id << COUNTER_BITS
        self._clock = clock_ms
        self._tick = -1
        self._counter = MAX_COUNTER
        if after > 0:
            # Resume so that the next id is greater than `after`, whatever node issued it.
            self._tick = after >> _SHIFT
            node = mid_node(after)
            if node == node_id:
                self._counter = after & MAX_COUNTER
            elif node < node_id:
                self._counter = -1  # our ids in that millisecond are already larger
            # else: a larger node id in that millisecond: the next id borrows the following millisecond

    @property
    def node_id(self) -> int:
        return self._node >> COUNTER_BITS

    def next(self) -> int:
        """A new id, greater than every id this generator returned before."""
        return self.next_many(1)[0]

    def next_many(self, n: int) -> list[int]:
        """``n`` new ids, ascending, greater than every id returned before (one clock reading for all: a
        batch of messages)."""
        now = self._clock() - EPOCH_MS
        tick, counter, node = self._tick, self._counter, self._node
        ids: list[int] = []
        for _ in range(n):
            if now > tick:
                tick = now
                counter = 0
            elif counter < MAX_COUNTER:
                counter += 1
            else:
                tick += 1  # counter exhausted (or clock went back): borrow the next millisecond
                counter = 0
            ids.append((tick << _SHIFT) | node | counter)
        if tick > MAX_TICK:
            raise GlideError(f"message id clock out of range (tick {tick}); check the system clock")
        self._tick, self._counter = tick, counter
        return ids
