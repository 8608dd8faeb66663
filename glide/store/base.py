"""Storage interfaces by business area, and the records they exchange.

Every backend (SQLite now, PostgreSQL later) implements these Protocols with the same semantics; the
docstrings are the contract. Times are Unix milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from glide.records import quick_init
from glide.store.groups import GroupStore

if TYPE_CHECKING:  # they import the records above
    from glide.store.contacts import ContactStore
    from glide.store.conversations import ConversationStore

STATUS_NORMAL = 0
STATUS_RECALLED = 1
MAX_HISTORY_PAGE = 100
MAX_INBOX_PAGE = 1000


@dataclass(frozen=True, slots=True)
class User:
    uid: int
    account: str
    email: str | None
    nickname: str
    avatar: str
    password_hash: str
    message_deliver_secret: str
    guest: bool
    created_at: int


@quick_init
@dataclass(frozen=True, slots=True)
class NewChat:
    """A 1:1 message to store; ``mid`` was proposed by the MidGenerator."""

    mid: int
    cli_mid: str
    sender: int
    receiver: int
    type: int
    content: str
    send_at: int


@quick_init
@dataclass(frozen=True, slots=True)
class ChatMessage:
    """A stored 1:1 message. ``status`` 0 normal, 1 recalled.

    ``sender_seq`` / ``receiver_seq``: where the message stands in its sender's and its receiver's log (the
    same number for a message to oneself; glide.store.conversations). Positions are allocated when the
    message commits, so each user's log is in commit order; 0 for a message that was not stored."""

    mid: int
    cli_mid: str
    sender: int
    receiver: int
    type: int
    content: str
    send_at: int
    created_at: int
    status: int
    recalled_by: int | None
    sender_seq: int = 0
    receiver_seq: int = 0


@quick_init
@dataclass(frozen=True, slots=True)
class StoredChat:
    """Result of storing one NewChat. ``duplicate``: (sender, cli_mid) existed; ``message`` is that earlier row.
    ``refused``: the receiver refuses the sender (blacklist / whitelist-only, glide.store.contacts): nothing
    was stored and ``message`` is what would have been."""

    message: ChatMessage
    duplicate: bool
    refused: bool = False


class UserStore(Protocol):
    async def create_user(
        self,
        *,
        account: str,
        email: str | None,
        nickname: str,
        avatar: str,
        password_hash: str,
        guest: bool = False,
    ) -> User:
        """Create a user with a fresh ``message_deliver_secret``.

        Accounts and e-mails share one case-insensitive login namespace: raises AlreadyExists if the
        account or e-mail equals any existing user's account or e-mail.
        """
        ...

    async def user(self, uid: int) -> User | None: ...

    async def user_by_login(self, login: str) -> User | None:
        """The user whose account or e-mail is ``login`` (case-insensitive)."""
        ...

    async def users(self, uids: Sequence[int]) -> list[User]:
        """The existing users among ``uids``, in the order first asked, each once."""
        ...

    async def update_profile(self, uid: int, *, nickname: str | None = None, avatar: str | None = None) -> None:
        """Change the given fields; raises UserNotFound."""
        ...

    async def revoke_token(self, jti: str, expires_at_ms: int) -> None:
        """Remember a revoked token id until it would have expired anyway."""
        ...

    async def is_token_revoked(self, jti: str) -> bool: ...

    async def end_session(self, uid: int, device: str, at_ms: int) -> None:
        """Logout: every token and credential of ``(uid, device)`` issued at or before ``at_ms`` is dead."""
        ...

    async def session_ended_at(self, uid: int, device: str) -> int:
        """When ``(uid, device)`` last logged out (Unix ms), 0 if never."""
        ...


