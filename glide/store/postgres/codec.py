"""Text that PostgreSQL can hold: its ``text`` type refuses NUL, glide's strings may contain it.

``enc`` escapes NUL as U+FDD0 "0" and U+FDD0 itself as U+FDD0 "1" (U+FDD0 is a Unicode noncharacter, so real
text almost never has it). Every other string is stored unchanged, so SQL sees ordinary text; the mapping is
injective, so unique indexes and equality lookups on encoded values behave as on the originals.
"""

from __future__ import annotations

import re

ESC = "\ufdd0"
_ESCAPED = re.compile(ESC + "(.)", re.DOTALL)


def enc(value: str) -> str:
    """The stored form of ``value``."""
    if "\x00" not in value and ESC not in value:
        return value
    return value.replace(ESC, ESC + "1").replace("\x00", ESC + "0")


def dec(value: str) -> str:
    """The original of a stored ``enc`` value."""
    if ESC not in value:
        return value
    return _ESCAPED.sub(lambda m: "\x00" if m.group(1) == "0" else ESC, value)


def enc_opt(value: str | None) -> str | None:
    return None if value is None else enc(value)


def dec_opt(value: str | None) -> str | None:
    return None if value is None else dec(value)
