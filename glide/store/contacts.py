"""Contacts storage: the Protocol every backend implements and the records it exchanges.

Semantics every backend shares (the docstrings are the contract; times are Unix milliseconds):

- A contact is mutual: accepting a request creates both rows (requester -> target and target -> requester)
  in one transaction; deleting removes both. Each side has its own ``remark`` and ``last_mid``.
- A contact request goes from ``requester`` to ``target`` and is pending until the target answers it.
  Asking again refreshes the pending request (its remark and comment); if the target had already asked the
  requester, the two requests meet and the contact is made at once (both requests become accepted).
- Privacy relations (GlideIM's ``im_relative_user``): ``owner`` puts ``other`` on its blacklist
  (``RELATION_BLACK``) or whitelist (``RELATION_WHITE``); one relation per (owner, other), so adding to
  one list removes from the other. An owner in whitelist-only mode accepts messages only from its
  whitelist. ``refused`` is the rule the message path applies: receiver refuses sender when the sender is
  on the receiver's blacklist, or the receiver is whitelist-only and the sender is not on its whitelist.
  Nobody refuses themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from glide.errors import AlreadyExists

CONTACT_USER = 1  # GlideIM's contact type for a user (2 is a group; groups are glide.store.groups')

REQUEST_PENDING = 0
REQUEST_ACCEPTED = 1
REQUEST_REJECTED = 2

RELATION_WHITE = 1  # GlideIM relative_user type 1
RELATION_BLACK = 2  # GlideIM relative_user type 2
RELATIONS = (RELATION_WHITE, RELATION_BLACK)

MAX_CONTACTS = 5000  # contacts per user: the list is answered whole
MAX_RELATIONS = 5000  # entries per list (blacklist, whitelist) and user
MAX_PENDING_REQUESTS = 500  # incoming pending requests listed; older ones stay answerable
MAX_REMARK = 64  # characters
MAX_COMMENT = 256  # characters


class AlreadyContacts(AlreadyExists):
    """The two users are already contacts (GlideIM code 2003)."""

    code = 2003


@dataclass(frozen=True, slots=True)
class Contact:
    """``owner``'s entry for ``peer``."""

    owner: int
    peer: int
    remark: str
    last_mid: int
    created_at: int
    updated_at: int


@dataclass(frozen=True, slots=True)
class ContactRequest:
    """A request from ``requester`` to ``target``. ``remark``: the requester's remark for the target, applied
    when accepted; ``comment``: the requester's message; ``status``: one of ``REQUEST_*``."""

    requester: int
    target: int
    remark: str
    comment: str
    status: int
    created_at: int
    updated_at: int


@dataclass(frozen=True, slots=True)
class RequestOutcome:
    """Result of asking or answering: the request after the call, and the new contact rows (owner's first)
    when the two became contacts by it, else None."""

    request: ContactRequest
    contacts: tuple[Contact, Contact] | None


@dataclass(frozen=True, slots=True)
class Relation:
    """``owner`` put ``other`` on a list (``type`` is one of ``RELATION_*``)."""

    owner: int
    other: int
    type: int
    created_at: int


class ContactStore(Protocol):
    async def request_contact(
        self, requester: int, target: int, *, remark: str, comment: str, immediate: bool = False
    ) -> RequestOutcome:
        """Ask ``target`` to become a contact. Creates or refreshes the pending request; when ``target`` has a
        pending request to ``requester``, or with ``immediate`` (GlideIM's contacts/add: no approval), the
        request is accepted and the contact made at once (``contacts`` set).
        Raises BadRequest (requester == target, remark or comment too long), UserNotFound (either user),
        AlreadyContacts, NotAllowed (either side has MAX_CONTACTS contacts, or ``target`` refuses
        ``requester`` — see the module doc)."""
        ...

    async def answer_request(self, requester: int, target: int, *, accept: bool, remark: str) -> RequestOutcome:
        """``target`` answers ``requester``'s pending request. Accept: both contact rows are created, the
        target's with ``remark``. Raises NotFound (no pending request), NotAllowed (MAX_CONTACTS reached),
        BadRequest (remark too long)."""
        ...

    async def pending_requests(self, target: int, *, limit: int = MAX_PENDING_REQUESTS) -> list[ContactRequest]:
        """Pending requests to ``target``, newest first, at most min(limit, MAX_PENDING_REQUESTS)."""
        ...

    async def sent_requests(self, requester: int, *, limit: int = MAX_PENDING_REQUESTS) -> list[ContactRequest]:
        """``requester``'s own requests that are still pending, newest first, bounded like pending_requests."""
        ...

    async def contacts(self, owner: int) -> list[Contact]:
        """Every contact of ``owner`` (at most MAX_CONTACTS), oldest first."""
        ...

    async def contact(self, owner: int, peer: int) -> Contact | None: ...

    async def delete_contact(self, owner: int, peer: int) -> bool:
        """Remove the contact in both directions; False if they were not contacts."""
        ...

    async def set_remark(self, owner: int, peer: int, remark: str) -> Contact:
        """Change ``owner``'s remark for ``peer``. Raises NotFound (not a contact), BadRequest (too long)."""
        ...

    async def set_last_mid(self, owner: int, peer: int, mid: int) -> Contact:
        """Record the last message ``owner`` has seen with ``peer`` (GlideIM's contacts/update/mid); it never
        goes down. Raises NotFound (not a contact), BadRequest (mid < 0)."""
        ...

    async def add_relations(self, owner: int, kind: int, others: Sequence[int]) -> list[int]:
        """Put ``others`` on ``owner``'s list ``kind`` (moving them off the other list). Returns the uids
        whose relation changed, in the order given. Raises BadRequest (``owner`` among them, unknown
        kind, more than MAX_RELATIONS in the request or on the list afterwards), UserNotFound naming the
        first unknown uid (nothing changed)."""
        ...

    async def remove_relations(self, owner: int, kind: int, others: Sequence[int]) -> list[int]:
        """Take ``others`` off ``owner``'s list ``kind``; returns those that were on it, in the order given."""
        ...

    async def relations(self, owner: int, kind: int) -> list[Relation]:
        """``owner``'s list ``kind``, oldest first (at most MAX_RELATIONS)."""
        ...

    async def set_whitelist_only(self, owner: int, enabled: bool) -> None:
        """Turn whitelist-only mode on or off for ``owner``."""
        ...

    async def whitelist_only(self, owner: int) -> bool: ...

    async def refused(self, pairs: Sequence[tuple[int, int]]) -> set[tuple[int, int]]:
        """The ``(sender, receiver)`` pairs among ``pairs`` whose receiver refuses the sender (one round trip
        for the whole batch)."""
        ...
