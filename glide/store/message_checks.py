"""Input checks of the message path that every store backend shares (the backends validate before they
touch the database, with the same messages)."""

from __future__ import annotations

from collections.abc import Sequence

from glide.errors import BadRequest

INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1


def ack_requests(requests: Sequence[tuple[int, Sequence[int]]]) -> list[tuple[int, list[int]]]:
    """``(uid, mids)`` pairs for ``ack_inboxes``: each uid an int64, its mids distinct and ascending (ids
    outside int64 cannot be stored, so cannot be pending: they are dropped)."""
    out: list[tuple[int, list[int]]] = []
    for uid, mids in requests:
        if not isinstance(uid, int) or isinstance(uid, bool) or not INT64_MIN <= uid <= INT64_MAX:
            raise BadRequest(f"uid: expected an integer in {INT64_MIN}..{INT64_MAX}, got {uid!r:.40}")
        valid = {m for m in mids if isinstance(m, int) and not isinstance(m, bool) and INT64_MIN <= m <= INT64_MAX}
        out.append((uid, sorted(valid)))
    return out