class MessageStore(Protocol):
    """1:1 messages as an append-only log.

    A message is one appended row. What a receiver still has to get is not a row per message but a cursor
    over its log (glide.store.message_checks.InboxCursor): every incoming message at or below the cursor is
    acknowledged, plus the few acknowledged out of order above it. Pending ("the inbox") = the incoming
    messages above the cursor that are not acknowledged, in log (commit) order.
    """

    async def store_chats(self, chats: Sequence[NewChat]) -> list[StoredChat]:
        """Store a batch, one result per input in order, durable (survives kill -9) when this returns.

        Idempotent on (sender, cli_mid) — an empty cli_mid never dedups — also within one batch. Raises
        BadRequest (nothing stored) if any message is malformed. A duplicate is answered before the refusal
        check; a message the receiver refuses is not stored (``refused``). A new message takes the next
        position in its sender's and its receiver's log (glide.store.conversations) and is pending for the
        receiver until acknowledged.
        """
        ...

    async def chat(self, mid: int) -> ChatMessage | None: ...

    async def chat_by_cli_mid(self, sender: int, cli_mid: str) -> ChatMessage | None: ...

    async def inbox(self, uid: int, *, after_seq: int = 0, limit: int = 200) -> list[ChatMessage]:
        """Pending messages to ``uid`` with receiver_seq > after_seq, in log order (ascending receiver_seq),
        at most min(limit, 1000): page on with ``after_seq`` = the last one's receiver_seq."""
        ...

    async def ack_inbox(self, uid: int, mids: Sequence[int]) -> list[ChatMessage]:
        """Acknowledge messages of ``uid``'s inbox; returns those that were still pending, in log order."""
        ...

    async def ack_inboxes(self, requests: Sequence[tuple[int, Sequence[int]]]) -> list[list[ChatMessage]]:
        """``ack_inbox`` for many ``(uid, mids)`` in one write; the answers in the order asked."""
        ...

    async def clear_inbox(self, uid: int, up_to_mid: int | None = None) -> int:
        """Acknowledge all of ``uid``'s pending messages (or those with mid <= up_to_mid); returns how many."""
        ...

    async def recall(self, mid: int, by_uid: int, *, not_before_ms: int) -> ChatMessage:
        """Mark a message recalled by its author. Raises NotFound, NotAllowed (not the author), TooLate
        (created_at < not_before_ms). Idempotent: recalling a recalled message returns it unchanged. A recall
        (not a repeated one) moves the message to the end of both logs, so a client that syncs learns of it;
        the receiver's acknowledgement carries over (pending stays pending, acknowledged stays so)."""
        ...

    async def history(self, uid: int, peer: int, *, before_mid: int = 0, limit: int = 20) -> list[ChatMessage]:
        """Messages between uid and peer (both directions), newest first, mid < before_mid (0 = newest),
        at most min(limit, 100)."""
        ...

    async def last_mid(self) -> int:
        """The largest stored mid (0 if none): seed for MidGenerator(after=…) so ids never repeat."""
        ...


class Store(Protocol):
    # Read-only members, so that a backend may declare its own concrete store classes.
    @property
    def users(self) -> UserStore: ...

    @property
    def messages(self) -> MessageStore: ...

    @property
    def groups(self) -> GroupStore: ...

    @property
    def contacts(self) -> ContactStore: ...

    @property
    def conversations(self) -> ConversationStore: ...

    def pace(self, round_: Callable[[], None]) -> bool:
        """Run ``round_``, a dispatcher round that may write, when the store can next commit: in the next tick
        when it could now (False), else just before its next transaction (True: the writes of what arrives
        meanwhile share it)."""
        ...

    async def claim_node(self, node_id: int) -> int:
        """Hold ``node_id`` for this server while the store is open (mids are unique only per node id), or
        with ``AUTO_NODE`` the first id no live server holds; returns the id held. Raises ConfigError if
        another live server holds it (or all of them)."""
        ...

    async def keep_node(self) -> None:
        """Check that this server still holds its node id (a store that lost the connection holding it takes
        it again); ConfigError if another server took it meanwhile: this one must stop."""
        ...

    async def close(self) -> None:
        """Flush pending writes, then release the backend (and the node id). Later calls raise StorageError."""
        ...
