"""MidGenerator: unique, increasing, time-ordered, below 2**53, robust to clock steps."""

from __future__ import annotations

import pytest

from glide.errors import GlideError
from glide.ids import EPOCH_MS, MAX_COUNTER, MAX_TICK, MidGenerator, mid_node, mid_time_ms


class FakeClock:
    def __init__(self, ms: int) -> None:
        self.ms = ms

    def __call__(self) -> int:
        return self.ms


T0 = EPOCH_MS + 1_000_000


def test_layout_decodes_time_and_node() -> None:
    gen = MidGenerator(5, FakeClock(T0))
    mid = gen.next()
    assert mid_time_ms(mid) == T0
    assert mid_node(mid) == 5
    assert mid & MAX_COUNTER == 0
    assert gen.node_id == 5


def test_strictly_increasing_within_one_millisecond_and_borrowing() -> None:
    clock = FakeClock(T0)
    gen = MidGenerator(0, clock)
    mids = [gen.next() for _ in range(1000)]  # 1000 > 256 per ms: borrows ~3 ms ahead
    assert mids == sorted(mids) and len(set(mids)) == len(mids)
    assert mid_time_ms(mids[-1]) == T0 + 1000 // (MAX_COUNTER + 1)
    # once the wall clock passes the borrowed milliseconds, ids follow the wall clock again
    clock.ms = T0 + 10
    nxt = gen.next()
    assert nxt > mids[-1] and mid_time_ms(nxt) == T0 + 10 and nxt & MAX_COUNTER == 0


def test_clock_going_backwards_never_goes_backwards() -> None:
    clock = FakeClock(T0 + 5000)
    gen = MidGenerator(1, clock)
    first = gen.next()
    clock.ms = T0  # NTP step back by 5 s
    later = [gen.next() for _ in range(600)]
    assert all(b > a for a, b in zip([first, *later], later, strict=False))
    assert all(mid_node(m) == 1 for m in later)


def test_time_ordered_across_nodes() -> None:
    a = MidGenerator(15, FakeClock(T0))
    b = MidGenerator(0, FakeClock(T0 + 1))
    assert b.next() > a.next()  # a later millisecond wins whatever the node id
    c = MidGenerator(3, FakeClock(T0))
    d = MidGenerator(4, FakeClock(T0))
    assert len({c.next(), d.next(), c.next(), d.next()}) == 4  # same ms, distinct nodes: no collision


def test_always_below_2_pow_53() -> None:
    gen = MidGenerator(15, FakeClock(EPOCH_MS + MAX_TICK))
    mids = [gen.next() for _ in range(MAX_COUNTER + 1)]
    assert max(mids) < 2**53
    with pytest.raises(GlideError, match="clock out of range"):
        gen.next()  # the 257th id of the last representable millisecond (year 2094)


def test_clock_before_epoch_still_works() -> None:
    gen = MidGenerator(2, FakeClock(EPOCH_MS - 10_000))
    mids = [gen.next() for _ in range(3)]
    assert mids == sorted(mids) and mids[0] > 0


@pytest.mark.parametrize("node_of_last", [0, 7, 15])
def test_after_seeds_past_the_last_stored_id(node_of_last: int) -> None:
    last = MidGenerator(node_of_last, FakeClock(T0 + 100)).next() + 3  # counter 3 in that ms
    gen = MidGenerator(7, FakeClock(T0), after=last)  # the clock went back across a restart
    assert gen.next() > last
    gen2 = MidGenerator(7, FakeClock(T0 + 200), after=last)
    assert mid_time_ms(gen2.next()) == T0 + 200  # a clock ahead of `after` is used as is


@pytest.mark.parametrize("node", [-1, 16, 100])
def test_node_id_out_of_range(node: int) -> None:
    with pytest.raises(ValueError, match="node_id"):
        MidGenerator(node)


def test_default_clock_is_wall_clock() -> None:
    gen = MidGenerator(0)
    a, b = gen.next(), gen.next()
    assert 0 < a < b < 2**53


def test_many_at_once_are_the_ids_one_at_a_time_would_be() -> None:
    one, many = MidGenerator(2, FakeClock(T0)), MidGenerator(2, FakeClock(T0))
    first = [one.next() for _ in range(600)]  # past one millisecond's counter: borrows ahead
    assert many.next_many(600) == first
    assert many.next_many(0) == [] and many.next() == one.next()
