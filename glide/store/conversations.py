"""Conversations (the recent list, unread counts) and the per-user timeline that sync reads.

Semantics every backend shares (the docstrings are the contract; times are Unix milliseconds):

- Every user has a log: the 1:1 messages it sent or received, each at a position (``ChatMessage.sender_seq``
  in the sender's log, ``receiver_seq`` in the receiver's; one position for a message to oneself). Positions
  are taken when the message commits, so a log is in commit order and a reader that sees position n has seen
  every message at a position below n: ``after_seq`` is a complete cursor. (Message ids are time-ordered,
  but a message with a smaller mid may commit after one with a larger mid; a mid is no safe cursor.) A recall
  moves the message to the next position of both logs (its old position stays empty), so a client that
  syncs learns of it; positions therefore increase without gaps in what they cover, not necessarily by one.
- ``MessageStore.store_chats`` skips a message whose receiver refuses its sender (``ContactStore.refused``:
  nothing stored, ``StoredChat.refused`` set) and opens both conversations of a new pair. Nothing else is
  written per message: a conversation's last message, ``updated_at`` (its last message's created_at, or when
  it was opened) and ``unread`` are derived from the messages when read.
- ``unread`` counts the peer's messages with mid > ``read_mid``. Reading is explicit (``mark_read``): an
  ``ack.request`` is a delivery receipt (clients send it for every message they receive, whether or not
  anyone looked at it) and does not count as read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from glide.store.base import ChatMessage

MAX_RECENT = 100  # conversations per recent-list answer (GlideIM: 100)
MAX_SYNC_PAGE = 500  # timeline entries per sync page


@dataclass(frozen=True, slots=True)
class Conversation:
    """``owner``'s 1:1 conversation with ``peer``. ``last``: the newest message (None when the conversation
    was opened without one); ``last_mid`` its mid (0 then)."""

    owner: int
    peer: int
    last_mid: int
    read_mid: int
    unread: int
    created_at: int
    updated_at: int
    last: ChatMessage | None


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """The message at position ``seq`` of a user's log, as it is now (a recalled one has status 1)."""

    seq: int
    message: ChatMessage


@dataclass(frozen=True, slots=True)
class TimelinePage:
    """Entries after the cursor, ascending position. ``cursor``: pass it as ``after_seq`` next time (the last
    entry's seq, or the given cursor when there is none). ``head``: the user's newest position at read time;
    ``more``: entries remain after this page."""

    entries: list[TimelineEntry]
    cursor: int
    head: int
    more: bool


class ConversationStore(Protocol):
    async def recent(self, owner: int, *, limit: int = MAX_RECENT) -> list[Conversation]:
        """``owner``'s conversations, most recently active first (ties: larger peer first), at most
        min(limit, MAX_RECENT)."""
        ...

    async def conversation(self, owner: int, peer: int) -> Conversation | None: ...

    async def open_conversation(self, owner: int, peer: int) -> Conversation:
        """The conversation, created empty (updated_at = now) if missing. Raises UserNotFound (peer)."""
        ...

    async def mark_read(self, owner: int, peer: int, *, up_to_mid: int = 0) -> Conversation:
        """Raise ``read_mid`` to ``up_to_mid`` (0: to the last message) and recount ``unread``; read_mid never
        goes down. Raises NotFound (no such conversation), BadRequest (up_to_mid < 0)."""
        ...

    async def timeline(self, owner: int, *, after_seq: int = 0, limit: int = 100) -> TimelinePage:
        """``owner``'s timeline entries with seq > after_seq, ascending, at most min(limit, MAX_SYNC_PAGE).
        Raises BadRequest (after_seq < 0)."""
        ...

    async def timeline_head(self, owner: int) -> int:
        """``owner``'s newest timeline seq (0 when empty)."""
        ...
