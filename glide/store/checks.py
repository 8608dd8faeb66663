"""Input checks every store backend shares, so that both refuse the same input with the same messages
(the backends validate before they touch the database)."""

from __future__ import annotations

from collections.abc import Iterable

from glide.errors import BadRequest

INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


def is_id(value: object) -> bool:
    """A positive int64 that is not a bool: what every uid, gid and mid is."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= INT64_MAX


def check_id(value: object, field: str) -> int:
    if not is_id(value):
        raise BadRequest(f"{field}: expected a positive integer id, got {value!r:.40}")
    return value  # type: ignore[return-value]


def check_int(value: object, field: str, low: int = INT64_MIN, high: int = INT64_MAX) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise BadRequest(f"{field}: expected an integer in {low}..{high}, got {value!r:.40}")
    return value


def check_text(value: object, field: str, max_len: int | None = None) -> str:
    """A str that encodes to UTF-8 (no lone surrogates), at most ``max_len`` characters when given."""
    if not isinstance(value, str):
        raise BadRequest(f"{field}: expected a string")
    if max_len is not None and len(value) > max_len:
        raise BadRequest(f"{field}: at most {max_len} characters")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise BadRequest(f"{field}: not valid unicode (lone surrogate)") from None
    return value


def valid_ids(ids: Iterable[object]) -> list[int]:
    """Distinct ids in first-seen order; anything that is not an id cannot be stored, so cannot exist."""
    return list(dict.fromkeys(i for i in ids if is_id(i)))  # type: ignore[misc]
