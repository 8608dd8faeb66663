"""Who may do what in a group: pure checks every store backend runs inside the transaction of the change.

Each check raises NotAllowed (or MemberExists / NotFound where stated) with a message the client sees; it
returns None when the action is allowed. ``actor`` / ``target`` are the current membership rows (None: not a
member). The rules:

- Reading (history, range, read state) and sending: members only. Sending is refused in a dissolved group,
  to a muted member, and to a plain member while the whole group is muted (the owner and admins still send).
- Managing (invite, remove, mute members or the group): the owner and admins. Nobody acts on themself
  through remove / mute (members leave instead); nobody removes or mutes the owner; an admin removes or mutes
  only plain members, the owner anyone else.
- Roles (make / unmake admin), transfer and dissolve: the owner only. The owner cannot leave: transfer or
  dissolve first. Transfer goes to another current member.
- Recall: the author while the recall window is open, or the owner / an admin at any time; notices cannot be
  recalled.
- Joining: JOIN_OPEN groups take anyone not banned, JOIN_APPROVAL groups take a request an owner or admin
  decides, JOIN_INVITE groups (the default) only invitations. A user removed from a group is banned from it
  until an owner or admin lifts the ban. Settings (join policy, history visibility): the owner.
- A dissolved group accepts no change at all.
"""

from __future__ import annotations

from collections.abc import Sequence

from glide.errors import NotAllowed, NotFound, TooLate
from glide.store.groups import (
    JOIN_INVITE,
    JOIN_OPEN,
    KIND_MESSAGE,
    ROLE_ADMIN,
    ROLE_MEMBER,
    ROLE_OWNER,
    Group,
    GroupMember,
    GroupMessage,
)


def is_manager(member: GroupMember | None) -> bool:
    """Owner or admin."""
    return member is not None and member.role in (ROLE_OWNER, ROLE_ADMIN)


def check_open(group: Group) -> None:
    if group.dissolved:
        raise NotAllowed(f"group {group.gid} is dissolved")


def check_member(group: Group, member: GroupMember | None) -> GroupMember:
    """Reading needs membership (also in a dissolved group); returns the row."""
    if member is None:
        raise NotAllowed(f"you are not a member of group {group.gid}")
    return member


def check_send(group: Group, member: GroupMember | None) -> None:
    check_open(group)
    row = check_member(group, member)
    if row.muted:
        raise NotAllowed(f"you are muted in group {group.gid}")
    if group.muted and row.role == ROLE_MEMBER:
        raise NotAllowed(f"group {group.gid} is muted")


def check_manage(group: Group, actor: GroupMember | None) -> GroupMember:
    """Invite, remove, mute: owner or admin of an open group; returns the actor's row."""
    check_open(group)
    row = check_member(group, actor)
    if not is_manager(row):
        raise NotAllowed(f"only the owner or an admin may manage group {group.gid}")
    return row


def check_owner(group: Group, actor: GroupMember | None, what: str) -> GroupMember:
    check_open(group)
    row = check_member(group, actor)
    if row.role != ROLE_OWNER:
        raise NotAllowed(f"only the owner of group {group.gid} may {what}")
    return row


def _check_acts_on(group: Group, actor: GroupMember, target: GroupMember, verb: str) -> None:
    if target.uid == actor.uid:
        raise NotAllowed(f"you cannot {verb} yourself")
    if target.role == ROLE_OWNER:
        raise NotAllowed(f"nobody may {verb} the owner of group {group.gid}")
    if actor.role == ROLE_ADMIN and target.role == ROLE_ADMIN:
        raise NotAllowed(f"an admin cannot {verb} another admin (user {target.uid})")


def check_remove(group: Group, actor: GroupMember | None, target: GroupMember) -> None:
    row = check_manage(group, actor)
    _check_acts_on(group, row, target, "remove")


def check_mute(group: Group, actor: GroupMember | None, target: GroupMember) -> None:
    row = check_manage(group, actor)
    _check_acts_on(group, row, target, "mute")


def check_set_role(group: Group, actor: GroupMember | None, target: GroupMember) -> None:
    row = check_owner(group, actor, "change roles")
    if target.uid == row.uid:
        raise NotAllowed("the owner's role changes only by transferring ownership")


def check_transfer(group: Group, actor: GroupMember | None, target: GroupMember | None, to: int) -> None:
    row = check_owner(group, actor, "transfer ownership")
    if target is None:
        raise NotFound(f"user {to} is not a member of group {group.gid}")
    if target.uid == row.uid:
        raise NotAllowed("you already own this group")


def check_leave(group: Group, member: GroupMember | None) -> None:
    check_open(group)
    row = check_member(group, member)
    if row.role == ROLE_OWNER:
        raise NotAllowed("the owner cannot leave: transfer ownership or dissolve the group first")


def check_recall(group: Group, actor: GroupMember | None, message: GroupMessage, *, not_before_ms: int) -> None:
    check_open(group)
    row = check_member(group, actor)
    if message.kind != KIND_MESSAGE:
        raise NotFound(f"message {message.mid} is not a chat message of group {group.gid}")
    if is_manager(row):
        return
    if message.sender != row.uid:
        raise NotAllowed("only the author, an admin or the owner may recall this message")
    if message.created_at < not_before_ms:
        raise TooLate(f"message {message.mid} is too old to recall")


def check_join(group: Group, *, banned: bool) -> None:
    """Whether a non-member may ask to join (JOIN_OPEN: join; JOIN_APPROVAL: request)."""
    check_open(group)
    if banned:
        raise NotAllowed(f"you were removed from group {group.gid}: an owner or admin must lift the ban first")
    if group.join_policy == JOIN_INVITE:
        raise NotAllowed(f"group {group.gid} is invite-only: ask an owner or admin to invite you")


def joins_at_once(group: Group) -> bool:
    return group.join_policy == JOIN_OPEN


def check_adding(group: Group, by: int, banned: Sequence[int], refusing: Sequence[int]) -> None:
    """Invite / create: nobody banned from the group, nobody who refuses the inviter (contacts rules)."""
    if banned:
        raise NotAllowed(
            f"removed from group {group.gid} (an owner or admin must lift the ban first): {list(banned)[:20]}"
        )
    check_refusals(by, refusing)


def check_refusals(by: int, refusing: Sequence[int]) -> None:
    if refusing:
        raise NotAllowed(
            f"these users do not accept being added by user {by} (blacklist or whitelist-only): "
            f"{list(refusing)[:20]}; nothing was changed"
        )


def history_start(group: Group, member: GroupMember) -> int:
    """The first seq ``member`` may read."""
    return member.joined_seq if group.history_from_join else 0


def changed_settings(group: Group, join_policy: int | None, history_from_join: bool | None) -> dict[str, int] | None:
    """The settings after a change (None: unchanged), as the NOTICE_SETTINGS_CHANGED extra fields."""
    policy = group.join_policy if join_policy is None else join_policy
    from_join = group.history_from_join if history_from_join is None else history_from_join
    if (policy, from_join) == (group.join_policy, group.history_from_join):
        return None
    return {"join_policy": policy, "history_from_join": int(from_join)}
