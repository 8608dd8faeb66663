"""Conversations (the recent list, unread counts) and the per-user timeline that sync reads.

Semantics every backend shares (the docstrings are the contract; times are Unix milliseconds):

- The message flow keeps both up to date by itself: ``MessageStore.store_chats``, in the transaction that
  stores a new 1:1 message, (1) skips a message whose receiver refuses its sender
  (``ContactStore.refused``: nothing stored, ``StoredChat.refused`` set), (2) upserts the sender's and
  the receiver's conversation rows (last_mid, updated_at = created_at; the receiver's ``unread`` + 1), and
  (3) appends the message to the sender's and the receiver's timeline. ``MessageStore.recall`` appends the
  recalled message to both timelines again, so a client that syncs learns of the recall; it changes no
  unread count. A message to oneself makes one conversation row and one timeline entry, never unread.
- ``unread`` counts the peer's messages with mid > ``read_mid``. Reading is explicit (``mark_read``): an
  ``ack.request`` is a delivery receipt (clients send it for every message they receive, whether or not
  anyone looked at it) and does not count as read.
- The timeline of a user is a sequence 1, 2, 3, … without gaps, in commit order: a reader that sees entry
  n has seen every entry below n, so ``after_seq`` is a complete cursor. (Message ids are time-ordered but
  a message with a smaller mid may commit after one with a larger mid; a mid is no safe cursor.)
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
    """Entry ``seq`` of a user's timeline: a message as it is now (a recalled one has status 1)."""

    seq: int
    message: ChatMessage


@dataclass(frozen=True, slots=True)
class TimelinePage:
    """Entries after the cursor, ascending seq. ``cursor``: pass it as ``after_seq`` next time (the last
    entry's seq, or the given cursor when there is none). ``head``: the user's newest seq at read time;
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
