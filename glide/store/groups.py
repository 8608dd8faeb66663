"""Group storage: the Protocol every backend implements, the records it exchanges, and the rules it enforces.

Semantics every backend shares (the docstrings are the contract, times are Unix milliseconds):

- Roles (GlideIM ``groupdao`` numbering): ``ROLE_OWNER`` 1, ``ROLE_ADMIN`` 2, ``ROLE_MEMBER`` 3. A group has
  exactly one owner until it is dissolved.
- The seq stream: every group has a ``last_seq`` (0 when created empty). Everything members must learn —
  chat messages *and* notices (membership changes, mutes, roles, transfer, dissolve, recall) — is stored as a
  ``GroupMessage`` that takes the group's next seq in the same transaction as the change itself, so seqs are
  contiguous (1, 2, 3, …), never repeat or skip (also across restarts), and a failed operation consumes none.
  A client that sees a gap pulls exactly the missing range; notices are told apart by ``kind``.
- Notices: ``kind == KIND_NOTICE``, ``type`` = one of the ``NOTICE_*`` codes, ``sender`` = the acting uid,
  ``content`` = ``notice_content(...)`` (a JSON object ``{"gid", "type", "uids", "by", ...extra}``).
- Authorization is checked by the store inside the transaction that makes the change (so a concurrent change
  cannot slip between check and write), with the pure functions of ``glide.group.rules`` so that every backend
  applies the same rules with the same messages. Denials raise ``NotAllowed``; a missing group raises
  ``GroupNotFound``; a dissolved group rejects every change and every send with ``NotAllowed``.
- Joining follows the group's ``join_policy`` (rules.check_join). A removed user is banned from the group
  until an owner or admin lifts it (``unban``): it can neither join nor be invited. A member muted when it
  leaves or is removed is muted again when it comes back. Adding users (create, invite) respects each
  one's blacklist / whitelist (glide.store.contacts): if any of them refuses the acting user, the call is
  refused naming them, and nothing changes.
- With ``history_from_join`` (the default for new groups), a member reads the seq stream (history, range)
  from its own ``joined_seq`` onwards; without it, from seq 1.
- ``mid`` arguments are fresh ids from the node's MidGenerator, used for the notice or message the operation
  stores; an operation that stores nothing leaves that id unused (ids need not be dense).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from glide.errors import AlreadyExists, GlideError, NotFound
from glide.records import quick_init

ROLE_OWNER = 1
ROLE_ADMIN = 2
ROLE_MEMBER = 3
ROLES = (ROLE_OWNER, ROLE_ADMIN, ROLE_MEMBER)

KIND_MESSAGE = 0
KIND_NOTICE = 1

# Notice types (``GroupMessage.type`` when ``kind == KIND_NOTICE``). 1/2 follow GlideIM's GroupNotify.
NOTICE_MEMBERS_ADDED = 1  # create (the initial members, owner included), join, invite; uids = the added
NOTICE_MEMBERS_REMOVED = 2  # removed by an admin or the owner; uids = the removed
NOTICE_MEMBER_LEFT = 3  # uids = [the member who left]
NOTICE_MEMBERS_MUTED = 4  # uids = the muted members
NOTICE_MEMBERS_UNMUTED = 5  # uids = the unmuted members
NOTICE_GROUP_MUTED = 6  # uids = []
NOTICE_GROUP_UNMUTED = 7  # uids = []
NOTICE_ROLE_CHANGED = 8  # uids = [target]; extra {"role": new role}
NOTICE_OWNER_TRANSFERRED = 9  # uids = [new owner]; extra {"from": old owner}; the old owner becomes an admin
NOTICE_DISSOLVED = 10  # uids = []
NOTICE_RECALLED = 11  # uids = [author of the recalled message]; extra {"mid": recalled mid, "seq": its seq}
NOTICE_SETTINGS_CHANGED = 12  # uids = []; extra {"join_policy": …, "history_from_join": 0 / 1}
NOTICE_TYPES = frozenset(range(1, 13))

# Who may join (the owner's choice): only by an admin's invitation (the default), by asking an admin who
# approves, or anyone at once.
JOIN_INVITE = 0
JOIN_APPROVAL = 1
JOIN_OPEN = 2
JOIN_POLICIES = {"invite": JOIN_INVITE, "approval": JOIN_APPROVAL, "open": JOIN_OPEN}

# Group ids never equal user ids (GlideIM's clients key every conversation by its id alone): groups are
# numbered from GROUP_ID_BASE + 1 (below 2**53, so JavaScript sees them exactly), users far below it.
GROUP_ID_BASE = 1_000_000_000_000
WORLD_GID = GROUP_ID_BASE  # the world channel's (glide.group.world)


def is_group_id(value: int) -> bool:
    return value >= GROUP_ID_BASE


MAX_GROUP_NAME = 64  # characters
MAX_GROUP_AVATAR = 512  # characters
MAX_GROUP_MEMBERS = 2000  # members per group, owner included
MAX_UIDS_PER_CALL = 200  # uids per invite / remove / mute call
MAX_GROUP_PAGE = 100  # messages per history / range page
MAX_GROUP_CONTENT = 65536  # characters of a group chat message's content


class GroupNotFound(NotFound):
    """The group does not exist (GlideIM code 3001)."""

    code = 3001


class MemberExists(AlreadyExists):
    """The user is already a member (GlideIM code 3002)."""

    code = 3002


@dataclass(frozen=True, slots=True)
class Group:
    """A group. ``last_seq`` / ``last_mid`` / ``last_msg_at`` describe the newest entry of its seq stream
    (0 when there is none). ``dissolved`` groups keep their rows: former members can still read history."""

    gid: int
    name: str
    avatar: str
    owner: int
    muted: bool
    dissolved: bool
    created_at: int
    last_seq: int
    last_mid: int
    last_msg_at: int
    join_policy: int = JOIN_INVITE
    history_from_join: bool = True  # members read the seq stream from their own join onwards


@dataclass(frozen=True, slots=True)
class GroupMember:
    """One membership. ``read_seq``: the last seq this member marked read (never above the group's last_seq).
    ``joined_seq``: the seq of the notice that added it (where its history starts if the group says so)."""

    gid: int
    uid: int
    role: int
    muted: bool
    joined_at: int
    read_seq: int
    joined_seq: int = 0


@dataclass(frozen=True, slots=True)
class JoinRequest:
    """A user asking to join a group whose policy is JOIN_APPROVAL."""

    gid: int
    uid: int
    created_at: int


@quick_init
@dataclass(frozen=True, slots=True)
class NewGroupMessage:
    """A chat message to a group; ``mid`` was proposed by the MidGenerator."""

    mid: int
    cli_mid: str
    gid: int
    sender: int
    type: int
    content: str
    send_at: int


@quick_init
@dataclass(frozen=True, slots=True)
class GroupMessage:
    """An entry of a group's seq stream: a chat message (``kind`` 0) or a notice (``kind`` 1).

    ``status`` 0 normal, 1 recalled (``recalled_by`` = who). ``cli_mid`` is "" for notices.
    """

    mid: int
    gid: int
    seq: int
    kind: int
    cli_mid: str
    sender: int
    type: int
    content: str
    send_at: int
    created_at: int
    status: int
    recalled_by: int | None


@quick_init
@dataclass(frozen=True, slots=True)
class StoredGroupMessage:
    """Result of storing one NewGroupMessage. ``duplicate``: (gid, sender, cli_mid) existed; ``message`` is
    that earlier row (its seq, not a new one). ``recipients``: the members when the message took its seq,
    ascending, read in the same transaction (the fan-out list); empty for a duplicate (already delivered)."""

    message: GroupMessage
    duplicate: bool
    recipients: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class GroupChange:
    """Result of a membership / settings change.

    ``group``: the group after the change. ``notice``: the stored notice (None when the call changed nothing,
    e.g. muting an already muted member). ``recipients``: who must be told — the members after the change
    plus those it removed (removed, left); every member for a dissolve. Ascending, each once.
    """

    group: Group
    notice: GroupMessage | None
    recipients: tuple[int, ...]
    pending: bool = False  # join under JOIN_APPROVAL: a request was stored; recipients = the owner and admins


@dataclass(frozen=True, slots=True)
class GroupReadState:
    """A member's position in one group: ``unread`` = last_seq - read_seq (never negative)."""

    gid: int
    last_seq: int
    last_mid: int
    last_msg_at: int
    read_seq: int
    unread: int


def notice_content(gid: int, notice_type: int, uids: Sequence[int], by: int, /, **extra: int) -> str:
    """The ``content`` of a notice: compact JSON, keys in this order, so every backend stores the same text."""
    body: dict[str, object] = {"gid": gid, "type": notice_type, "uids": list(uids), "by": by}
    body.update(extra)
    return json.dumps(body, separators=(",", ":"))


def renumbered_notices(notices: Sequence[tuple[int, str]]) -> list[tuple[str, int]]:
    """``(content, mid)`` of notices whose content names a group below GROUP_ID_BASE, moved above it (the
    group-id migration of both backends); key order and spacing stay as notice_content wrote them."""
    out: list[tuple[str, int]] = []
    for mid, content in notices:
        try:
            body = json.loads(content)
        except ValueError:
            continue
        gid = body.get("gid") if isinstance(body, dict) else None
        if isinstance(gid, int) and not isinstance(gid, bool) and 0 < gid < GROUP_ID_BASE:
            body["gid"] = gid + GROUP_ID_BASE
            out.append((json.dumps(body, separators=(",", ":")), mid))
    return out


class GroupStore(Protocol):
    async def create_group(
        self,
        *,
        owner: int,
        name: str,
        avatar: str,
        members: Sequence[int],
        mid: int,
        join_policy: int = JOIN_INVITE,
        history_from_join: bool = True,
    ) -> GroupChange:
        """Create a group owned by ``owner`` with ``members`` (deduplicated; the owner is added if absent, as
        ROLE_OWNER; the others as ROLE_MEMBER). Stores a NOTICE_MEMBERS_ADDED notice (seq 1, uids = every
        member, owner first) with ``mid``. Raises UserNotFound (nothing stored) naming the first unknown uid,
        NotAllowed naming the members who refuse ``owner`` (blacklist / whitelist), BadRequest if name/avatar
        are too long, members exceed MAX_GROUP_MEMBERS or join_policy is not one of JOIN_POLICIES."""
        ...

    async def group(self, gid: int) -> Group | None: ...

    async def groups(self, gids: Sequence[int]) -> list[Group]:
        """The existing groups among ``gids`` (dissolved ones included), in the order first asked, each once."""
        ...

    async def member(self, gid: int, uid: int) -> GroupMember | None: ...

    async def members(self, gid: int) -> list[GroupMember]:
        """Every member (at most MAX_GROUP_MEMBERS): owner first, then admins, then members, each by
        joined_at then uid. Empty for an unknown gid."""
        ...

    async def member_uids(self, gid: int) -> list[int]:
        """The members' uids, ascending (the fan-out list)."""
        ...

    async def user_groups(self, uid: int) -> list[int]:
        """The gids ``uid`` is a member of (dissolved groups included), ascending."""
        ...

    async def join(self, gid: int, uid: int, *, mid: int) -> GroupChange:
        """``uid`` asks to join. JOIN_OPEN: joins as ROLE_MEMBER at once. JOIN_APPROVAL: a JoinRequest is
        stored (again: refreshed) and the change has ``pending`` set, no notice, and the owner and admins as
        recipients. JOIN_INVITE: NotAllowed. Raises GroupNotFound, NotAllowed (dissolved, full, invite-only,
        banned), MemberExists, UserNotFound."""
        ...

    async def join_requests(self, gid: int, by: int) -> list[JoinRequest]:
        """The pending requests of a group, oldest first (owner and admins only: rules.check_manage)."""
        ...

    async def decide_join(self, gid: int, by: int, uid: int, accept: bool, *, mid: int) -> GroupChange:
        """An owner or admin accepts (``uid`` joins as ROLE_MEMBER, notice by ``by``) or rejects (no notice)
        the pending request of ``uid``; either way the request is gone. Raises GroupNotFound, NotAllowed
        (rules.check_manage; full), NotFound (no such request)."""
        ...

    async def unban(self, gid: int, by: int, uids: Sequence[int]) -> list[int]:
        """An owner or admin lifts the ban of removed users; returns those that were banned. No notice."""
        ...

    async def set_settings(
        self, gid: int, by: int, *, join_policy: int | None = None, history_from_join: bool | None = None, mid: int
    ) -> GroupChange:
        """The owner changes the join policy and/or history visibility; a NOTICE_SETTINGS_CHANGED notice
        when anything changed. Raises GroupNotFound, NotAllowed (not the owner; dissolved), BadRequest."""
        ...

    async def invite(self, gid: int, by: int, uids: Sequence[int], *, mid: int) -> GroupChange:
        """``by`` (owner or admin) adds ``uids`` as ROLE_MEMBER. Uids that are already members are skipped;
        raises MemberExists if all are. Raises GroupNotFound, NotAllowed (rules.check_manage; dissolved; the
        group would exceed MAX_GROUP_MEMBERS; a user banned from the group or refusing ``by``, named, nothing
        changed), UserNotFound naming the first unknown uid (nothing stored), BadRequest (empty list or more
        than MAX_UIDS_PER_CALL)."""
        ...

    async def remove(self, gid: int, by: int, uids: Sequence[int], *, mid: int) -> GroupChange:
        """``by`` removes ``uids`` (rules.check_remove for each: not oneself, never the owner; an admin removes
        only plain members). Raises NotFound naming the uids that are not members (nothing changed),
        GroupNotFound, NotAllowed, BadRequest (empty list or more than MAX_UIDS_PER_CALL). Removed members'
        read state is deleted; the removed are among the recipients."""
        ...

    async def leave(self, gid: int, uid: int, *, mid: int) -> GroupChange:
        """``uid`` leaves. Raises GroupNotFound, NotAllowed (not a member; the owner must transfer or dissolve
        first; dissolved). ``uid`` is among the recipients."""
        ...

    async def dissolve(self, gid: int, by: int, *, mid: int) -> GroupChange:
        """The owner dissolves the group: ``dissolved`` becomes true, memberships stay (read-only history),
        every later change or send is refused. Raises GroupNotFound, NotAllowed (not the owner; already
        dissolved)."""
        ...

    async def set_role(self, gid: int, by: int, uid: int, role: int, *, mid: int) -> GroupChange:
        """The owner makes a member ROLE_ADMIN or ROLE_MEMBER (rules.check_set_role). Same role: no notice.
        Raises GroupNotFound, NotFound (``uid`` not a member), NotAllowed, BadRequest (role not admin/member)."""
        ...

    async def mute_members(self, gid: int, by: int, uids: Sequence[int], muted: bool, *, mid: int) -> GroupChange:
        """Mute or unmute members (rules.check_mute for each: never the owner, not oneself; an admin mutes only
        plain members). Only the uids whose flag changes are named in the notice; none changed: no notice.
        Raises GroupNotFound, NotFound naming non-members, NotAllowed, BadRequest (empty / too many)."""
        ...

    async def mute_group(self, gid: int, by: int, muted: bool, *, mid: int) -> GroupChange:
        """Owner or admin mutes / unmutes the whole group (plain members cannot send while it is muted; the
        owner and admins still can). Unchanged: no notice. Raises GroupNotFound, NotAllowed."""
        ...

    async def transfer(self, gid: int, by: int, to: int, *, mid: int) -> GroupChange:
        """The owner hands ownership to member ``to`` (rules.check_transfer); the old owner becomes ROLE_ADMIN,
        ``to`` becomes ROLE_OWNER and is unmuted. Raises GroupNotFound, NotFound (``to`` not a member),
        NotAllowed."""
        ...

    async def ensure_channel(self, gid: int, name: str) -> Group:
        """The system channel ``gid`` (the world channel, WORLD_GID), created if missing: owned by nobody
        (owner 0), open, its whole history readable by its members. Returns it."""
        ...

    async def enroll(self, gid: int, uids: Sequence[int]) -> int:
        """Make users members of a system channel without a notice and without taking a seq (everyone is in
        the world channel: being added is not news); they start with everything read. Members stay as they
        are. Returns how many joined."""
        ...

    async def store_group_messages(self, messages: Sequence[NewGroupMessage]) -> list[StoredGroupMessage | GlideError]:
        """:meth:`store_group_message` for a batch, in one transaction: one result per message, in order, the
        message stored (or the earlier one) or the error it alone would have raised. A group's messages take
        its next seqs in the batch's order; a message repeating a key earlier in the batch is its duplicate.
        A failure of the store itself (StorageError) fails the whole call: nothing of it was stored."""
        ...

    async def store_group_message(self, message: NewGroupMessage) -> StoredGroupMessage:
        """Store a chat message with the group's next seq, durable (survives kill -9) when this returns.

        Idempotent on (gid, sender, cli_mid) — an empty cli_mid never dedups; a duplicate returns the earlier
        row (even if the sender has since been muted or removed). Otherwise checked in the same transaction
        (rules.check_send): GroupNotFound, NotAllowed (not a member, dissolved, member muted, group muted for
        a plain member). BadRequest if a field is malformed (type outside int32, content over
        MAX_GROUP_CONTENT, cli_mid over 64 characters). A refused or failed message consumes no seq.
        The world channel's ``recipients`` are empty: its members are everyone, its fan-out every online
        session."""
        ...

    async def group_message(self, gid: int, mid: int) -> GroupMessage | None: ...

    async def recall(self, gid: int, mid: int, by: int, *, notice_mid: int, not_before_ms: int) -> GroupChange:
        """Mark chat message ``mid`` recalled by ``by`` and store a NOTICE_RECALLED notice with ``notice_mid``.
        The author (still a member) may recall while created_at >= not_before_ms, else TooLate; the owner
        and admins may recall any member's message at any time. Already recalled: returns notice None.
        Raises GroupNotFound, NotFound (no such chat message in this group; notices cannot be recalled),
        NotAllowed (not a member; neither the author nor an admin/owner; dissolved)."""
        ...

    async def history(self, gid: int, uid: int, *, before_seq: int = 0, limit: int = 20) -> list[GroupMessage]:
        """Entries with seq < before_seq (before_seq <= 0 means the newest), newest first, at most
        min(limit, MAX_GROUP_PAGE), none before the member's history start (``history_from_join``). Only
        members read: raises GroupNotFound, NotAllowed."""
        ...

    async def seq_range(
        self, gid: int, uid: int, *, from_seq: int, to_seq: int, limit: int = MAX_GROUP_PAGE
    ) -> list[GroupMessage]:
        """Entries with from_seq <= seq <= to_seq, ascending (gap fill order), at most min(limit,
        MAX_GROUP_PAGE): a longer range is continued from the last seq returned + 1. Seqs before the member's
        history start (``history_from_join``) are left out. Only members read:
        raises GroupNotFound, NotAllowed; BadRequest if from_seq < 1 or to_seq < from_seq."""
        ...

    async def mark_read(self, gid: int, uid: int, seq: int) -> GroupReadState:
        """Raise ``uid``'s read_seq to min(seq, last_seq) (it never goes down). Raises GroupNotFound,
        NotAllowed (not a member), BadRequest (seq < 0)."""
        ...

    async def read_states(self, uid: int, gids: Sequence[int] | None = None) -> list[GroupReadState]:
        """``uid``'s read state in each of ``gids`` (in the order asked, each once), or in all its groups
        (ascending gid) when None. Raises GroupNotFound / NotAllowed for a gid that does not exist / that
        ``uid`` is not a member of."""
        ...

    async def last_mid(self) -> int:
        """The largest mid stored in any group (0 if none): part of the MidGenerator seed."""
        ...
