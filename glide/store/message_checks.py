"""What every store backend shares on the message path: input checks (the same input is refused with the same
messages, before the database is touched) and the rules of the inbox cursor."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from operator import attrgetter

from glide.errors import BadRequest, NotAllowed, NotFound, TooLate
from glide.store.base import STATUS_RECALLED, ChatMessage, NewChat
from glide.store.checks import INT64_MAX, INT64_MIN, check_int, check_text, is_id


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True


def check_new_chats(chats: Sequence[NewChat]) -> None:
    """Raise BadRequest naming the first malformed field of the batch."""
    # The usual batch (fields from the decoder: exact ints and ASCII text) passes one expression per chat;
    # anything else goes the field-by-field way below, which names the field.
    for c in chats:
        if not (
            type(c.mid) is int
            and type(c.sender) is int
            and type(c.receiver) is int
            and type(c.type) is int
            and type(c.send_at) is int
            and type(c.cli_mid) is str
            and type(c.content) is str
            and 0 < c.mid <= INT64_MAX
            and 0 < c.sender <= INT64_MAX
            and 0 < c.receiver <= INT64_MAX
            and INT64_MIN <= c.type <= INT64_MAX
            and INT64_MIN <= c.send_at <= INT64_MAX
            and (c.cli_mid.isascii() or _encodes(c.cli_mid))
            and (c.content.isascii() or _encodes(c.content))
        ):
            break
    else:
        return
    for i, c in enumerate(chats):
        try:  # the field's place in the batch is written only into an error (not formatted per message)
            check_int(c.mid, "mid", 1)
            check_int(c.sender, "sender", 1)
            check_int(c.receiver, "receiver", 1)
            check_int(c.type, "type")
            check_int(c.send_at, "send_at")
            check_text(c.cli_mid, "cli_mid")
            check_text(c.content, "content")
        except BadRequest as e:
            raise BadRequest(f"chats[{i}].{e.message}") from None


def ack_requests(requests: Sequence[tuple[int, Sequence[int]]]) -> list[tuple[int, list[int]]]:
    """``(uid, mids)`` pairs for ``ack_inboxes``: each uid an int64, its mids distinct and ascending (anything
    that is not an id cannot be stored, so cannot be pending: dropped)."""
    out: list[tuple[int, list[int]]] = []
    for uid, mids in requests:
        if not isinstance(uid, int) or isinstance(uid, bool) or not INT64_MIN <= uid <= INT64_MAX:
            raise BadRequest(f"uid: expected an integer in {INT64_MIN}..{INT64_MAX}, got {uid!r:.40}")
        out.append((uid, sorted({m for m in mids if is_id(m)})))
    return out


def check_recall(m: ChatMessage | None, mid: int, by_uid: int, not_before_ms: int) -> ChatMessage:
    """``m`` if ``by_uid`` may recall it (already recalled: nothing to do, see its status); raises NotFound,
    NotAllowed (not the author), TooLate (created before ``not_before_ms``)."""
    if m is None:
        raise NotFound(f"message {mid} not found")
    if m.sender != by_uid:
        raise NotAllowed("only the sender can recall a message")
    if m.status != STATUS_RECALLED and m.created_at < not_before_ms:
        raise TooLate("too late to recall this message")
    return m


def recalled(m: ChatMessage, by_uid: int, sender_seq: int, receiver_seq: int) -> ChatMessage:
    """``m`` recalled by ``by_uid``, moved to those log positions."""
    return ChatMessage(
        m.mid, m.cli_mid, m.sender, m.receiver, m.type, m.content, m.send_at, m.created_at, STATUS_RECALLED,
        by_uid, sender_seq, receiver_seq,
    )  # fmt: skip


# An empty set costs 216 bytes; most receivers acknowledge in order and have nothing acknowledged above their
# cursor, so they share this one (an out-of-order acknowledgement makes a set of their own).
NO_ACKS: frozenset[int] = frozenset()
_receiver_seq = attrgetter("receiver_seq")


def _above(acked: Iterable[int], cursor: int) -> set[int] | frozenset[int]:
    return {s for s in acked if s > cursor} or NO_ACKS


class InboxCursor:
    """What one receiver has acknowledged, over its log positions (``receiver_seq``): every incoming message
    at or below ``cursor``, plus the positions in ``acked`` above it (acknowledged out of order). Pending:
    incoming above the cursor and not in ``acked``.

    Acknowledging in order (the usual case) keeps ``acked`` empty: the cursor moves past each message.
    ``advance`` needs the receiver's next incoming positions above the cursor (``walk_limit`` of them) —
    positions in between belong to messages the receiver sent, or were left by a recall (which moves a
    message to the end of both logs)."""

    __slots__ = ("acked", "cursor")

    def __init__(self, cursor: int = 0, acked: Iterable[int] = ()) -> None:
        self.cursor = cursor
        self.acked = _above(acked, cursor)

    @classmethod
    def decode(cls, cursor: int, acked: str) -> InboxCursor:
        """From the stored form (``acked``: positions separated by spaces)."""
        return cls(cursor, (int(s) for s in acked.split()))

    def encode(self) -> str:
        return " ".join(map(str, sorted(self.acked)))

    def union(self, other: InboxCursor) -> InboxCursor:
        """What either acknowledged (two nodes' views of one receiver: each only ever grows)."""
        return InboxCursor(max(self.cursor, other.cursor), (*self.acked, *other.acked))

    def copy(self) -> InboxCursor:
        return InboxCursor(self.cursor, self.acked)

    def is_pending(self, seq: int) -> bool:
        return seq > self.cursor and seq not in self.acked

    def ack(self, seq: int) -> bool:
        """Acknowledge the incoming message at ``seq``; False if it was not pending."""
        if not self.is_pending(seq):
            return False
        acked = self.acked
        if isinstance(acked, set):
            acked.add(seq)
        else:
            self.acked = {*acked, seq}
        return True

    @property
    def walk_limit(self) -> int:
        """How many incoming positions above the cursor ``advance`` needs to see."""
        return len(self.acked) + 1

    def advance(self, incoming: Iterable[int]) -> None:
        """Move the cursor over the acknowledged prefix of ``incoming`` (ascending positions above it)."""
        if not self.acked:
            return
        for seq in incoming:
            if seq not in self.acked:
                break
            self.cursor = seq
        self.acked = _above(self.acked, self.cursor)

    def settle(self, first_pending: int | None) -> None:
        """``advance`` for a writer that knows the receiver's first pending incoming position (None: nothing
        is pending): every incoming position below it is acknowledged, so the cursor moves to the largest
        acknowledged one there."""
        below = [a for a in self.acked if first_pending is None or a < first_pending]
        if below:
            self.cursor = max(below)
            self.acked = _above(self.acked, self.cursor)

    def acknowledge(self, uid: int, mids: Iterable[int], found: dict[int, ChatMessage]) -> list[ChatMessage]:
        """Acknowledge ``uid``'s messages among ``mids`` (looked up in ``found``); those that were pending, in
        log order."""
        ack = self.ack
        acked = [m for mid in mids if (m := found.get(mid)) is not None and m.receiver == uid and ack(m.receiver_seq)]
        if len(acked) > 1:
            acked.sort(key=_receiver_seq)
        return acked

    def page(self, rows: Iterable[ChatMessage], limit: int) -> list[ChatMessage]:
        """The pending ones of the incoming ``rows`` (read from above the cursor, ``limit + len(acked)`` of them:
        at most len(acked) are acknowledged, so one read fills the page)."""
        return [m for m in rows if m.receiver_seq not in self.acked][:limit]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, InboxCursor) and (self.cursor, self.acked) == (other.cursor, other.acked)

    def __repr__(self) -> str:
        return f"InboxCursor({self.cursor}, {sorted(self.acked)})"
