"""Password hashing with argon2id.

Parameters: time cost 2, 19 MiB memory, 1 lane: the OWASP minimum recommendation for argon2id, about
20-40 ms per hash on one core here, so sign-in stays cheap for the server and tests stay fast while
offline guessing stays expensive. Hashes embed their parameters, so raising them later keeps old hashes
verifiable (see :func:`needs_rehash`). Hashing blocks: call it from a worker thread on a busy loop.
"""

from __future__ import annotations

import functools

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

TIME_COST = 2
MEMORY_COST_KIB = 19 * 1024
PARALLELISM = 1

# A hash that never verifies: stored for accounts without a password (guests).
NO_PASSWORD = "!"

_hasher = PasswordHasher(time_cost=TIME_COST, memory_cost=MEMORY_COST_KIB, parallelism=PARALLELISM)


@functools.cache
def _dummy_hash() -> str:
    # Verified against when the login is unknown, so that answering "unknown user" costs as much as a
    # wrong password and response times do not reveal which accounts exist.
    return _hasher.hash("glide: no such user")


def hash_password(password: str) -> str:
    """The argon2id hash (PHC string) of ``password``."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True if ``password`` matches; False on mismatch and on a hash that is not argon2 (e.g. NO_PASSWORD)."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def burn_verify(password: str) -> None:
    """Spend the time of one verification (for unknown logins); always fails."""
    verify_password(_dummy_hash(), password)


def needs_rehash(password_hash: str) -> bool:
    """True if the hash was made with other parameters than the current ones."""
    try:
        return _hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return False
