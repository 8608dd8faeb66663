"""Column lists and row decoding shared by the PostgreSQL store modules."""

from __future__ import annotations

import asyncpg

from glide.store.base import ChatMessage
from glide.store.postgres.codec import dec

CHAT_COLUMNS = (
    "mid, cli_mid, sender, receiver, type, content, send_at, created_at, status, recalled_by, sender_seq, receiver_seq"
)
M_COLUMNS = ", ".join("m." + c.strip() for c in CHAT_COLUMNS.split(","))


def chat_from(row: asyncpg.Record, at: int = 0) -> ChatMessage:
    """The message in ``row[at:at + 12]`` (CHAT_COLUMNS order)."""
    r = row[at : at + 12]
    return ChatMessage(r[0], dec(r[1]), r[2], r[3], r[4], dec(r[5]), r[6], r[7], r[8], r[9], r[10], r[11])


def affected(status: str) -> int:
    """The row count of a command status such as ``DELETE 3``."""
    tail = status.rsplit(" ", 1)[-1]
    return int(tail) if tail.isdigit() else 0
