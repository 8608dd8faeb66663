"""Abuse limits: token buckets, per connection and per key (client address, account).

A bucket holds up to ``burst`` tokens and gains ``rate`` per second; an action takes one and is refused
when none is left. Keyed buckets live in a bounded LRU map, so a flood of distinct keys (spoofed accounts,
many addresses) costs bounded memory: evicting a key forgets only its debt.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

MAX_KEYS = 100_000


class TokenBucket:
    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.stamp = now

    def take(self, now: float, cost: float = 1.0) -> bool:
        """Take ``cost`` tokens if there are that many; False (and nothing taken) otherwise."""
        tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if tokens < cost:
            self.tokens = tokens
            return False
        self.tokens = tokens - cost
        return True

    def take_up_to(self, now: float, n: int) -> int:
        """Take one token for each of up to ``n`` actions, as ``take`` would one after another at ``now``; how
        many it took (the first ones are allowed, the rest refused)."""
        tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        taken = min(n, int(tokens))
        self.tokens = tokens - taken
        return taken

    def retry_after(self, cost: float = 1.0) -> float:
        """Seconds until ``cost`` tokens are there again (as of the last ``take``)."""
        return max(0.0, (cost - self.tokens) / self.rate) if self.rate > 0 else float("inf")


class KeyedLimiter:
    """One bucket per key; ``rate <= 0`` disables the limit."""

    def __init__(
        self, rate: float, burst: float, *, clock: Callable[[], float] = time.monotonic, max_keys: int = MAX_KEYS
    ) -> None:
        self.rate = rate
        self.burst = max(burst, 1.0)
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: OrderedDict[object, TokenBucket] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def take(self, key: object) -> float:
        """0.0 if ``key`` may act now (a token is taken), else the seconds until it may."""
        if self.rate <= 0:
            return 0.0
        now = self.clock()
        bucket = self._bucket(key, now)
        return 0.0 if bucket.take(now) else max(bucket.retry_after(), 0.001)

    def check(self, key: object) -> float:
        """Like :meth:`take` without taking: 0.0 if a token is there."""
        if self.rate <= 0:
            return 0.0
        bucket = self._buckets.get(key)
        if bucket is None:
            return 0.0
        now = self.clock()
        if bucket.take(now, 0.0) and bucket.tokens >= 1.0:
            return 0.0
        return max(bucket.retry_after(), 0.001)

    def forget(self, key: object) -> None:
        self._buckets.pop(key, None)

    def _bucket(self, key: object, now: float) -> TokenBucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self.rate, self.burst, now)
            if len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        return bucket

    def __len__(self) -> int:
        return len(self._buckets)


class AccountLimits:
    """The HTTP API's limits on what costs us argon2 or a new account: sign-in attempts per client address,
    failed sign-ins per account, guest accounts per client address (each per the node's config)."""

    def __init__(
        self,
        *,
        signin_per_minute: int,
        signin_failures_per_hour: int,
        guests_per_minute: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.signin_by_address = KeyedLimiter(signin_per_minute / 60, signin_per_minute, clock=clock)
        self.failures_by_account = KeyedLimiter(signin_failures_per_hour / 3600, signin_failures_per_hour, clock=clock)
        self.guests_by_address = KeyedLimiter(guests_per_minute / 60, guests_per_minute, clock=clock)
