"""The token buckets behind the abuse limits, on a fake clock: burst, refill, refusal without taking, and a
bounded number of keys (a flood of distinct keys costs bounded memory)."""

from __future__ import annotations

from glide.limits import KeyedLimiter, TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_bucket_burst_then_rate() -> None:
    b = TokenBucket(rate=2.0, burst=3, now=0.0)
    assert [b.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert abs(b.retry_after() - 0.5) < 1e-9
    assert not b.take(0.25) and b.take(0.5)  # one token every 0.5 s
    assert b.take(10.0) and b.take(10.0) and b.take(10.0) and not b.take(10.0)  # never more than the burst


def test_keyed_limiter_per_key_and_check() -> None:
    clock = Clock()
    lim = KeyedLimiter(rate=1.0, burst=2, clock=clock)
    assert lim.take("a") == 0.0 and lim.take("a") == 0.0
    assert lim.take("a") > 0 and lim.take("b") == 0.0  # keys are independent
    assert lim.check("a") > 0 and lim.check("never-seen") == 0.0
    clock.now += 1.0
    assert lim.check("a") == 0.0 and lim.take("a") == 0.0
    lim.forget("a")
    assert lim.take("a") == 0.0 and lim.take("a") == 0.0


def test_disabled_limiter_never_refuses_and_keeps_nothing() -> None:
    lim = KeyedLimiter(rate=0, burst=0)
    assert not lim.enabled
    assert all(lim.take(i) == 0.0 for i in range(1000)) and len(lim) == 0


def test_keys_are_bounded() -> None:
    lim = KeyedLimiter(rate=1.0, burst=1, clock=Clock(), max_keys=100)
    for i in range(10_000):
        lim.take(f"spoofed-{i}")
    assert len(lim) == 100
    assert lim.take("spoofed-9999") > 0  # the most recent keys are kept


def test_taking_up_to_n_is_taking_one_at_a_time() -> None:
    for tokens_at, n in [(0.0, 5), (0.25, 2), (0.7, 4), (9.0, 10)]:
        one_by_one = TokenBucket(rate=2.0, burst=3, now=0.0)
        batched = TokenBucket(rate=2.0, burst=3, now=0.0)
        for b in (one_by_one, batched):  # some debt first
            b.take(0.0)
            b.take(0.0)
        expected = sum(one_by_one.take(tokens_at) for _ in range(n))
        assert batched.take_up_to(tokens_at, n) == expected
        assert abs(batched.tokens - one_by_one.tokens) < 1e-9
